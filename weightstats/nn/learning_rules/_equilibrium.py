"""Holomorphic equilibrium propagation with Jacobian homeostasis.

Laborieux & Zenke (ICLR 2024), reference code Laborieux-Axel/generalized-
holo-ep (``models/dyn.py``, ``models/vfs.py``). The network is a layered
recurrent net whose neurons ``u`` settle to a fixed point ``u* = F(u*)``:
every layer receives the layer below through forward weights (with
bias) and the layer above through feedback weights (no bias); the output
neurons feed a softmax readout, whose cross-entropy gradient ``dL/drho``
nudges them with strength ``beta``: ``F_out += beta dL/drho(u_out)``. The
rate function is the reference's ``rho(u) = 1 / (1 + exp(2 - 4u))``.

Gradients (per batch, averaged over rows):

* ``"hep"`` (holomorphic EP): from the free fixed point ``u*``, relax
  under ``N`` nudges ``beta_k = beta exp(2 pi i k / N)``
  and average ``rho(u*(beta_k)) / beta_k`` (the reference's real
  conjugate-pair form; ``N = 1`` is the one-sided difference ``(rho(u*(
  beta)) - rho(u*)) / beta``, ``N = 2`` the symmetric one). This estimates
  ``d rho(u*) / d beta``, which the parameters receive through the
  transposed parameter Jacobian of ``F`` at ``u*``; the readout gets its
  own gradient. With symmetric weights this is the gradient of the loss at
  the fixed point (its error falls as ``beta^N``).
* ``"rbp"`` (recurrent backpropagation): the adjoint ``delta = J^T delta
  + dL/du`` at ``u*`` (``J = dF/du``) by the same damped iteration, then the same
  transposed parameter Jacobian: the true gradient at the fixed point for
  any weights.

Jacobian homeostasis adds ``homeostasis * E[||J e||^2 - e^T J^2 e] / dim``
(``e ~ N(0, I)``, five draws per row as in the reference), whose mean is
``||J - J^T||_F^2 / (2 dim)``. As in the reference, ``J`` is the Jacobian
of the vector field ``F(u) - u`` with respect to the firing rates
``rho(u)``; for this layered net it is the block matrix of forward and
feedback weights minus the identity, so homeostasis pulls each feedback
matrix towards the transposed forward matrix.

The dynamics sweep the layers bottom to top, each layer moving to ``F_l``
computed from the freshest rates of its neighbours (a Gauss-Seidel sweep;
``step_size < 1`` damps it). The reference updates all layers at once
(``u <- F(u)``); the fixed points are the same, but on digits the
simultaneous update left some rows in period-2 cycles and needed about
four times as many steps. In every phase (free, nudged) each row stops
once its ``max |F(u) - u| < tol`` (checked every 5 steps, so a row's fixed
point does not depend on the rest of the batch), the adjoint once all rows
have; or at the step limit. The
reference runs fixed step counts (T1 = 150, T2 = 20), which ``tol=0``
reproduces. The adjoint of ``"rbp"`` is iterated in the simultaneous
(Jacobi) form, damped by ``step_size``.
"""

import math
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn

from .._core import (
    NeuralNetClassifier,
    batch_features,
    batch_sample_weight,
    check_finite_tensor,
    fill_net_doc,
)

__all__ = [
    "EquilibriumNet",
    "EquilibriumPropagationClassifier",
    "homeostatic_loss",
    "jacobian_asymmetry",
]

# Draws of e ~ N(0, I) per row in the homeostatic loss (the reference's five).
_HOMEOSTASIS_DRAWS = 5
_RULES = ("hep", "rbp")


def _exp(z):
    """``exp`` of a complex tensor from real operations (3x faster than torch's on CPU)."""
    modulus = torch.exp(z.real)
    return torch.complex(modulus * torch.cos(z.imag), modulus * torch.sin(z.imag))


def _rate(u):
    """The reference's rate function ``1 / (1 + exp(2 - 4u))`` (holomorphic)."""
    if u.is_complex():
        z = 2 - 4 * u
        # exp(80) is finite in float32 and makes the rate 0 to float precision.
        return 1 / (1 + _exp(torch.complex(z.real.clamp(max=80.0), z.imag)))
    return torch.sigmoid(4 * u - 2)


