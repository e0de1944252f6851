"""Group-wise integer rounding of weights: the rule of SignRound and RTN.

The rule of intel/auto-round (``quant_tensor_asym`` / ``quant_tensor_sym``
in ``auto_round/data_type/int.py``). The weight ``(out, in)`` is cut into
groups of ``group_size`` consecutive inputs of a row (the whole row when
``group_size`` is -1 or at least ``in``; the last group is padded with
zeros, which moves neither the minimum nor the maximum below). Per group,
with ``min_scale`` and ``max_scale`` in [0, 1] and the rounding offset
``v`` in [-0.5, 0.5]:

* asymmetric: ``wmin = min(W, 0) min_scale``, ``wmax = max(W, 0) max_scale``,
  ``s = (wmax - wmin) / (2^b - 1)``, ``zp = round(-wmin / s)``,
  ``q = clamp(round(W / s + v) + zp, 0, 2^b - 1)``, ``W_hat = s (q - zp)``;
* symmetric: ``s = +-max(|wmin|, wmax) / 2^(b-1)``, its sign chosen so that
  the larger side maps to ``-2^(b-1)``,
  ``q = clamp(round(W / s + v), -2^(b-1), 2^(b-1) - 1)``, ``W_hat = s q``
  (stored as ``q + 2^(b-1)`` with zero point ``2^(b-1)``).

``round`` is round-half-to-even with a straight-through gradient, so the
result is differentiable in ``v``, ``min_scale`` and ``max_scale``.
``v = 0`` and ``min_scale = max_scale = 1`` is round-to-nearest (RTN).
"""

import math
import numbers

import torch
import torch.nn.functional as F

from .._core import check_finite_tensor

__all__ = ["effective_group_size", "quantize_groups", "signround_fake_quantize"]

_SCALE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_bits(bits, high=8):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 1 <= bits <= high:
        raise ValueError(f"bits must be an integer in [1, {high}]; got {bits!r}.")
    return int(bits)


def check_group_size(group_size):
    if (
        isinstance(group_size, bool)
        or not isinstance(group_size, numbers.Integral)
        or not (group_size == -1 or group_size >= 1)
    ):
        raise ValueError(
            f"group_size must be -1 (one group per row) or a positive integer; got {group_size!r}."
        )
    return int(group_size)


def check_scale_dtype(scale_dtype):
    if scale_dtype not in _SCALE_DTYPES:
        raise ValueError(
            f"scale_dtype must be one of torch.float32, torch.float16, torch.bfloat16; "
            f"got {scale_dtype!r}."
        )
    return scale_dtype


def scale_threshold(scale_dtype):
    """Smallest scale magnitude (auto-round: 1e-8 for float32 scales, else 1e-5)."""
    return 1e-8 if scale_dtype == torch.float32 else 1e-5


def effective_group_size(in_features, group_size):
    """The number of inputs per group: ``in_features`` for -1 or large groups."""
    if group_size == -1 or group_size >= in_features:
        return int(in_features)
    return int(group_size)


def group_shape(weight_shape, group_size):
    """``(n_rows * n_groups, group)`` of a weight of shape ``(out, in)``."""
    out_features, in_features = weight_shape
    group = effective_group_size(in_features, group_size)
    return out_features * math.ceil(in_features / group), group


def _to_groups(weight, group):
    out_features, in_features = weight.shape
    pad = -in_features % group
    if pad:
        weight = F.pad(weight, (0, pad))
    return weight.reshape(-1, group)


def _from_groups(grouped, shape):
    out_features, in_features = shape
    return grouped.reshape(out_features, -1)[:, :in_features]


def _round_ste(x):
    return x.round().detach() + (x - x.detach())


def _check_weight(weight):
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"W must be a torch.Tensor; got {type(weight).__name__}.")
    if not weight.is_floating_point():
        raise TypeError(f"W must be a floating-point tensor; got dtype {weight.dtype}.")
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(
            f"W must be a non-empty 2-d weight (out_features, in_features); got shape "
            f"{tuple(weight.shape)}."
        )
    return check_finite_tensor(weight, "W")


def _check_param(value, shape, name, low, high, weight):
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float32, device=weight.device)
    if value.shape != shape:
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (one per group); got {tuple(value.shape)}."
        )
    check_finite_tensor(value, name)
    if bool((value.detach() < low).any()) or bool((value.detach() > high).any()):
        raise ValueError(f"{name} must lie in [{low}, {high}].")
    return value


