"""A linear layer that stores packed integer weights and dequantises on the fly.

Packing: the codes of a row (``in_features`` unsigned integers of ``bits``
bits) are written as one little-endian bit stream, ``bits`` bits per code,
code ``j`` at bits ``j * bits .. j * bits + bits - 1``, into
``ceil(in_features * bits / 8)`` bytes. For 1, 2, 4 and 8 bits a byte holds
``8 / bits`` whole codes (the usual nibble packing for 4 bits); 3, 5, 6 and
7 bits cross byte borders, and nothing is wasted.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._rounding import (
    check_bits,
    check_group_size,
    check_scale_dtype,
    effective_group_size,
    quantize_groups,
)

__all__ = ["QuantLinear", "pack_codes", "unpack_codes"]


def _bit_positions(n, device):
    return torch.arange(n, dtype=torch.uint8, device=device)


def pack_codes(codes, bits):
    """Pack unsigned integer codes row-wise into a uint8 bit stream.

    Parameters
    ----------
    codes : torch.Tensor of shape (rows, n)
        Integers in ``[0, 2^bits - 1]`` (any integer or float dtype).
    bits : int in [1, 8]
        Bits per code.

    Returns
    -------
    packed : torch.Tensor of shape (rows, ceil(n * bits / 8)), dtype uint8
        The packed rows.
    """
    codes = codes.to(torch.int16)
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 2**bits):
        raise ValueError(f"codes must lie in [0, {2**bits - 1}] for {bits} bits.")
    rows, n = codes.shape
    device = codes.device
    if 8 % bits == 0:
        per_byte = 8 // bits
        codes = F.pad(codes, (0, -n % per_byte)).reshape(rows, -1, per_byte)
        shifts = (_bit_positions(per_byte, device) * bits).to(torch.int16)
        return (codes << shifts).sum(dim=-1).to(torch.uint8)
    stream = (codes.unsqueeze(-1) >> _bit_positions(bits, device).to(torch.int16)) & 1
    stream = F.pad(stream.reshape(rows, -1), (0, -(n * bits) % 8)).reshape(rows, -1, 8)
    return (stream << _bit_positions(8, device).to(torch.int16)).sum(dim=-1).to(torch.uint8)


def unpack_codes(packed, bits, n):
    """Inverse of :func:`pack_codes`: the first ``n`` codes of every row.

    Parameters
    ----------
    packed : torch.Tensor of shape (rows, n_bytes), dtype uint8
        Packed rows.
    bits : int in [1, 8]
        Bits per code.
    n : int
        Codes per row.

    Returns
    -------
    codes : torch.Tensor of shape (rows, n), dtype uint8
        The codes.
    """
    rows = packed.shape[0]
    if bits == 8:
        return packed[:, :n]
    # Eight codes fill exactly ``bits`` bytes. Split the chunks into byte
    # planes and shift each code out of the one or two bytes it spans; uint8
    # shifts by a scalar are vectorised (broadcast shifts are several times
    # slower, and wider integer types cost memory traffic).
    chunks = math.ceil(n / 8)
    if packed.shape[1] != chunks * bits:
        packed = F.pad(packed, (0, chunks * bits - packed.shape[1]))
    planes = packed.reshape(rows, chunks, bits).permute(2, 0, 1).contiguous()
    parts = []
    for k in range(8):
        byte, offset = divmod(bits * k, 8)
        code = planes[byte] >> offset
        if offset + bits > 8:
            code = code | (planes[byte + 1] << (8 - offset))
        parts.append(code & (2**bits - 1))
    return torch.stack(parts, dim=-1).reshape(rows, -1)[:, :n]


class QuantLinear(nn.Module):
    """A linear layer with packed integer weights, scales and zero points.

    The weight is stored as ``bits``-bit codes packed into bytes
    (``qweight``), with one scale and one zero point per group of
    ``group_size`` inputs of each output row (``scales``, ``qzeros``); the
    float weight ``scales * (codes - qzeros)`` is rebuilt at every forward
    pass (or once, by :meth:`dequantize`). Built by :class:`SignRound` and
    :func:`rtn_quantize`, or from a float layer by :meth:`from_linear`. A
    plain ``nn.Module``: ``state_dict`` / ``load_state_dict``, ``.to()``,
    pickling and ``copy.deepcopy`` work as for ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes, as for ``nn.Linear``.
    bits : int in [1, 8], default=4
        Bits per weight.
    group_size : int, default=128
        Inputs per group (-1: one group per row).
    bias : bool, default=True
        Whether the layer has a bias.
    sym : bool, default=False
        Whether the codes are symmetric (zero points all ``2^(bits-1)``);
        recorded for information.
    scale_dtype : torch.dtype, default=torch.float32
        Precision of the stored scales.
    dtype : torch.dtype, default=torch.float32
        The dtype of the dequantised weight and of the bias.
    device : torch.device or None, default=None
        Device of the buffers.

    Attributes
    ----------
    qweight : torch.Tensor of shape (out_features, ceil(in_features * bits / 8)), uint8
        The packed codes.
    scales : torch.Tensor of shape (out_features, n_groups)
        Group scales.
    qzeros : torch.Tensor of shape (out_features, n_groups), uint8
        Group zero points.
    bias : torch.nn.Parameter of shape (out_features,) or None
        The bias (full precision).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import QuantLinear
    >>> _ = torch.manual_seed(0)
    >>> linear = torch.nn.Linear(16, 3)
    >>> qlinear = QuantLinear.from_linear(linear, bits=4, group_size=8)
    >>> qlinear
    QuantLinear(in_features=16, out_features=3, bits=4, group_size=8, bias=True)
    >>> qlinear.qweight.shape, qlinear.scales.shape  # 16 codes of 4 bits = 8 bytes a row
    (torch.Size([3, 8]), torch.Size([3, 2]))
    >>> x = torch.randn(5, 16)
    >>> bool((qlinear(x) - linear(x)).abs().max() < 0.1)
    True
    """

    def __init__(
        self, in_features, out_features, bits=4, group_size=128, bias=True, sym=False,
        scale_dtype=torch.float32, dtype=torch.float32, device=None,
    ):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                f"in_features and out_features must be positive; got {in_features}, "
                f"{out_features}."
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.bits = check_bits(bits)
        self.group_size = check_group_size(group_size)
        self.sym = bool(sym)
        self.scale_dtype = check_scale_dtype(scale_dtype)
        self.dtype = dtype
        group = effective_group_size(self.in_features, self.group_size)
        n_groups = math.ceil(self.in_features / group)
        n_bytes = math.ceil(self.in_features * self.bits / 8)
        self.register_buffer(
            "qweight", torch.zeros(self.out_features, n_bytes, dtype=torch.uint8, device=device)
        )
        self.register_buffer(
            "scales", torch.ones(self.out_features, n_groups, dtype=scale_dtype, device=device)
        )
        self.register_buffer(
            "qzeros", torch.zeros(self.out_features, n_groups, dtype=torch.uint8, device=device)
        )
        if bias:
            self.bias = nn.Parameter(torch.zeros(self.out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)

    @property
    def group(self):
        """Inputs per group actually used (``in_features`` for one group per row)."""
        return effective_group_size(self.in_features, self.group_size)

    @classmethod
    def from_linear(
        cls, linear, bits=4, group_size=128, sym=False, *, v=None, min_scale=None,
        max_scale=None, scale_dtype=torch.float32,
    ):
        """Quantise an ``nn.Linear`` (round-to-nearest, or with SignRound's parameters).

        Parameters
        ----------
        linear : torch.nn.Linear
            The float layer.
        bits : int in [1, 8], default=4
            Bits per weight.
        group_size : int, default=128
            Inputs per group (-1: one group per row).
        sym : bool, default=False
            Symmetric quantisation.
        v, min_scale, max_scale : torch.Tensor or None, default=None
            Rounding offsets and range factors (see
            :func:`signround_fake_quantize`); None gives round-to-nearest.
        scale_dtype : torch.dtype, default=torch.float32
            Precision of the stored scales.

        Returns
        -------
        qlinear : QuantLinear
            The quantised layer, on the device of ``linear``.
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear; got {type(linear).__name__}.")
        weight = linear.weight.detach()
        qlinear = cls(
            linear.in_features, linear.out_features, bits, group_size,
            bias=linear.bias is not None, sym=sym, scale_dtype=scale_dtype, dtype=weight.dtype,
            device=weight.device,
        )
        with torch.no_grad():
            _, codes, scales, zeros = quantize_groups(
                weight, qlinear.bits, qlinear.group_size, qlinear.sym, v=v,
                min_scale=min_scale, max_scale=max_scale, scale_dtype=qlinear.scale_dtype,
            )
            qlinear.set_codes(codes, scales, zeros)
            if linear.bias is not None:
                qlinear.bias.copy_(linear.bias.detach())
        return qlinear

    def set_codes(self, codes, scales, zeros):
        """Store integer codes, scales and zero points (packing the codes).

        Parameters
        ----------
        codes : torch.Tensor of shape (out_features, in_features)
            Integer codes in ``[0, 2^bits - 1]``.
        scales : torch.Tensor of shape (out_features, n_groups)
            Group scales.
        zeros : torch.Tensor of shape (out_features, n_groups)
            Group zero points in ``[0, 2^bits - 1]``.
        """
        if tuple(codes.shape) != (self.out_features, self.in_features):
            raise ValueError(
                f"codes must have shape ({self.out_features}, {self.in_features}); got "
                f"{tuple(codes.shape)}."
            )
        for name, value in (("scales", scales), ("zeros", zeros)):
            if tuple(value.shape) != tuple(self.scales.shape):
                raise ValueError(
                    f"{name} must have shape {tuple(self.scales.shape)}; got {tuple(value.shape)}."
                )
        if not bool(torch.isfinite(scales).all()):
            raise ValueError("scales contain NaN or infinity.")
        if zeros.numel() and (float(zeros.min()) < 0 or float(zeros.max()) > 2**self.bits - 1):
            raise ValueError(f"zeros must lie in [0, {2**self.bits - 1}] for {self.bits} bits.")
        with torch.no_grad():
            self.qweight.copy_(pack_codes(codes, self.bits))
            self.scales.copy_(scales.to(self.scale_dtype))
            self.qzeros.copy_(zeros.to(torch.uint8))

    def integer_weights(self):
        """The unpacked codes.

        Returns
        -------
        codes : torch.Tensor of shape (out_features, in_features), dtype uint8
            Integers in ``[0, 2^bits - 1]``.
        """
        return unpack_codes(self.qweight, self.bits, self.in_features)

    @property
    def weight(self):
        """The dequantised weight ``scales * (codes - qzeros)`` of shape (out, in)."""
        codes = self.integer_weights()
        n_groups, group = self.scales.shape[1], self.group
        if n_groups * group != self.in_features:
            codes = F.pad(codes, (0, n_groups * group - self.in_features))
        codes = codes.reshape(self.out_features, n_groups, group).float()
        # scale * (code - zero), in this order: the fake-quantised weight bit for bit
        weight = self.scales.unsqueeze(-1) * (codes - self.qzeros.unsqueeze(-1).float())
        return weight.reshape(self.out_features, -1)[:, : self.in_features].to(self.dtype)

    def forward(self, input):
        """``input @ weight.T + bias`` with the weight dequantised on the fly.

        Parameters
        ----------
        input : torch.Tensor of shape (..., in_features)
            The inputs (the weight is cast to their dtype).

        Returns
        -------
        output : torch.Tensor of shape (..., out_features)
            The outputs.
        """
        weight = self.weight.to(input.dtype)
        bias = None if self.bias is None else self.bias.to(input.dtype)
        return F.linear(input, weight, bias)

    def dequantize(self):
        """A float ``nn.Linear`` with the dequantised weight (for repeated inference).

        Returns
        -------
        linear : torch.nn.Linear
            Same sizes, dtype and device.
        """
        linear = nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None,
            dtype=self.dtype, device=self.qweight.device,
        )
        with torch.no_grad():
            linear.weight.copy_(self.weight)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def get_extra_state(self):
        """The layout, saved in ``state_dict`` and checked on load.

        Returns
        -------
        state : dict
            ``in_features``, ``out_features``, ``bits``, ``group_size``, ``sym``.
        """
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bits": self.bits,
            "group_size": self.group_size,
            "sym": self.sym,
        }

    def set_extra_state(self, state):
        """Check that a loaded state dict has this layer's layout.

        Parameters
        ----------
        state : dict
            The layout saved by :meth:`get_extra_state`.
        """
        mine = self.get_extra_state()
        different = {
            key: (state.get(key), value) for key, value in mine.items() if state.get(key) != value
        }
        if different:
            details = ", ".join(
                f"{key}={got!r} (this layer: {want!r})" for key, (got, want) in different.items()
            )
            raise ValueError(
                f"the state dict is of a different QuantLinear layout: {details}; build the layer "
                "with the same bits, group_size and sizes."
            )

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
            f"group_size={self.group_size}, bias={self.bias is not None}"
        )