def homeostatic_loss(jvp, eps):
    """The Jacobian homeostasis loss ``mean((||J e||^2 - <e, J(J e)>) / dim)``.

    For ``e ~ N(0, I)`` its expectation is ``||J - J^T||_F^2 / (2 dim)``:
    zero exactly when ``J`` is symmetric. Its gradient needs only
    Jacobian-vector products, never ``J`` itself.

    Parameters
    ----------
    jvp : callable
        ``jvp(e)`` returns ``J e`` row by row for ``e`` of shape
        (n_draws, dim); it must be differentiable in the parameters to be
        trained.
    eps : tensor of shape (n_draws, dim)
        Probe vectors, standard normal.

    Returns
    -------
    loss : scalar tensor
        The average over the draws.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import homeostatic_loss
    >>> J = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    >>> eps = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    >>> loss = homeostatic_loss(lambda e: e @ J.T, eps)
    >>> exact = torch.linalg.matrix_norm(J - J.T) ** 2 / (2 * 2)
    >>> round(float(exact), 3), bool(abs(loss - exact) < 0.03)
    (2.0, True)
    """
    if eps.ndim != 2:
        raise ValueError(f"eps must have shape (n_draws, dim); got {tuple(eps.shape)}.")
    j_eps = jvp(eps)
    j2_eps = jvp(j_eps)
    return ((j_eps.pow(2).sum(dim=1) - (eps * j2_eps).sum(dim=1)) / eps.shape[1]).mean()


