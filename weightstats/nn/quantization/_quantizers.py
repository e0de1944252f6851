"""Weight quantizers for quantization-aware training: StatsQ and LSQ.

Both are ``torch.nn.utils.parametrize`` parametrisations of a weight: the
layer keeps its full-precision weight (``parametrizations.weight.original``)
and every forward pass uses the fake-quantised value, with a
straight-through estimator (STE) for the gradient.

* StatsQ (Liu, Liu & Cheng, ICML 2023; ``StatsQuantizer`` in nbasyl/OFQ):
  the scale is a statistic of the weight, ``s = 2 mean|W_row|`` per output
  row, never learned; the grid is mid-rise,
  ``W_hat = s (round(clip(W / s, -1, 1) n - 1/2) + 1/2) / n``, ``n = 2^(b-1)``.
* LSQ (Esser et al., ICLR 2020; ``LsqQuantizerWeight`` in nbasyl/OFQ, the
  paper's baseline): a learned per-row scale ``s``,
  ``W_hat = s round(clip(W / s, -2^(b-1), 2^(b-1) - 1))``, initialised to
  ``2 mean|W_row| / sqrt(2^(b-1) - 1)``, its gradient scaled by
  ``1 / sqrt((2^(b-1) - 1) n_in)``.

Every quantizer also exposes its integer codes and the pre-rounding values
(rounding boundaries at half-integers), which :class:`TrackOscillation`
and :class:`ConfidenceGuidedAnnealing` read.
"""

import math
import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._core import check_finite_tensor

__all__ = [
    "LSQ",
    "StatsQ",
    "lsq_fake_quantize",
    "prepare_qat",
    "quantized_weights",
    "statsq_quantize",
]

# StatsQ clips W / s to [-1, 1 - 1e-6] (clip_val = 2 in the reference), so
# that the top of the range rounds to the highest level, not one above it.
_STATSQ_TOP = 1.0 - 1e-6
# Smallest LSQ scale (the reference clips the learned scale here).
_LSQ_MIN_SCALE = 1e-5
_QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _check_bits(bits, low, high=8, what="bits"):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not low <= bits <= high:
        raise ValueError(f"{what} must be an integer in [{low}, {high}]; got {bits!r}.")
    return int(bits)


def _check_weight(weight, name="W"):
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(weight).__name__}.")
    if not weight.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {weight.dtype}.")
    if weight.dim() < 2 or weight.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty weight with at least 2 dimensions (output rows first); "
            f"got shape {tuple(weight.shape)}."
        )
    return check_finite_tensor(weight, name)


def _row_view(weight):
    """The weight as (rows, everything else): scales are per output row."""
    return weight.reshape(weight.shape[0], -1)


def _straight_through(value, weight):
    """``value`` in the forward pass, identity gradient to ``weight``.

    ``weight - weight.detach()`` is exactly zero, so the forward value is
    ``value`` bit for bit (``value - weight + weight`` would not be).
    """
    return value.detach() + (weight - weight.detach())


# ---------------------------------------------------------------- StatsQ
def statsq_scale(weight):
    """The StatsQ scale ``2 mean|W_row|`` of every output row (detached).

    Parameters
    ----------
    weight : torch.Tensor of shape (out, ...)
        The weight.

    Returns
    -------
    scale : torch.Tensor of shape (out, 1)
        The scales (rows of zeros get the smallest positive float, so that
        they quantise to the smallest level instead of NaN).
    """
    rows = _row_view(weight.detach())
    scale = 2.0 * rows.abs().mean(dim=1, keepdim=True)
    return scale.clamp_min(torch.finfo(scale.dtype).tiny)


def _statsq_pre_round(weight, bits):
    """``clip(W / s, -1, 1 - 1e-6) n - 1/2`` per row, and the scale."""
    scale = statsq_scale(weight)
    clipped = torch.clamp(_row_view(weight) / scale, -1.0, _STATSQ_TOP)
    return clipped * float(2 ** (bits - 1)) - 0.5, scale


