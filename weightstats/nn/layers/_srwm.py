"""The modern self-referential weight matrix (SRWM) layer.

Irie, Schlag, Csordás & Schmidhuber, "A Modern Self-Referential Weight
Matrix That Learns to Modify Itself" (ICML 2022); reference code
IDSIA/modern-srwm (``supervised_learning/layer.py``, class ``SRWMlayer``,
and the CUDA kernel ``self_ref_v0/self_ref_v0.cu``). Per head, one matrix
``W`` of shape ``(3 d + 4, d)`` (rows ``[W_y; W_q; W_k; w_b]``) maps the
head's input ``x_t`` to its output, query, key and four learning rates and
then rewrites itself::

    y_t, q_t, k_t, b_t = W_{t-1} x_t
    W_t = W_{t-1} + sigmoid(b_t) (x) (W_{t-1} phi(q_t) - W_{t-1} phi(k_t)) phi(k_t)^T

with ``phi = softmax`` over the head's ``d`` entries and ``(x)`` scaling the
rows of each sub-matrix by its own rate (``b_t[0]`` for ``W_y``, ``[1]`` for
``W_q``, ``[2]`` for ``W_k``, ``[3]`` for ``w_b``). The output at step ``t``
uses ``W_{t-1}``, as in the kernel.

There is no parallel form over time (the update is nonlinear in ``W``), so
the scan loops over time with every step batched over sequences and heads.
Its backward pass is written by hand, as in the reference kernel: rather
than keeping every ``W_t``, it walks back from the last matrix by
subtracting each step's update (an exact copy taken every
``_CHECKPOINT_EVERY`` steps stops rounding errors from accumulating).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .._core import check_finite_tensor

__all__ = ["SRWMLayer"]

# Steps between exact copies of the fast weights kept for the backward pass.
_CHECKPOINT_EVERY = 32


def _rate_rows(d_head, device):
    """Index of the rate pre-activation ``b`` that scales each row of ``W``, and its one-hot form."""
    group = torch.tensor([0] * d_head + [1] * d_head + [2] * d_head + [3] * 4, device=device)
    return 3 * d_head + group, F.one_hot(group, 4)


class _SelfReferentialScan(torch.autograd.Function):
    """The SRWM recurrence over a whole sequence, with a hand-written backward.

    ``x`` is ``(N, T, d)`` with ``N = batch * heads`` streams and ``W0``
    the initial fast weights ``(N, 3 d + 4, d)``; returns the outputs
    ``(N, T, d)`` and the final fast weights.

    The loop is bound by the number of torch calls per step, so each step is
    written with as few as possible. Products are row vector times matrix
    (``bmm`` of ``(N, 1, k)`` rows), about 2.5 times faster on CPU than matrix
    times column at these sizes: the forward pass keeps ``W`` transposed (the
    reference kernel's layout), the backward pass keeps ``W`` and its gradient
    in both layouts. Every step's vectors are kept (``O(T N d)`` memory), the
    matrices are not.
    """

    @staticmethod
    def forward(ctx, x, W0):
        n_seq, n_steps, d = x.shape
        rate_rows, one_hot = _rate_rows(d, x.device)
        bmm, softmax, sigmoid = torch.bmm, torch.softmax, torch.sigmoid
        Wt = W0.detach().transpose(1, 2).contiguous()  # (N, d, M)
        keep = any(ctx.needs_input_grad)
        rows = x.unsqueeze(2).unbind(1)  # (N, 1, d) per step
        outs, phis, rates, values, inserts, checkpoints = [], [], [], [], [], []
        for t in range(n_steps):
            if keep and t % _CHECKPOINT_EVERY == 0:
                checkpoints.append(Wt.clone())
            o = bmm(rows[t], Wt)  # (N, 1, M): [y, q, k, b]
            phi = softmax(o[..., d : 3 * d].view(n_seq, 2, d), dim=-1)  # [phi(q); phi(k)]
            rate = sigmoid(o.index_select(2, rate_rows))  # (N, 1, M)
            value = bmm(phi.diff(dim=1), Wt)  # W phi(k) - W phi(q)
            insert = value * rate
            Wt.baddbmm_(phi[:, 1:].transpose(1, 2), insert, alpha=-1)
            outs.append(o)
            if keep:
                phis.append(phi)
                rates.append(rate)
                values.append(value)
                inserts.append(insert)
        o = torch.cat(outs, dim=1)  # (N, T, M)
        W_last = Wt.transpose(1, 2).contiguous()
        if keep:
            sigma = torch.sigmoid(o[..., 3 * d :])
            # minus the sigmoid's slope: the saved values are W (phi(k) - phi(q))
            slopes = (sigma * (sigma - 1)).unsqueeze(2).unbind(1)
            ctx.saved = (x, W_last, one_hot, phis, rates, slopes, values, inserts, checkpoints)
        return o[..., :d], W_last

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_W_last):
        # Signs: the forward keeps value = W (phi(k) - phi(q)) and
        # insert = value * rate, subtracted: W_t = W_{t-1} - insert phi(k)^T.
        x, W_last, one_hot, phis, rates, slopes, values, inserts, checkpoints = ctx.saved
        n_seq, n_steps, d = x.shape
        bmm, baddbmm, cat = torch.bmm, torch.baddbmm, torch.cat
        softmax_backward = torch.ops.aten._softmax_backward_data
        W = W_last.clone()  # walked back in place; the saved copy serves repeated backwards
        grad_W = torch.zeros_like(W) if grad_W_last is None else grad_W_last.contiguous().clone()
        grad_Wt = grad_W.transpose(1, 2).contiguous()
        if grad_out is None:
            grad_out = torch.zeros_like(x)
        grad_rows = grad_out.unsqueeze(2).unbind(1)
        one_hot = one_hot.to(x.dtype)
        # right factors of the gradient's rank-2 update: [phi(q) - phi(k); x_t]
        rights = cat((-torch.stack(phis, dim=1).diff(dim=2), x.unsqueeze(2)), dim=2).unbind(1)
        grad_x = []
        for t in reversed(range(n_steps)):
            phi, insert, right = phis[t], inserts[t], rights[t]
            k = phi[:, 1:]
            # back to W_{t-1}: undo the update, or restore the exact copy
            if t % _CHECKPOINT_EVERY == 0:
                W.copy_(checkpoints[t // _CHECKPOINT_EVERY].transpose(1, 2))
            else:
                W.baddbmm_(insert.transpose(1, 2), k)
            grad_insert = bmm(k, grad_Wt)  # of +insert: dL/dW_t phi(k)
            grad_value = grad_insert * rates[t]  # of W (phi(q) - phi(k))
            grad_b = ((grad_insert * values[t]) @ one_hot) * slopes[t]
            grad_q = bmm(grad_value, W)
            grad_k = baddbmm(grad_q, insert, grad_W)  # minus the gradient of phi(k)
            grad_phi = softmax_backward(cat((grad_q, grad_k.neg()), dim=1), phi, -1, phi.dtype)
            grad_o = cat((grad_rows[t], grad_phi.view(n_seq, 1, 2 * d), grad_b), dim=2)
            grad_x.append(bmm(grad_o, W))
            left = cat((grad_value, grad_o), dim=1)  # (N, 2, M)
            grad_W.baddbmm_(left.transpose(1, 2), right)
            grad_Wt.baddbmm_(right.transpose(1, 2), left)
        return torch.cat(grad_x[::-1], dim=1), grad_W


def srwm_scan(x, W0):
    """Run the SRWM recurrence on a batch of streams.

    Parameters
    ----------
    x : torch.Tensor of shape (N, T, d)
        Inputs of ``N`` independent (sequence, head) streams.
    W0 : torch.Tensor of shape (N, 3 * d + 4, d)
        Initial fast weights, rows ``[W_y; W_q; W_k; w_b]``.

    Returns
    -------
    y : torch.Tensor of shape (N, T, d)
        Outputs ``W_{t-1}[:d] x_t``.
    W : torch.Tensor of shape (N, 3 * d + 4, d)
        Fast weights after the last step.
    """
    return _SelfReferentialScan.apply(x, W0)


class SRWMLayer(nn.Module):
    """Modern self-referential weight matrix layer (Irie et al., 2022).

    Each of ``n_heads`` heads owns a weight matrix that produces, from its
    slice of the input, the output, a query, a key and four learning rates,
    and then modifies itself with a delta rule on those::

        y_t, q_t, k_t, b_t = W_{t-1} x_t
        W_t = W_{t-1} + sigmoid(b_t) (x) (W_{t-1} phi(q_t) - W_{t-1} phi(k_t)) phi(k_t)^T

    (``phi`` is the softmax over the head's ``d_head`` entries; each of the
    four rates scales the rows of one sub-matrix: output, query, key, rate
    rows). The heads' outputs are concatenated, projected back to
    ``d_model`` and added to the layer-normalised input, as in the
    reference ``SRWMlayer``.

    The fast weights start every sequence at the trained ``weight``; with
    ``stateful=True`` they carry over to the next call (a long sequence fed
    in segments gives the same outputs as fed whole; gradients stop at the
    segment boundary), until :meth:`reset_state`.

    Parameters
    ----------
    d_model : int
        Width of the input and output features.
    n_heads : int, default=4
        Number of heads (independent self-referential matrices).
    d_head : int, default=None
        Width of a head; ``d_model // n_heads`` when None (then ``n_heads``
        must divide ``d_model``). When ``n_heads * d_head != d_model`` a
        linear map (``in_proj``, no bias) takes the input to the heads' width;
        the reference has none and requires equality.
    beta_init : float, default=-1.0
        Mean of the initial learning-rate rows ``w_b`` (the rates start near
        ``sigmoid(beta_init)`` for inputs of unit scale); the reference's
        layer default. Its models use 0.
    stateful : bool, default=False
        Whether the fast weights carry over between calls.
    self_modify : bool, default=True
        Whether the matrix modifies itself; False freezes it at ``weight``
        (then each step is a fixed linear map: the no-memory baseline).
    input_softmax : bool, default=False
        Apply a softmax to each head's input slice (reference option
        ``use_input_softmax``).
    layer_norm : bool, default=True
        Add the output to ``LayerNorm(input)`` rather than to the input
        (reference ``use_ln``).
    dropout : float, default=0.0
        Dropout on the projected output.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (n_heads, 3 * d_head + 4, d_head)
        The initial self-referential matrices, rows ``[W_y; W_q; W_k; w_b]``
        (torch's ``(out, in)`` layout; the reference stores the transpose).
    out_linear : torch.nn.Linear
        Projection of the concatenated heads to ``d_model`` (no bias).
    state : torch.Tensor of shape (batch, n_heads, 3 * d_head + 4, d_head) or None
        With ``stateful=True``, the change of the fast weights from
        ``weight`` after the last call (detached); None before the first
        call and after :meth:`reset_state`.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import SRWMLayer
    >>> _ = torch.manual_seed(0)
    >>> layer = SRWMLayer(16, n_heads=2)
    >>> x = torch.randn(3, 10, 16)
    >>> layer(x).shape
    torch.Size([3, 10, 16])
    >>> layer.weight.shape  # per head: W_y, W_q, W_k (8 rows each), 4 rate rows
    torch.Size([2, 28, 8])

    A stateful layer fed a sequence in two segments gives the outputs of the
    whole sequence:

    >>> stateful = SRWMLayer(16, n_heads=2, stateful=True)
    >>> _ = stateful.load_state_dict(layer.state_dict())
    >>> parts = torch.cat([stateful(x[:, :4]), stateful(x[:, 4:])], dim=1)
    >>> torch.allclose(parts, layer(x), atol=1e-5)
    True
    """

    def __init__(
        self,
        d_model,
        n_heads=4,
        d_head=None,
        beta_init=-1.0,
        stateful=False,
        self_modify=True,
        input_softmax=False,
        layer_norm=True,
        dropout=0.0,
    ):
        super().__init__()
        d_model, n_heads = int(d_model), int(n_heads)
        if d_model < 1 or n_heads < 1:
            raise ValueError(
                f"d_model and n_heads must be positive; got d_model={d_model}, n_heads={n_heads}."
            )
        if d_head is None:
            if d_model % n_heads:
                raise ValueError(
                    f"n_heads={n_heads} does not divide d_model={d_model}; pass d_head (the "
                    "input is then projected to n_heads * d_head) or change n_heads."
                )
            d_head = d_model // n_heads
        d_head = int(d_head)
        if d_head < 1:
            raise ValueError(f"d_head must be positive; got {d_head}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_head
        self.stateful, self.self_modify = bool(stateful), bool(self_modify)
        self.input_softmax = bool(input_softmax)
        width = n_heads * d_head
        self.in_proj = nn.Identity() if width == d_model else nn.Linear(d_model, width, bias=False)
        self.weight = nn.Parameter(torch.empty(n_heads, 3 * d_head + 4, d_head))
        self.out_linear = nn.Linear(width, d_model, bias=False)
        self.layer_norm = nn.LayerNorm(d_model) if layer_norm else None
        self.dropout = nn.Dropout(dropout)
        self.state = None
        self.reset_parameters(beta_init)

    def reset_parameters(self, beta_init=-1.0):
        """Initialise as the reference: normal, std ``1 / sqrt(d_head)``.

        Parameters
        ----------
        beta_init : float, default=-1.0
            Mean of the learning-rate rows.
        """
        std = 1.0 / math.sqrt(self.d_head)
        with torch.no_grad():
            nn.init.normal_(self.weight, mean=0.0, std=std)
            self.weight[:, 3 * self.d_head :].add_(beta_init)
        self.out_linear.reset_parameters()
        if isinstance(self.in_proj, nn.Linear):
            self.in_proj.reset_parameters()

    def reset_state(self):
        """Forget the carried fast weights (the next call starts from ``weight``)."""
        self.state = None

    def forward(self, x, state=None, return_state=False):
        """Outputs of a batch of sequences.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, T, d_model)
            The inputs.
        state : torch.Tensor of shape (batch, n_heads, 3 * d_head + 4, d_head), default=None
            Change of the fast weights from ``weight`` to start from (as
            returned with ``return_state``); gradients flow into it. None
            starts from ``weight``, or from the carried state when
            ``stateful``.
        return_state : bool, default=False
            Also return the change of the fast weights after the last step.

        Returns
        -------
        out : torch.Tensor of shape (batch, T, d_model)
            The layer's outputs.
        state : torch.Tensor
            Only with ``return_state``: the final change of the fast weights.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"SRWMLayer expects a tensor of shape (batch, T, {self.d_model}); got {shape}."
            )
        if x.shape[1] == 0:
            raise ValueError("SRWMLayer got an empty sequence (T = 0).")
        check_finite_tensor(x, "the input of SRWMLayer")
        batch, n_steps, _ = x.shape
        H, d, M = self.n_heads, self.d_head, self.weight.shape[1]
        if state is None and self.stateful:
            state = self.state
        if state is not None:
            if tuple(state.shape) != (batch, H, M, d):
                raise ValueError(
                    f"the state has shape {tuple(state.shape)} but this batch needs "
                    f"{(batch, H, M, d)}; a stateful layer needs the same batch size in every "
                    "call (call reset_state() to start again)."
                )
        heads = self.in_proj(x).view(batch, n_steps, H, d)
        if self.input_softmax:
            heads = torch.softmax(heads, dim=-1)
        W0 = self.weight.expand(batch, H, M, d)
        if state is not None:
            W0 = W0 + state
        if self.self_modify:
            streams = heads.transpose(1, 2).reshape(batch * H, n_steps, d)
            y, W_last = srwm_scan(streams, W0.reshape(batch * H, M, d))
            y = y.view(batch, H, n_steps, d).transpose(1, 2).reshape(batch, n_steps, H * d)
            W_last = W_last.view(batch, H, M, d)
        else:
            y = torch.einsum("bhmd,bthd->bthm", W0[:, :, :d], heads).reshape(batch, n_steps, -1)
            W_last = W0
        out = self.dropout(self.out_linear(y))
        out = out + (self.layer_norm(x) if self.layer_norm is not None else x)
        if not (self.stateful or return_state):
            return out
        new_state = W_last - self.weight
        if self.stateful:
            self.state = new_state.detach()
        return (out, new_state) if return_state else out

    def extra_repr(self):
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}, "
            f"stateful={self.stateful}, self_modify={self.self_modify}"
        )