class EquilibriumNet(nn.Module):
    """A layered recurrent network trained at its fixed point.

    Neurons ``u = (u_1, ..., u_L, u_out)`` (one entry per hidden layer, then
    ``n_outputs`` output neurons) start at 0 and settle to ``u = F(u)``, one
    layer after the other (bottom to top, ``u_l <- u_l + step_size (F_l(u)
    - u_l)`` from the freshest rates), with ``F_l = W_l rho(u_{l-1}) +
    b_l + B_l rho(u_{l+1})``, ``rho(u_0) = x``, forward weights ``W_l``
    (``forward_layers``) and feedback weights ``B_l`` (``feedback_layers``,
    no bias), independent unless ``symmetric`` (then ``B_l = W_{l+1}^T``).
    A linear ``readout`` of ``rho(u_out)`` gives the logits. Each row stops
    moving once its ``max |F(u) - u| < tol`` (checked every 5 steps), the
    phase when every row has stopped or after its maximum number of steps.

    ``forward`` runs the free phase and returns the logits (differentiable
    through the unrolled steps); :meth:`accumulate_gradients` puts the
    holomorphic-EP or recurrent-backpropagation gradient into ``.grad``
    instead, so the module trains in a plain torch loop as well as in
    :class:`EquilibriumPropagationClassifier`.

    Parameters
    ----------
    n_features : int
        Input width.
    n_outputs : int
        Number of classes.
    hidden_layer_sizes : tuple of int, default=(64,)
        Widths of the hidden layers (at least one).
    symmetric : bool, default=False
        Tie the feedback weights to the transposed forward weights.
    n_free_steps : int, default=300
        Most steps of the free phase.
    step_size : float in (0, 1], default=1.0
        Fraction of the way to ``F_l(u)`` a layer moves per sweep (damping
        for networks whose sweeps oscillate; it leaves the fixed points
        unchanged).
    tol : float, default=1e-4
        A row has settled when its ``max |F(u) - u|`` falls below it; 0 runs
        every step (the reference's fixed step counts).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import EquilibriumNet
    >>> _ = torch.manual_seed(0)
    >>> net = EquilibriumNet(4, 3, hidden_layer_sizes=(8,))
    >>> X, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> net(X).shape
    torch.Size([5, 3])
    >>> step = net.accumulate_gradients(X, y, beta=0.5, n_nudges=4)
    >>> sorted(step), step["residual"] < 1e-4
    (['free_steps', 'logits', 'loss', 'residual'], True)
    >>> sorted(name for name, p in net.named_parameters() if p.grad is not None)[:2]
    ['feedback_layers.0.weight', 'forward_layers.0.bias']
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(64,), symmetric=False,
                 n_free_steps=300, step_size=1.0, tol=1e-4):
        super().__init__()
        if isinstance(hidden_layer_sizes, numbers.Integral):
            hidden_layer_sizes = (hidden_layer_sizes,)
        hidden = tuple(int(h) for h in hidden_layer_sizes)
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(
                f"hidden_layer_sizes must be one or more positive widths; got {hidden_layer_sizes}."
            )
        if not isinstance(n_free_steps, numbers.Integral) or n_free_steps < 1:
            raise ValueError(f"n_free_steps must be an integer >= 1; got {n_free_steps!r}.")
        if not isinstance(step_size, numbers.Real) or not 0 < step_size <= 1:
            raise ValueError(f"step_size must be in (0, 1]; got {step_size!r}.")
        if not isinstance(tol, numbers.Real) or not tol >= 0:
            raise ValueError(f"tol must be a number >= 0; got {tol!r}.")
        self.sizes = (*hidden, int(n_outputs))
        widths = (int(n_features), *self.sizes)
        self.forward_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])
        )
        self.symmetric = bool(symmetric)
        self.feedback_layers = nn.ModuleList(
            () if self.symmetric
            else (nn.Linear(b, a, bias=False) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        )
        self.readout = nn.Linear(int(n_outputs), int(n_outputs))
        self.n_free_steps = int(n_free_steps)
        self.step_size = float(step_size)
        self.tol = float(tol)

    # ------------------------------------------------------------ dynamics
    def _weights(self, dtype=None):
        """Forward (W, b) pairs and feedback matrices, optionally cast."""
        cast = (lambda t: t) if dtype is None else (lambda t: t.to(dtype))
        forward = [(cast(m.weight), cast(m.bias)) for m in self.forward_layers]
        if self.symmetric:
            feedback = [w.T for w, _ in forward[1:]]
        else:
            feedback = [cast(m.weight) for m in self.feedback_layers]
        return forward, feedback

    def _nudge(self, rate_out, target, readout):
        """``dL/drho(u_out)`` of the summed cross-entropy: ``R^T (softmax - y)``."""
        weight, bias = readout
        logits = rate_out @ weight.T + bias
        # Shifting by a real constant keeps softmax holomorphic in the logits.
        shifted = logits - logits.real.max(dim=1, keepdim=True).values
        exps = _exp(shifted) if shifted.is_complex() else torch.exp(shifted)
        probs = exps / exps.sum(dim=1, keepdim=True)
        return (probs - target) @ weight

    def _drive(self, u, x, weights, beta=0.0, target=None, readout=None, rates=None):
        """``F(u)``: the new pre-activations (from given ``rates`` if passed)."""
        forward, feedback = weights
        rates = [_rate(layer) for layer in u] if rates is None else rates
        new = []
        for index, (weight, bias) in enumerate(forward):
            below = x if index == 0 else rates[index - 1]
            drive = below @ weight.T + bias
            if index < len(forward) - 1:
                drive = drive + rates[index + 1] @ feedback[index].T
            new.append(drive)
        if beta != 0:
            new[-1] = new[-1] + beta * self._nudge(rates[-1], target, readout)
        return new

    def _sweep(self, u, rates, x, weights, beta, target, readout, active, measure):
        """One pass over the layers, bottom to top, each from the freshest rates (in place).

        Only the rows in ``active`` move. Returns each row's ``max_l |F_l(u)
        - u_l|`` when ``measure`` (else None).
        """
        forward, feedback = weights
        dt, last, change = self.step_size, len(forward) - 1, None
        for index, (weight, bias) in enumerate(forward):
            below = x if index == 0 else rates[index - 1]
            drive = below @ weight.T + bias
            if index < last:
                drive = drive + rates[index + 1] @ feedback[index].T
            elif beta != 0:
                drive = drive + beta * self._nudge(rates[index], target, readout)
            if measure:
                row_change = (drive - u[index]).detach().abs().amax(dim=1)
                change = row_change if change is None else torch.maximum(change, row_change)
            moved = drive if dt == 1 else u[index] + dt * (drive - u[index])
            u[index] = torch.where(active[:, None], moved, u[index])
            rates[index] = _rate(u[index])
        return change

    def relax(self, X, n_steps=None, *, state=None, beta=0.0, y=None, return_info=False):
        """Run the dynamics until they settle (or for ``n_steps`` steps).

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features)
            Inputs (cast to complex for a complex ``beta``).
        n_steps : int or None, default=None
            Most steps; None is ``n_free_steps``.
        state : list of tensors or None, default=None
            Starting neurons; None starts from zero.
        beta : float or complex, default=0.0
            Nudging strength (needs ``y``).
        y : tensor of shape (n_samples,) or None, default=None
            Class indices for the nudge.
        return_info : bool, default=False
            Also return the steps taken and the last residual.

        Returns
        -------
        state : list of tensors
            The neurons, one tensor per layer.
        steps, residual : int, float
            Only with ``return_info``: steps taken and the last
            ``max |F(u) - u|`` checked (inf if never checked).
        """
        n_steps = self.n_free_steps if n_steps is None else int(n_steps)
        dtype = torch.complex64 if isinstance(beta, complex) else X.dtype
        if dtype.is_complex and X.dtype == torch.float64:
            dtype = torch.complex128
        x = X.to(dtype)
        weights = self._weights(dtype)
        target = readout = None
        if beta != 0:
            target = F.one_hot(y, self.sizes[-1]).to(dtype)
            readout = (self.readout.weight.to(dtype), self.readout.bias.to(dtype))
        if state is None:
            u = [x.new_zeros(x.shape[0], size) for size in self.sizes]
        else:
            u = [layer.to(dtype) for layer in state]
        rates = [_rate(layer) for layer in u]
        # Each row stops at the first check where its own change is below tol,
        # so a row's fixed point does not depend on the other rows of the batch.
        active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        residual, steps = math.inf, 0
        while steps < n_steps:
            steps += 1
            check = self.tol > 0 and (steps % 5 == 0 or steps == n_steps)
            change = self._sweep(u, rates, x, weights, beta, target, readout, active, check)
            if check:
                residual = float(change.max()) if change.numel() else 0.0
                active = active & (change >= self.tol)
                if not bool(active.any()):
                    break
        return (u, steps, residual) if return_info else u

    def logits(self, state):
        """Readout logits of a state.

        Parameters
        ----------
        state : list of tensor
            The layers' states (as :meth:`relax` returns them).

        Returns
        -------
        logits : tensor of shape (n_samples, n_outputs)
            The readout of the last layer's firing rates.
        """
        return self.readout(_rate(state[-1]))

    def forward(self, X):
        """Logits at the end of the free phase.

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        logits : tensor of shape (n_samples, n_outputs)
            The readout of the output neurons.
        """
        return self.logits(self.relax(X))

    def residual(self, X, state=None):
        """``max |F(u) - u|`` at the end of the free phase (0 at a fixed point).

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features)
            Inputs.
        state : list of tensors or None, default=None
            A free-phase state; None runs the free phase.

        Returns
        -------
        residual : float
            The largest entry of the vector field over neurons and rows.
        """
        with torch.no_grad():
            u = self.relax(X) if state is None else state
            new = self._drive(u, X, self._weights())
            return max(float((a - b).abs().max()) for a, b in zip(new, u))

    # ------------------------------------------------------------ jacobian
    def _lateral(self, eps_rates):
        """``J e``: the Jacobian of ``F(u) - u`` in the rates applied to ``e`` (flat rows)."""
        pieces = list(torch.split(eps_rates, self.sizes, dim=1))
        forward, feedback = self._weights()
        out = []
        for index in range(len(self.sizes)):
            value = -pieces[index]
            if index > 0:
                value = value + pieces[index - 1] @ forward[index][0].T
            if index < len(self.sizes) - 1:
                value = value + pieces[index + 1] @ feedback[index].T
            out.append(value)
        return torch.cat(out, dim=1)

    def rate_field(self, rates, X):
        """``F - u`` as a function of the firing rates (flat rows), at ``beta = 0``.

        Parameters
        ----------
        rates : tensor of shape (n_samples, n_neurons)
            Firing rates of all layers, concatenated.
        X : tensor of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        field : tensor of shape (n_samples, n_neurons)
            ``F(u) - u`` with ``F`` fed ``rates`` directly and ``u`` replaced
            by ``rates`` (the reference's vector field without activation);
            its Jacobian in ``rates`` is the ``J`` of the homeostasis.
        """
        pieces = list(torch.split(rates, self.sizes, dim=1))
        new = self._drive(None, X, self._weights(), rates=pieces)
        return torch.cat(new, dim=1) - rates

    def jacobian(self, X):
        """The Jacobian ``J`` of the vector field in the rates, at each row's fixed point.

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        J : tensor of shape (n_samples, n_neurons, n_neurons)
            One Jacobian per row (for this architecture they are all the
            weight block matrix minus the identity).
        """
        with torch.no_grad():
            rates = torch.cat([_rate(u) for u in self.relax(X)], dim=1)

        def field(r, x):
            return self.rate_field(r[None], x[None])[0]

        return torch.func.vmap(torch.func.jacrev(field))(rates, X).detach()

    # ----------------------------------------------------------- gradients
    def _cotangent_hep(self, X, y, free, beta, n_nudges, n_steps):
        """``d rho(u*) / d beta`` from nudged fixed points (the reference's ``du_dbeta``)."""
        def rates(b):
            return [_rate(u) for u in self.relax(X, n_steps, state=free, beta=b, y=y)]

        if n_nudges == 1:
            nudged = rates(beta)
            return [(a - _rate(u)) / beta for a, u in zip(nudged, free)]
        estimate = [a / beta for a in rates(beta)]
        if n_nudges % 2 == 0:
            estimate = [e - a / beta for e, a in zip(estimate, rates(-beta))]
        for k in range(1, (n_nudges + 1) // 2):
            point = beta * complex(math.cos(2 * math.pi * k / n_nudges),
                                   math.sin(2 * math.pi * k / n_nudges))
            # The conjugate nudge gives the conjugate rates: count both at once.
            estimate = [e + 2 * (a / point).real for e, a in zip(estimate, rates(point))]
        return [e / n_nudges for e in estimate]

    def _cotangent_rbp(self, X, y, free, n_steps):
        """The adjoint ``delta = J_u^T delta + dL/du`` at the fixed point (the reference's
        ``delta_rbp``), iterated with the same damping and stopping rule as the dynamics."""
        state = [u.detach().requires_grad_(True) for u in free]
        with torch.enable_grad():
            new = self._drive(state, X, self._weights())
            loss = F.cross_entropy(self.logits(state), y, reduction="sum")
            (dl_out,) = torch.autograd.grad(loss, state[-1])
            dl = [torch.zeros_like(u) for u in state[:-1]] + [dl_out]
            delta = [torch.zeros_like(u) for u in state]
            for step in range(1, n_steps + 1):
                back = torch.autograd.grad(new, state, grad_outputs=delta, retain_graph=True)
                change = [b + g - d for b, g, d in zip(back, dl, delta)]
                delta = [d + self.step_size * c for d, c in zip(delta, change)]
                if self.tol > 0 and step % 5 == 0:
                    if max(float(c.abs().max()) for c in change) < self.tol:
                        break
        return [d.detach() for d in delta]

    def accumulate_gradients(self, X, y, *, rule="hep", beta=0.5, n_nudges=4,
                             n_nudged_steps=100, homeostasis=0.0, sample_weight=None):
        """Add a learning rule's gradient estimate to every parameter's ``.grad``.

        Runs the free phase, then the rule (see the module's description),
        and back-propagates one surrogate whose gradient is the estimate:
        ``mean_i w_i <F(u*_i; theta), c_i>`` (``c`` the rule's cotangent,
        held fixed) plus the weighted mean cross-entropy of the readout plus
        ``homeostasis`` times :func:`homeostatic_loss`. Call
        ``optimizer.zero_grad()`` before and ``optimizer.step()`` after.

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features)
            Inputs.
        y : tensor of shape (n_samples,)
            Class indices.
        rule : {"hep", "rbp"}, default="hep"
            Holomorphic EP or recurrent backpropagation.
        beta : float, default=0.5
            Nudging strength ``|beta|`` (hEP).
        n_nudges : int, default=4
            Nudges ``N`` on the circle (hEP).
        n_nudged_steps : int, default=100
            Most steps of each nudged phase (hEP) or adjoint iterations
            (RBP); both stop early at ``tol``.
        homeostasis : float, default=0.0
            Weight of the Jacobian homeostasis loss.
        sample_weight : tensor of shape (n_samples,) or None, default=None
            Row weights (mean one for a weighted mean).

        Returns
        -------
        step : dict
            ``loss`` (the weighted mean cross-entropy at the free fixed
            point), ``logits``, ``free_steps`` (steps the free phase took)
            and ``residual`` (its last ``max |F(u) - u|``).
        """
        if rule not in _RULES:
            raise ValueError(f"rule must be one of {_RULES}; got {rule!r}.")
        y = y.reshape(-1).long()
        with torch.no_grad():
            free, free_steps, residual = self.relax(X, return_info=True)
            if rule == "hep":
                cotangent = self._cotangent_hep(X, y, free, beta, n_nudges, n_nudged_steps)
        if rule == "rbp":
            cotangent = self._cotangent_rbp(X, y, free, n_nudged_steps)
        for tensor in cotangent:
            check_finite_tensor(
                tensor, "the gradient estimate (the nudged phases diverged; lower beta or lr)"
            )
        n = X.shape[0]
        weight = X.new_ones(n) if sample_weight is None else sample_weight.to(X.dtype)
        drive = self._drive(free, X, self._weights())
        surrogate = sum((d * c).sum(dim=1) for d, c in zip(drive, cotangent))
        logits = self.logits(free)
        losses = F.cross_entropy(logits, y, reduction="none")
        objective = (weight * (surrogate + losses)).sum() / n
        if homeostasis:
            eps = torch.randn(_HOMEOSTASIS_DRAWS * n, sum(self.sizes), device=X.device,
                              dtype=X.dtype)
            objective = objective + homeostasis * homeostatic_loss(self._lateral, eps)
        objective.backward()
        return {"loss": (weight * losses).mean().detach(), "logits": logits.detach(),
                "free_steps": free_steps, "residual": residual}


# ------------------------------------------------------------ symmetry
def jacobian_asymmetry(model, X, return_norms=False):
    """How symmetric the network's Jacobian is: ``s / (s + a)``.

    ``s = ||(J + J^T) / 2||_F`` and ``a = ||(J - J^T) / 2||_F`` for the
    Jacobian ``J`` of the vector field in the firing rates at each row's
    free fixed point (the reference's measure), averaged over rows: 1 for
    a symmetric Jacobian, where equilibrium propagation is exact.

    Parameters
    ----------
    model : EquilibriumNet or fitted EquilibriumPropagationClassifier
        The network.
    X : array-like or tensor of shape (n_samples, n_features)
        Inputs at whose fixed points ``J`` is taken.
    return_norms : bool, default=False
        Also return the norms.

    Returns
    -------
    symmetry : float
        ``s / (s + a)`` in [0, 1], averaged over rows.
    norms : dict
        Only with ``return_norms``: row averages of ``symmetric`` (``s``),
        ``antisymmetric`` (``a``) and ``asymmetry`` (``||J - J^T||_F =
        2 a``).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import EquilibriumNet, jacobian_asymmetry
    >>> _ = torch.manual_seed(0)
    >>> X = torch.rand(4, 6)
    >>> jacobian_asymmetry(EquilibriumNet(6, 3, (5,), symmetric=True), X)
    1.0
    >>> jacobian_asymmetry(EquilibriumNet(6, 3, (5,)), X) < 1
    True
    """
    module = getattr(model, "module_", model)
    if not isinstance(module, EquilibriumNet):
        raise TypeError(
            f"jacobian_asymmetry needs an EquilibriumNet or a fitted "
            f"EquilibriumPropagationClassifier; got {type(model).__name__}."
        )
    param = next(module.parameters())
    X = torch.as_tensor(np.asarray(X, dtype=np.float32) if not isinstance(X, torch.Tensor) else X,
                        device=param.device).to(param.dtype)
    check_finite_tensor(X, "X")
    J = module.jacobian(X)
    s = torch.linalg.matrix_norm((J + J.transpose(1, 2)) / 2)
    a = torch.linalg.matrix_norm((J - J.transpose(1, 2)) / 2)
    symmetry = float((s / (s + a)).mean())
    if not return_norms:
        return symmetry
    return symmetry, {"symmetric": float(s.mean()), "antisymmetric": float(a.mean()),
                      "asymmetry": float(2 * a.mean())}


# ----------------------------------------------------------- estimator
@fill_net_doc
class EquilibriumPropagationClassifier(NeuralNetClassifier):
    """A recurrent classifier trained by holomorphic equilibrium propagation.

    Trains an :class:`EquilibriumNet` (forward and independent feedback
    weights, settling to a fixed point) with the gradient estimate of
    holomorphic EP (``learning_rule="hep"``: ``n_nudges`` nudged phases on
    a circle of radius ``beta`` in the complex plane) or with recurrent
    backpropagation (``"rbp"``, the true gradient at the fixed point, for
    comparison). Without weight symmetry EP's estimate is biased; Jacobian
    homeostasis (``homeostasis > 0``) adds a loss that makes the network's
    Jacobian more symmetric, which brings the estimate closer to the true
    gradient (Laborieux & Zenke, ICLR 2024).

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=EquilibriumNet
        The network; it must be an :class:`EquilibriumNet` (sizes and the
        dynamics parameters below are filled in for the class).
    hidden_layer_sizes : tuple of int, default=(64,)
        Widths of the hidden layers.
    beta : float, default=0.5
        Nudging strength ``|beta|`` (the reference's Table 1 uses 0.05 and
        0.5).
    n_nudges : int, default=4
        Nudges ``N`` on the circle; 1 is one-sided (classic EP), 2 the
        symmetric difference, more use complex nudges.
    homeostasis : float, default=0.5
        Weight of the Jacobian homeostasis loss (the reference's default
        coefficient); 0 disables it.
    symmetric : bool, default=False
        Tie feedback weights to the transposed forward weights (classic
        EP, where the estimate becomes exact as ``N`` grows).
    n_free_steps : int, default=300
        Most steps of the free phase (training and prediction).
    n_nudged_steps : int, default=100
        Most steps of each nudged phase, or adjoint iterations for
        ``"rbp"``.
    step_size : float in (0, 1], default=1.0
        Damping of the dynamics (see :class:`EquilibriumNet`).
    tol : float, default=1e-4
        Phases stop once ``max |F(u) - u| < tol``.
    learning_rule : {"hep", "rbp"}, default="hep"
        The gradient estimate.
    **kwargs : dict
        Every parameter of :class:`NeuralNetClassifier` (``lr``,
        ``max_epochs``, ``batch_size``, ``optimizer``, ``random_state``,
        ``callbacks``, ...) and prefixed skorch parameters. Unless given as
        ``optimizer__*``, SGD runs with momentum 0.9 (the reference's
        setting).

    Attributes
    ----------
    {net_attributes}
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    Notes
    -----
    The history records per epoch ``jacobian_symmetry`` (``s / (s + a)``,
    :func:`jacobian_asymmetry`), ``free_steps`` (mean steps of the free
    phase) and ``unsettled`` (share of batches whose free phase hit
    ``n_free_steps`` before ``tol``); a ``ConvergenceWarning`` reports a
    fit whose last epoch had unsettled batches, since the fixed-point
    gradients then are unreliable.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import EquilibriumPropagationClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> net = EquilibriumPropagationClassifier(
    ...     hidden_layer_sizes=(32,), optimizer=torch.optim.Adam, lr=0.01, max_epochs=5,
    ...     batch_size=32, random_state=0, verbose=0,
    ... ).fit(X[:500], y[:500])
    >>> net.score(X[500:1000], y[500:1000]) > 0.7
    True
    >>> 0 < net.history[-1, "jacobian_symmetry"] < 1
    True
    """

    _extra_constraints = {
        **NeuralNetClassifier._extra_constraints,
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "beta": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_nudges": [Interval(numbers.Integral, 1, None, closed="left")],
        "homeostasis": [Interval(numbers.Real, 0, None, closed="left")],
        "symmetric": ["boolean"],
        "n_free_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_nudged_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "step_size": [Interval(numbers.Real, 0, 1, closed="right")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "learning_rule": [StrOptions(set(_RULES))],
    }

    def __init__(self, module=EquilibriumNet, *, hidden_layer_sizes=(64,), beta=0.5, n_nudges=4,
                 homeostasis=0.5, symmetric=False, n_free_steps=300, n_nudged_steps=100,
                 step_size=1.0, tol=1e-4, learning_rule="hep", **kwargs):
        super().__init__(module, **kwargs)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.beta = beta
        self.n_nudges = n_nudges
        self.homeostasis = homeostasis
        self.symmetric = symmetric
        self.n_free_steps = n_free_steps
        self.n_nudged_steps = n_nudged_steps
        self.step_size = step_size
        self.tol = tol
        self.learning_rule = learning_rule

    def _optimizer_defaults(self):
        return {"momentum": 0.9}

    def _inferred_module_params(self):
        params = super()._inferred_module_params()
        params.update(hidden_layer_sizes=tuple(np.atleast_1d(self.hidden_layer_sizes).tolist()),
                      symmetric=self.symmetric, n_free_steps=self.n_free_steps,
                      step_size=self.step_size, tol=self.tol)
        return params

    def initialize_module(self):
        """Instantiate the module and check that it is an :class:`EquilibriumNet`.

        Returns
        -------
        self : object
            The net, with ``module_`` set.
        """
        super().initialize_module()
        if not isinstance(self.module_, EquilibriumNet):
            raise TypeError(
                f"{type(self).__name__} trains an EquilibriumNet; got module "
                f"{type(self.module_).__name__}."
            )
        return self

    def train_step_single(self, batch, **fit_params):
        """Compute the learning rule's gradient of one batch (no backprop through time).

        Parameters
        ----------
        batch : tuple
            The batch ``(X, y)``.
        **fit_params : dict
            Unused.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": logits}`` at the free fixed point.
        """
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        X = to_tensor(batch_features(Xi), device=self.device)
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes one tensor of features per batch.")
        weight = batch_sample_weight(Xi)
        if weight is not None:
            weight = to_tensor(weight, device=self.device).reshape(-1)
        step = self.module_.accumulate_gradients(
            X.float(), to_tensor(yi, device=self.device), rule=self.learning_rule,
            beta=float(self.beta), n_nudges=int(self.n_nudges),
            n_nudged_steps=int(self.n_nudged_steps), homeostasis=float(self.homeostasis),
            sample_weight=weight,
        )
        self._epoch_phases.append((step["free_steps"], step["residual"] >= self.tol > 0))
        self._last_batch = X[:10].float()
        return {"loss": step["loss"], "y_pred": step["logits"]}

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Reset the per-epoch record of the free phases.

        Parameters
        ----------
        net : NeuralNet
            This net.
        dataset_train, dataset_valid : torch Dataset, default=None
            The data of this fit.
        **kwargs : dict
            Other arguments skorch passes.
        """
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        self._epoch_phases = []

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Record the Jacobian symmetry and how the free phases settled.

        Parameters
        ----------
        net : NeuralNet
            This net.
        dataset_train, dataset_valid : torch Dataset, default=None
            The data of this fit.
        **kwargs : dict
            Other arguments skorch passes.
        """
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        batch = self.__dict__.pop("_last_batch", None)
        phases = self.__dict__.pop("_epoch_phases", [])
        if batch is None or not phases:
            return
        self.history.record("jacobian_symmetry", jacobian_asymmetry(self.module_, batch))
        steps, unsettled = np.array(phases, dtype=np.float64).T
        self.history.record("free_steps", float(steps.mean()))
        self.history.record("unsettled", float(unsettled.mean()))
        run = getattr(self, "_training_run_", None)
        last = run is not None and len(self.history) == run.first_epoch + run.n_epochs
        if last and unsettled.any():
            warnings.warn(
                f"the free phase did not settle (max |F(u) - u| >= tol={self.tol:g}) within "
                f"n_free_steps={self.n_free_steps} in {unsettled.mean():.0%} of the last "
                "epoch's batches; the fixed-point gradients are unreliable there. Increase "
                "n_free_steps, lower step_size or lr.",
                ConvergenceWarning,
                stacklevel=2,
            )