def statsq_quantize(W, bits=2):
    """StatsQ fake quantisation: statistical scale, mid-rise grid, STE.

    Per output row, ``s = 2 mean|W_row|`` (a statistic, not learned, no
    gradient), ``n = 2^(bits-1)`` and
    ``W_hat = s (round(clip(W / s, -1, 1 - 1e-6) n - 1/2) + 1/2) / n``:
    ``2^bits`` levels ``+-s/(2n), +-3s/(2n), ...``, none at zero. The
    gradient with respect to ``W`` is the identity (straight-through).
    Tensors with more than two dimensions (convolutions) are quantised per
    output channel (the first dimension).

    Parameters
    ----------
    W : torch.Tensor of shape (out, ...)
        The full-precision weight (finite).
    bits : int in [2, 8], default=2
        Bit width. One bit is not offered: the lower clip ``W / s = -1``
        would round half-to-even to a third level.

    Returns
    -------
    W_hat : torch.Tensor
        The quantised weight, same shape and dtype, differentiable.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import statsq_quantize
    >>> W = torch.tensor([[0.1, -0.3, 0.5, -0.7]])  # s = 2 * mean|W| = 0.8
    >>> statsq_quantize(W, bits=2)  # levels +-0.2, +-0.6
    tensor([[ 0.2000, -0.2000,  0.6000, -0.6000]])
    """
    bits = _check_bits(bits, 2)
    W = _check_weight(W)
    pre_round, scale = _statsq_pre_round(W, bits)
    n = float(2 ** (bits - 1))
    levels = scale * ((torch.round(pre_round) + 0.5) / n)
    return _straight_through(levels.reshape(W.shape), W)


class _WeightQuantizer(nn.Module):
    """Base of the weight parametrisations (what the callbacks look for)."""

    bits = None

    def integer_weights(self, weight):
        """The integer code of every weight (a float tensor of integers).

        Parameters
        ----------
        weight : torch.Tensor
            The full-precision weight.

        Returns
        -------
        codes : torch.Tensor
            ``round(pre_round(weight))``, same shape as ``weight``.
        """
        with torch.no_grad():
            return torch.round(self.pre_round(weight))

    def pre_round(self, weight):  # pragma: no cover - abstract
        """The values that are rounded to integer codes (same shape as ``weight``)."""
        raise NotImplementedError


class StatsQ(_WeightQuantizer):
    """StatsQ weight quantisation as a ``torch.nn.utils.parametrize`` parametrisation.

    Register it on a weight with ``parametrize.register_parametrization``
    (or let :func:`prepare_qat` do it): the forward pass then uses
    :func:`statsq_quantize` of the stored full-precision weight, and the
    gradient reaches it unchanged (straight-through). There is nothing to
    learn: the scale is ``2 mean|W_row|``.

    Parameters
    ----------
    bits : int in [2, 8], default=2
        Bit width.

    See Also
    --------
    statsq_quantize : The rule.
    LSQ : The learned-scale baseline.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> from weightstats.nn import StatsQ
    >>> _ = torch.manual_seed(0)
    >>> layer = torch.nn.Linear(8, 4)
    >>> _ = parametrize.register_parametrization(layer, "weight", StatsQ(bits=2))
    >>> torch.unique(layer.weight[0] / layer.weight[0].abs().min()).tolist()
    [-3.0, -1.0, 1.0, 3.0]
    """

    def __init__(self, bits=2):
        super().__init__()
        self.bits = _check_bits(bits, 2)

    def forward(self, weight):
        """The quantised weight (straight-through gradient).

        Parameters
        ----------
        weight : torch.Tensor of shape (out, ...)
            The full-precision weight.

        Returns
        -------
        quantized : torch.Tensor
            :func:`statsq_quantize` of ``weight``.
        """
        return statsq_quantize(weight, self.bits)

    def pre_round(self, weight):
        """The values StatsQ rounds: ``clip(W / s, -1, 1 - 1e-6) 2^(bits-1) - 1/2``.

        Parameters
        ----------
        weight : torch.Tensor of shape (out, ...)
            The full-precision weight.

        Returns
        -------
        values : torch.Tensor
            Same shape as ``weight``; the codes are their rounded values.
        """
        with torch.no_grad():
            return _statsq_pre_round(weight, self.bits)[0].reshape(weight.shape)

    def extra_repr(self):
        return f"bits={self.bits}"


# ------------------------------------------------------------------- LSQ
def _grad_scale(value, factor):
    """``value`` forward, gradient multiplied by ``factor``."""
    scaled = value * factor
    return (value - scaled).detach() + scaled


