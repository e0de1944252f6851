"""The ``"neural"`` IPM of :class:`~weightstats.balancing.IPMBalancer`: an MLP critic.

The paper's ``WASS`` class (Kong, Park, Jung, Lee and Kim, ICML 2023): the
discriminators are multilayer perceptrons with LeakyReLU activations whose
Lipschitz constant is kept bounded, so the IPM is a Wasserstein-type distance.
There is no closed form: weights and critic are trained adversarially. This
module is imported by :mod:`weightstats.nn`, which registers the class as
``ipm="neural"``.
"""

import contextlib
import numbers
import time

import numpy as np
import torch
from joblib import effective_n_jobs
from torch import nn

from ...balancing import BalancingIPM
from ...utils import progress
from .._core import torch_random_context

__all__ = ["NeuralCriticIPM"]

# The reference code's number of epochs (weight updates).
REFERENCE_EPOCHS = 1000


@contextlib.contextmanager
def _torch_threads(n_jobs):
    """Run torch with ``n_jobs`` intra-op threads (sklearn semantics), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(effective_n_jobs(n_jobs))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NeuralCriticIPM(BalancingIPM):
    """A Wasserstein-type IPM over MLP critics, trained adversarially (``ipm="neural"``).

    The discriminator class of the paper's ``WASS`` option: MLPs ``f`` of
    ``n_layers`` hidden layers of ``hidden_units`` units with
    ``LeakyReLU(negative_slope)`` activations, on standardised covariates.
    The squared IPM between the target and the weighted source is
    ``max_f (sum_t f(x_t) t_t - sum_i m_i f(x_i))^2``.

    What is implemented, and how it compares with the reference code
    (``ggong369/CBIPM``, ``functions.py`` / ``CBIPM_ATT.py``):

    * **Critic**: ``d -> 100 -> 1`` with ``LeakyReLU(0.1)`` (as the
      reference), PyTorch's default initialisation.
    * **Lipschitz control**: the reference uses *both* a WGAN-GP gradient
      penalty and weight clipping, and so does the default here: every
      critic step maximises ``(mean difference)^2 - tau * mean((|grad f(x)|
      - 1)^2)`` over ``n_interpolates`` points ``x = a x_s + (1 - a) x_t``
      (``a ~ U(0, 1)``, one source and one target unit drawn uniformly with
      replacement), ``tau = 0.3``, ``n_interpolates = 100``; after each
      step the weight matrices (not the biases) of all linear layers are
      clamped to ``[-clip, clip]``, ``clip = 0.1``. Set
      ``gradient_penalty=0`` or ``clip=None`` to drop either.
    * **Weights**: ``masses = softmax(theta + log(base_mass))`` with free
      logits ``theta`` started at 0, i.e. at the sample-weighted uniform
      masses (the reference starts at uniform, ``theta = 1``). With
      ``weight_model="linear"``, ``theta = Z beta`` (no intercept, ``beta``
      started at 0; the reference initialises ``beta`` at random).
      ``l2_penalty`` adds ``sum(ridge * masses^2)`` to the weights' loss.
      ``max_weight`` is not supported (a softmax cannot hold a cap exactly):
      it raises ``ValueError``.
    * **Solver**: alternating Adam as the reference: per epoch
      ``critic_steps = 5`` critic steps (learning rate ``critic_lr = 0.3``),
      then one step on the weights (``lr = 0.03``). The reference runs
      1000 epochs; the default here is ``n_epochs = 300`` (about 2 to 4
      seconds on one CPU core at n = 1000), or the balancer's ``max_iter``
      when set. Computations are in float32, as in the reference.
    * **Convergence**: the epoch objective (the weights' loss against the
      current critic) fluctuates with the critic and collapses whenever the
      weights catch up with it, so neither it nor the balancer's ``tol``
      (meant for exact solvers) is used. Instead ``converged`` is True when
      the masses moved by at most ``tol`` (default 0.02) in total variation
      distance, ``0.5 * sum |m_now - m_then|``, over the last ``window``
      epochs (default a tenth of them, at least 20, at most all);
      otherwise the balancer warns with a ``ConvergenceWarning``.
      ``solver_info_["weight_change"]`` holds the value.
    * **Distance** (:meth:`squared_distance`, used for ``ipm_before_`` and
      ``ipm_after_``): a fresh critic, initialised from a seed drawn once
      per fit, is trained for ``distance_steps = 100`` steps on the two
      fixed weighted samples with the same penalty, clipping and learning
      rate; the value is the largest squared mean difference any of the
      (clipped) iterates reached. Every iterate is a member of the clipped
      class, so this is a deterministic lower bound of the squared IPM
      over that class, comparable before and after weighting.

    Training runs inside a forked torch RNG seeded from the balancer's
    ``random_state`` (the global torch RNG is untouched), on
    ``device`` (default ``"cpu"``), with ``n_jobs`` torch threads and a
    progress bar when the balancer is ``verbose``.

    Parameters
    ----------
    balancer : IPMBalancer
        The estimator being fitted; the remaining parameters come from its
        ``ipm_params``.
    hidden_units : int, default=100
        Width of the critic's hidden layers.
    n_layers : int, default=1
        Number of hidden layers.
    negative_slope : float, default=0.1
        Slope of the LeakyReLU for negative inputs.
    n_epochs : int, default=None
        Number of weight updates; ``None`` uses the balancer's ``max_iter``,
        or 300 when that is None too (the reference: 1000).
    critic_steps : int, default=5
        Critic updates per epoch.
    lr, critic_lr : float, default=0.03, 0.3
        Adam learning rates of the weights and of the critic.
    gradient_penalty : float, default=0.3
        ``tau``, the gradient-penalty coefficient; 0 turns it off.
    n_interpolates : int, default=100
        Points at which the gradient penalty is evaluated.
    clip : float or None, default=0.1
        Bound on the absolute values of the critic's weight matrices after
        every step; ``None`` turns clipping off.
    distance_steps : int, default=100
        Critic steps of :meth:`squared_distance`.
    tol : float, default=0.02
        Largest total variation distance between the masses at the end and
        ``window`` epochs before that counts as converged.
    window : int, default=None
        Epochs per window of the convergence check (``None``: a tenth of
        ``n_epochs``, at least 20).
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Examples
    --------
    >>> import weightstats.nn  # registers ipm="neural"
    >>> from weightstats.balancing import IPMBalancer
    >>> from weightstats.datasets import make_kang_schafer
    >>> ks = make_kang_schafer(200, random_state=0)
    >>> bal = IPMBalancer(ipm="neural", random_state=0, ipm_params={"distance_steps": 30})
    >>> bal = bal.fit(ks.data, ks.treatment)  # the default 300 epochs: a few seconds
    >>> bal.solver_info_["iterations"], bal.solver_info_["converged"]
    (300, True)
    >>> bool(bal.ipm_after_ < 0.1 * bal.ipm_before_)
    True
    """

    supports_linear_model = True

    def __init__(self, balancer, *, hidden_units=100, n_layers=1, negative_slope=0.1,
                 n_epochs=None, critic_steps=5, lr=0.03, critic_lr=0.3, gradient_penalty=0.3,
                 n_interpolates=100, clip=0.1, distance_steps=100, tol=0.02, window=None,
                 device="cpu"):
        super().__init__(balancer)
        if getattr(balancer, "max_weight", None) is not None:
            raise ValueError(
                "ipm='neural' does not support max_weight: its softmax weights cannot hold a "
                "cap exactly. Use l2_penalty to limit extreme weights, or ipm='mmd'."
            )

        def positive_int(name, value, minimum=1):
            if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                    or value < minimum):
                raise ValueError(f"ipm_params[{name!r}] must be an integer >= {minimum}; "
                                 f"got {value!r}.")
            return int(value)

        def non_negative(name, value, strict=False):
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not np.isfinite(value) or value < 0 or (strict and value == 0)):
                kind = "a positive" if strict else "a non-negative"
                raise ValueError(f"ipm_params[{name!r}] must be {kind} number; got {value!r}.")
            return float(value)

        self.hidden_units = positive_int("hidden_units", hidden_units)
        self.n_layers = positive_int("n_layers", n_layers)
        self.negative_slope = non_negative("negative_slope", negative_slope)
        if n_epochs is None:
            n_epochs = balancer.max_iter if balancer.max_iter is not None else 300
        self.n_epochs = positive_int("n_epochs", n_epochs)
        self.critic_steps = positive_int("critic_steps", critic_steps)
        self.lr = non_negative("lr", lr, strict=True)
        self.critic_lr = non_negative("critic_lr", critic_lr, strict=True)
        self.gradient_penalty = non_negative("gradient_penalty", gradient_penalty)
        self.n_interpolates = positive_int("n_interpolates", n_interpolates)
        self.clip = None if clip is None else non_negative("clip", clip, strict=True)
        self.distance_steps = positive_int("distance_steps", distance_steps)
        self.tol = non_negative("tol", tol)
        self.window = None if window is None else positive_int("window", window)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"ipm_params['device'] is not a torch device: {device!r}.") from exc

    # ------------------------------------------------------------------ pieces

    def prepare(self, Z, rng):
        """Draw the seed of the critics that measure distances (one per fit).

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        rng : numpy.random.RandomState
            The fit's random state.
        """
        self.distance_seed_ = int(rng.randint(np.iinfo(np.int32).max))

    def critic(self, n_features):
        """A freshly initialised critic MLP (uses the current torch RNG).

        Parameters
        ----------
        n_features : int
            Input dimension.

        Returns
        -------
        module : torch.nn.Sequential
            ``n_features -> hidden_units (-> hidden_units ...) -> 1``.
        """
        layers, width = [], n_features
        for _ in range(self.n_layers):
            layers += [nn.Linear(width, self.hidden_units), nn.LeakyReLU(self.negative_slope)]
            width = self.hidden_units
        layers.append(nn.Linear(width, 1))
        return nn.Sequential(*layers).to(device=self.device, dtype=torch.float32)

    def _solver_name(self):
        how = [f"gradient penalty {self.gradient_penalty:g}"] if self.gradient_penalty else []
        how += [f"clipping {self.clip:g}"] if self.clip is not None else []
        return f"alternating Adam ({', '.join(how) or 'unconstrained critic'})"

    def _adam(self, params, lr):
        # The per-parameter loop beats the multi-tensor one on these small CPU
        # problems (about 2x per step); elsewhere keep torch's default.
        foreach = False if self.device.type == "cpu" else None
        return torch.optim.Adam(params, lr=lr, foreach=foreach)

    def _tensor(self, array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32,
                               device=self.device)

    def _critic_step(self, critic, optimizer, X, c, n_a):
        """One ascent step on ``(c'f(X))^2 - tau GP``; returns ``(c'f(X))^2`` before it.

        ``X`` stacks the two samples (the first has ``n_a`` rows) and ``c``
        their masses, the second sample's negated, so ``c'f(X)`` is the
        weighted mean difference.
        """
        n = X.shape[0]
        if self.gradient_penalty > 0:
            R = self.n_interpolates
            # One unit of each sample per interpolate (uniformly, with replacement).
            ia = torch.randint(n_a, (R,), device=self.device)
            ib = n_a + torch.randint(n - n_a, (R,), device=self.device)
            alpha = torch.rand(R, 1, dtype=X.dtype, device=self.device)
            points = (alpha * X[ia] + (1 - alpha) * X[ib]).requires_grad_(True)
            # The penalty gets its own forward pass: its double backward then
            # runs over R rows only.
            grad, = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
            gap = c @ critic(X).squeeze(-1)
            loss = self.gradient_penalty * ((grad.norm(dim=1) - 1) ** 2).mean() - gap * gap
        else:
            gap = c @ critic(X).squeeze(-1)
            loss = -gap * gap
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if self.clip is not None:
            with torch.no_grad():
                for module in critic:
                    if isinstance(module, nn.Linear):
                        module.weight.clamp_(-self.clip, self.clip)
        return float(gap.detach()) ** 2

    # ------------------------------------------------------------------ IPM

    def squared_distance(self, Z, source, source_mass, target, target_mass):
        """The squared IPM found by a critic trained on two fixed weighted samples.

        A critic initialised from the fit's distance seed takes
        ``distance_steps`` Adam steps (same penalty, clipping and learning
        rate as in training); the result is the largest squared weighted
        mean difference reached by any of its clipped iterates, a
        deterministic lower bound of the squared IPM over the class.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        source : ndarray of int
            Row indices of the first sample.
        source_mass : ndarray
            Its probability masses.
        target : ndarray of int
            Row indices of the second sample.
        target_mass : ndarray
            Its probability masses.

        Returns
        -------
        value : float
            Non-negative.
        """
        X = self._tensor(np.vstack([Z[source], Z[target]]))
        c = self._tensor(np.concatenate([source_mass, -np.asarray(target_mass)]))
        with _torch_threads(self.balancer.n_jobs), \
                torch_random_context(self.distance_seed_, self.device):
            critic = self.critic(Z.shape[1])
            optimizer = self._adam(critic.parameters(), self.critic_lr)
            best = 0.0
            for _ in range(self.distance_steps):
                best = max(best, self._critic_step(critic, optimizer, X, c, len(source)))
            with torch.no_grad():
                gap = float(c @ critic(X).squeeze(-1))
        return max(best, gap * gap)

    def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
        """Masses on ``source`` from alternating critic ascent and weight descent.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        source, target : ndarray of int
            Row indices of the reweighted units and of the target units.
        target_mass : ndarray of shape (len(target),)
            Target probability masses.
        base_mass : ndarray of shape (len(source),)
            Starting masses (proportional to the sample weights).
        cap : None
            ``max_weight`` is not supported (rejected when the class is
            created).
        ridge : ndarray of shape (len(source),)
            Coefficients of ``sum(ridge * masses**2)``.
        rng : numpy.random.RandomState
            The fit's random state (seeds the training).

        Returns
        -------
        masses : ndarray of shape (len(source),)
            Non-negative, summing to one.
        info : dict
            ``converged``, ``iterations`` (epochs), ``objective`` and
            ``initial_objective`` (:meth:`squared_distance` at the final and
            starting masses), ``adversarial_objective`` (the weights' loss in
            the last epoch), ``weight_change`` (the convergence statistic),
            ``solver``, ``representation`` and ``time``.
        """
        if cap is not None:  # pragma: no cover - rejected in __init__
            raise ValueError("ipm='neural' does not support max_weight.")
        start = time.perf_counter()
        bal = self.balancer
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n_s = len(source)
        X = self._tensor(np.vstack([Z[source], Z[target]]))
        Xs = X[:n_s]
        t = self._tensor(target_mass)
        log_base = self._tensor(np.log(base_mass))
        ridge_t = self._tensor(ridge)
        use_ridge = bool(np.any(ridge > 0))
        linear = bal.weight_model == "linear"
        last_loss = float("nan")
        # Short windows see little movement however far from done the weights are.
        window = min(self.window or max(20, self.n_epochs // 10), self.n_epochs)
        snapshot = None
        with _torch_threads(bal.n_jobs), torch_random_context(seed, self.device):
            critic = self.critic(Z.shape[1])
            critic_opt = self._adam(critic.parameters(), self.critic_lr)
            if linear:
                param = torch.zeros(Z.shape[1], dtype=torch.float32, device=self.device,
                                    requires_grad=True)
            else:
                param = torch.zeros(len(source), dtype=torch.float32, device=self.device,
                                    requires_grad=True)
            weight_opt = self._adam([param], self.lr)

            def masses():
                logits = Xs @ param if linear else param
                return torch.softmax(logits + log_base, dim=0)

            for epoch in progress(range(self.n_epochs), verbose=bal.verbose, desc="neural IPM"):
                with torch.no_grad():
                    c = torch.cat([masses(), -t])
                    if epoch == self.n_epochs - window:
                        snapshot = c[:n_s].cpu().numpy()
                for _ in range(self.critic_steps):
                    self._critic_step(critic, critic_opt, X, c, n_s)
                m = masses()
                with torch.no_grad():
                    f = critic(X).squeeze(-1)
                gap = m @ f[:n_s] + c[n_s:] @ f[n_s:]
                loss = gap * gap
                if use_ridge:
                    loss = loss + ridge_t @ (m * m)
                weight_opt.zero_grad()
                loss.backward()
                weight_opt.step()
                last_loss = float(loss.detach())
            with torch.no_grad():
                final = masses().cpu().numpy()
        final = np.maximum(final.astype(np.float64), 0.0)
        final = final / final.sum()
        # How far the weights still moved in the last window: the total
        # variation distance between the masses then and now.
        if snapshot is not None:
            moved = 0.5 * float(np.abs(final - snapshot / snapshot.sum()).sum())
        else:
            moved = float("inf")
        initial = self.squared_distance(Z, source, base_mass, target, target_mass)
        objective = self.squared_distance(Z, source, final, target, target_mass)
        return final, {
            "representation": (f"MLP critic ({self.n_layers}x{self.hidden_units}, "
                               f"LeakyReLU({self.negative_slope:g}))"),
            "solver": self._solver_name(),
            "converged": bool(moved <= self.tol),
            "iterations": self.n_epochs,
            "objective": objective,
            "initial_objective": initial,
            "adversarial_objective": last_loss,
            "weight_change": moved,
            "penalty": float(np.sum(ridge * final * final)),
            "time": time.perf_counter() - start,
        }