def quantize_groups(
    W, bits, group_size, sym=False, *, v=None, min_scale=None, max_scale=None,
    scale_dtype=torch.float32,
):
    """Fake-quantise ``W`` group-wise and return the integer representation too.

    Returns
    -------
    W_hat : torch.Tensor of shape (out, in)
        The dequantised weight in the dtype of ``W`` (differentiable in
        ``v``, ``min_scale`` and ``max_scale``).
    codes : torch.Tensor of shape (out, in)
        Unsigned integer codes in ``[0, 2^bits - 1]`` (float, detached).
    scales : torch.Tensor of shape (out, n_groups)
        Per-group scales in ``scale_dtype`` (detached).
    zeros : torch.Tensor of shape (out, n_groups)
        Per-group zero points (float, detached): ``W_hat = s (codes - zeros)``.
    """
    shape = tuple(W.shape)
    group = effective_group_size(shape[1], group_size)
    n_groups_total = shape[0] * math.ceil(shape[1] / group)
    grouped = _to_groups(W.float(), group)
    threshold = scale_threshold(scale_dtype)
    wmin = torch.clamp(grouped.min(dim=1)[0], max=0)
    wmax = torch.clamp(grouped.max(dim=1)[0], min=0)
    if min_scale is not None:
        wmin = wmin * min_scale
    if max_scale is not None:
        wmax = wmax * max_scale
    shifted = 0.0 if v is None else v
    if sym:
        maxq = 2 ** (bits - 1)
        wmin_abs, wmax_abs = -wmin, wmax
        sign = 2 * (wmax_abs < wmin_abs).int() - 1
        scale = (sign * torch.max(wmax_abs, wmin_abs) / maxq).to(scale_dtype)
        scale = torch.where(
            scale < 0, torch.clamp(scale, max=-threshold), torch.clamp(scale, min=threshold)
        ).unsqueeze(1)
        q = torch.clamp(_round_ste(grouped / scale + shifted), -maxq, maxq - 1)
        dequantized = scale * q
        codes = q.detach() + maxq
        zeros = torch.full((n_groups_total, 1), float(maxq), device=W.device)
    else:
        maxq = 2**bits - 1
        scale = torch.clamp(((wmax - wmin) / maxq).to(scale_dtype), min=threshold)
        zp = _round_ste(-wmin / scale).unsqueeze(1)
        scale = scale.unsqueeze(1)
        q = torch.clamp(_round_ste(grouped / scale + shifted) + zp, 0, maxq)
        dequantized = scale * (q - zp)
        codes = q.detach()
        zeros = zp.detach()
    W_hat = _from_groups(dequantized, shape).to(W.dtype)
    codes = _from_groups(codes, shape)
    return W_hat, codes, scale.detach().reshape(shape[0], -1), zeros.reshape(shape[0], -1)


def signround_fake_quantize(
    W, bits=4, group_size=128, sym=False, *, v=None, min_scale=None, max_scale=None,
    scale_dtype=torch.float32,
):
    """Group-wise integer fake quantisation of a weight (the SignRound / RTN rule).

    The rule of intel/auto-round's ``quant_tensor_asym`` and
    ``quant_tensor_sym`` (see the module notes): per group of ``group_size``
    inputs of a row, ``W_hat = s (clamp(round(W / s + v) + zp, 0, 2^b - 1) - zp)``
    with ``s`` and ``zp`` from the group's minimum and maximum, shrunk by
    ``min_scale`` and ``max_scale``. With the defaults (``v = 0``, scales 1)
    it is round-to-nearest.

    Parameters
    ----------
    W : torch.Tensor of shape (out_features, in_features)
        The weight (finite).
    bits : int in [1, 8], default=4
        Bit width.
    group_size : int, default=128
        Inputs per group; -1 (or at least ``in_features``) gives one group
        per row.
    sym : bool, default=False
        Symmetric (no zero point) instead of asymmetric.
    v : torch.Tensor or None, default=None
        Rounding offsets in [-0.5, 0.5], shape ``(n_groups_total, group)``
        as SignRound learns them (rows of groups; see ``params_`` of a
        fitted :class:`SignRound`).
    min_scale, max_scale : torch.Tensor or None, default=None
        Per-group factors in [0, 1] of the minimum and the maximum, shape
        ``(n_groups_total,)``.
    scale_dtype : torch.dtype, default=torch.float32
        Precision of the scales (auto-round stores float16 by default).

    Returns
    -------
    W_hat : torch.Tensor of shape (out_features, in_features)
        The fake-quantised weight, dtype of ``W``; differentiable in ``v``,
        ``min_scale`` and ``max_scale`` (straight-through rounding).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import signround_fake_quantize
    >>> W = torch.tensor([[-1.0, -0.2, 0.4, 2.0]])  # s = 3/3 = 1, zero point 1
    >>> signround_fake_quantize(W, bits=2, group_size=-1)
    tensor([[-1.,  0.,  0.,  2.]])
    >>> signround_fake_quantize(W, bits=2, group_size=-1, v=torch.tensor([[0.0, 0.0, 0.2, 0.0]]))
    tensor([[-1.,  0.,  1.,  2.]])
    """
    bits = check_bits(bits)
    group_size = check_group_size(group_size)
    scale_dtype = check_scale_dtype(scale_dtype)
    W = _check_weight(W)
    n_total, group = group_shape(W.shape, group_size)
    v = _check_param(v, (n_total, group), "v", -0.5, 0.5, W)
    min_scale = _check_param(min_scale, (n_total,), "min_scale", 0.0, 1.0, W)
    max_scale = _check_param(max_scale, (n_total,), "max_scale", 0.0, 1.0, W)
    return quantize_groups(
        W, bits, group_size, bool(sym), v=v, min_scale=min_scale, max_scale=max_scale,
        scale_dtype=scale_dtype,
    )[0]