def _lsq_scale(scale):
    """The scale clipped below at 1e-5 with a straight-through gradient (as the reference)."""
    return scale.clamp_min(_LSQ_MIN_SCALE).detach() + (scale - scale.detach())


def lsq_fake_quantize(W, scale, bits=2, *, grad_factor=None, implementation="lsq"):
    """LSQ fake quantisation with a learned per-row scale.

    ``W_hat = s round(clip(W / s, -2^(bits-1), 2^(bits-1) - 1))`` with the
    LSQ gradients: straight-through for ``W`` inside the clipping range
    (zero outside), and for ``s`` the LSQ step-size gradient
    ``round(W/s) - W/s`` inside, the clipping bound outside, multiplied by
    ``grad_factor``.

    Parameters
    ----------
    W : torch.Tensor of shape (out, ...)
        The weight.
    scale : torch.Tensor of shape (out,)
        The per-row step sizes (positive; clipped below at 1e-5).
    bits : int in [2, 8], default=2
        Bit width (signed levels ``-2^(bits-1) .. 2^(bits-1) - 1``).
    grad_factor : float or None, default=None
        Multiplier of the scale gradient; None uses LSQ's
        ``1 / sqrt((2^(bits-1) - 1) n_in)`` with ``n_in`` the weights per row.
    implementation : {"lsq", "torch"}, default="lsq"
        ``"lsq"`` follows the LSQ paper and the OFQ reference (clip, then
        round). ``"torch"`` calls torch's learnable fake-quantise kernel
        (``torch._fake_quantize_learnable_per_channel_affine``, the one
        behind ``torch.ao``'s ``_LearnableFakeQuantize``): the same forward
        values, but its gradients treat ``W / s`` within half a step outside
        the clipping range as inside (identity for ``W``, ``round - W/s``
        for ``s``).

    Returns
    -------
    W_hat : torch.Tensor
        The quantised weight, same shape.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import lsq_fake_quantize
    >>> W = torch.tensor([[0.1, -0.3, 0.5, -0.9]])
    >>> lsq_fake_quantize(W, torch.tensor([0.4]), bits=2)  # levels -0.8, -0.4, 0, 0.4
    tensor([[ 0.0000, -0.4000,  0.4000, -0.8000]])
    """
    bits = _check_bits(bits, 2)
    W = _check_weight(W)
    if implementation not in ("lsq", "torch"):
        raise ValueError(f"implementation must be 'lsq' or 'torch'; got {implementation!r}.")
    if not isinstance(scale, torch.Tensor) or scale.shape != (W.shape[0],):
        raise ValueError(
            f"scale must be a tensor with one step size per output row, shape ({W.shape[0]},); "
            f"got {getattr(scale, 'shape', type(scale).__name__)}."
        )
    check_finite_tensor(scale, "scale")
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    rows = _row_view(W)
    if grad_factor is None:
        grad_factor = 1.0 / math.sqrt(qmax * rows.shape[1])
    if implementation == "torch":
        zero_point = torch.zeros_like(scale)
        out = torch._fake_quantize_learnable_per_channel_affine(
            rows, scale.clamp_min(_LSQ_MIN_SCALE), zero_point, 0, qmin, qmax, float(grad_factor)
        )
        return out.reshape(W.shape)
    step = _grad_scale(_lsq_scale(scale), grad_factor).unsqueeze(1)
    clipped = torch.clamp(rows / step, qmin, qmax)
    codes = clipped.detach().round() + (clipped - clipped.detach())  # round, straight-through
    return (codes * step).reshape(W.shape)


class LSQ(_WeightQuantizer):
    """The LSQ learned-scale weight quantiser as a parametrisation (the OFQ baseline).

    Holds one learnable step size per output row (a parameter of the
    parametrisation, so the optimiser of the model trains it), initialised
    from the weight it will quantise as ``2 mean|W_row| / sqrt(2^(bits-1) - 1)``
    (nbasyl/OFQ ``LsqQuantizerWeight``).

    Parameters
    ----------
    weight : torch.Tensor of shape (out, ...)
        The weight to quantise (sets the number of scales and their
        initial values).
    bits : int in [2, 8], default=2
        Bit width.
    implementation : {"lsq", "torch"}, default="lsq"
        See :func:`lsq_fake_quantize`.

    Attributes
    ----------
    scale : torch.nn.Parameter of shape (out,)
        The learned step sizes.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> from weightstats.nn import LSQ
    >>> _ = torch.manual_seed(0)
    >>> layer = torch.nn.Linear(8, 4)
    >>> _ = parametrize.register_parametrization(layer, "weight", LSQ(layer.weight, bits=2))
    >>> sorted(name for name, _ in layer.named_parameters())
    ['bias', 'parametrizations.weight.0.scale', 'parametrizations.weight.original']
    >>> codes = layer.weight / layer.parametrizations.weight[0].scale[:, None]
    >>> set(codes.round().flatten().tolist()) <= {-2.0, -1.0, 0.0, 1.0}
    True
    """

    def __init__(self, weight, bits=2, implementation="lsq"):
        super().__init__()
        self.bits = _check_bits(bits, 2)
        weight = _check_weight(weight, "weight")
        if implementation not in ("lsq", "torch"):
            raise ValueError(f"implementation must be 'lsq' or 'torch'; got {implementation!r}.")
        self.implementation = implementation
        qmax = 2 ** (self.bits - 1) - 1
        init = 2.0 * _row_view(weight.detach()).abs().mean(dim=1) / math.sqrt(qmax)
        self.scale = nn.Parameter(init.clamp_min(_LSQ_MIN_SCALE))

    def forward(self, weight):
        """The quantised weight (LSQ gradients for the weight and the scale).

        Parameters
        ----------
        weight : torch.Tensor of shape (out, ...)
            The full-precision weight.

        Returns
        -------
        quantized : torch.Tensor
            :func:`lsq_fake_quantize` of ``weight`` with the learned scales.
        """
        return lsq_fake_quantize(
            weight, self.scale, self.bits, implementation=self.implementation
        )

    def pre_round(self, weight):
        """The values LSQ rounds: ``clip(W / s, -2^(bits-1), 2^(bits-1) - 1)``.

        Parameters
        ----------
        weight : torch.Tensor of shape (out, ...)
            The full-precision weight.

        Returns
        -------
        values : torch.Tensor
            Same shape as ``weight``; the codes are their rounded values.
        """
        with torch.no_grad():
            qmin, qmax = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
            step = self.scale.clamp_min(_LSQ_MIN_SCALE).unsqueeze(1)
            return torch.clamp(_row_view(weight) / step, qmin, qmax).reshape(weight.shape)

    def extra_repr(self):
        return f"bits={self.bits}, implementation={self.implementation!r}"


# ------------------------------------------------------------ discovery
class QuantizedTensor:
    """A quantised tensor of a model, as the QAT callbacks see it.

    Attributes
    ----------
    name : str
        Dotted name (``"body.2.weight"``, ``"attention.qk"``).
    quantizer : StatsQ or LSQ
        Its quantiser.
    parameter : torch.nn.Parameter or None
        The parameter to freeze: the stored full-precision weight of a
        parametrised layer; None for computed tensors such as the
        query-key product of :class:`QKReparamAttention`.
    owner : torch.nn.Module
        The module holding it.
    """

    def __init__(self, name, quantizer, get_value, parameter, owner):
        self.name = name
        self.quantizer = quantizer
        self._get_value = get_value
        self.parameter = parameter
        self.owner = owner

    @property
    def value(self):
        """The current full-precision tensor that is quantised (detached)."""
        with torch.no_grad():
            return self._get_value().detach()

    def integer_weights(self):
        """The integer codes of the current value."""
        return self.quantizer.integer_weights(self.value)

    def pre_round(self):
        """The current pre-rounding values (boundaries at half-integers)."""
        return self.quantizer.pre_round(self.value)


def quantized_weights(model):
    """Every quantised tensor of ``model``, in module order.

    Parametrised weights whose parametrisation is a :class:`StatsQ` or
    :class:`LSQ`, and the tensors a module reports through a
    ``quantized_products()`` method (the query-key products of
    :class:`QKReparamAttention`).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    tensors : list of QuantizedTensor
        One entry per quantised tensor.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, prepare_qat, quantized_weights
    >>> model = prepare_qat(MLP(8, 2, hidden_units=(4, 4)), bits=2)
    >>> [(t.name, type(t.quantizer).__name__) for t in quantized_weights(model)]
    [('body.2.weight', 'StatsQ')]
    """
    found = []
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if parametrize.is_parametrized(module):
            for tensor_name, chain in module.parametrizations.items():
                quantizers = [p for p in chain if isinstance(p, _WeightQuantizer)]
                if quantizers:
                    found.append(
                        QuantizedTensor(
                            prefix + tensor_name, quantizers[0],
                            (lambda chain=chain: chain.original), chain.original, module,
                        )
                    )
        products = getattr(module, "quantized_products", None)
        if callable(products):
            for tensor_name, (quantizer, get_value) in products().items():
                found.append(
                    QuantizedTensor(prefix + tensor_name, quantizer, get_value, None, module)
                )
    return found


def _first_last_linear(model):
    names = [name for name, module in model.named_modules() if isinstance(module, _QUANTIZABLE)]
    return {names[0], names[-1]} if names else set()


def prepare_qat(model, bits=2, *, method="statsq", layers=None, keep_first_last=True):
    """Register weight quantisers on the linear and convolution layers of a model.

    In place, like ``torch.ao.quantization.prepare_qat``: each chosen layer's
    ``weight`` gets a :class:`StatsQ` or :class:`LSQ` parametrisation, so
    training the model trains its full-precision weights through the
    quantised forward pass. :class:`QKReparamAttention` modules quantise
    themselves and are left alone.

    Parameters
    ----------
    model : torch.nn.Module
        The model (modified in place).
    bits : int, default=2
        Bit width of the weights.
    method : {"statsq", "lsq", "lsq-torch"}, default="statsq"
        The quantiser: :class:`StatsQ`, :class:`LSQ`, or LSQ with torch's
        fake-quantise kernel.
    layers : list of str or None, default=None
        Names of the layers to quantise (``nn.Linear`` or ``nn.Conv*``); by
        default all of them, except the first and last (in the order of
        ``model.named_modules()``) with ``keep_first_last``.
    keep_first_last : bool, default=True
        Keep the first and the last layer in full precision (the usual
        low-bit convention, followed by the OFQ experiments). Ignored when
        ``layers`` is given.

    Returns
    -------
    model : torch.nn.Module
        The same model.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, prepare_qat
    >>> _ = torch.manual_seed(0)
    >>> model = prepare_qat(MLP(64, 10, hidden_units=(32, 32)), bits=2)
    >>> [name for name, m in model.named_modules() if hasattr(m, "parametrizations")]
    ['body.2']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if method not in ("statsq", "lsq", "lsq-torch"):
        raise ValueError(f"method must be 'statsq', 'lsq' or 'lsq-torch'; got {method!r}.")
    _check_bits(bits, 2)
    modules = dict(model.named_modules())
    # layers inside modules that quantise themselves (QKReparamAttention)
    self_quantizing = [
        owner for owner, module in modules.items()
        if callable(getattr(module, "quantized_products", None))
    ]
    inside_attention = {
        name
        for name in modules
        for owner in self_quantizing
        if name != owner and (not owner or name.startswith(owner + "."))
    }
    if layers is None:
        skip = _first_last_linear(model) if keep_first_last else set()
        chosen = [
            name
            for name, module in modules.items()
            if isinstance(module, _QUANTIZABLE)
            and name not in skip
            and name not in inside_attention
        ]
    else:
        if isinstance(layers, str):
            layers = [layers]
        chosen = list(layers)
        for name in chosen:
            if name not in modules:
                raise ValueError(
                    f"the model has no layer {name!r}; layer names are those of "
                    "model.named_modules()."
                )
            if not isinstance(modules[name], _QUANTIZABLE):
                raise TypeError(
                    f"layer {name!r} is a {type(modules[name]).__name__}; prepare_qat quantises "
                    "nn.Linear and nn.Conv1d/2d/3d weights."
                )
    for name in chosen:
        layer = modules[name]
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"layer {name!r} already has a weight parametrisation.")
        if method == "statsq":
            quantizer = StatsQ(bits)
        else:
            implementation = "torch" if method == "lsq-torch" else "lsq"
            quantizer = LSQ(layer.weight, bits, implementation=implementation)
        parametrize.register_parametrization(layer, "weight", quantizer)
    return model
