"""Adversarial training with adversarial or robust weight perturbation.

* :func:`pgd_attack`: projected gradient descent on the inputs (Madry et
  al.), L-infinity or L2 ball, random start, as in the reference code of
  AWP and RWP (``attack_pgd``: uniform start in the ball, ``steps`` signed
  or normalised gradient steps, projection, clipping to the data range).
* :func:`adversarial_weight_perturbation`: the weight perturbation ``v``
  of AWP (Wu, Xia & Wang, NeurIPS 2020) and of RWP (Yu et al., IJCAI
  2022), computed on adversarial examples. RWP runs 10 ascent steps on
  ``mean_i(l_i 1[l_i < c_min])`` (the *loss stationary condition*: only
  examples whose adversarial loss is still below ``c_min`` drive the
  perturbation), accumulates the ascent directions and rescales them
  globally after every step so that ``||v|| = gamma ||w||`` over all weight
  matrices. AWP takes one ascent step on the mean loss of all examples and
  rescales each weight tensor to ``||v_l|| = gamma ||w_l||``.
* :class:`AdversarialTraining`: a skorch callback (and a plain-torch
  ``train_step``) that trains on PGD examples at the perturbed weights
  ``w + v`` and restores ``w`` exactly before the optimizer step.

Reference code: ChaojianYu/Robust-Weight-Perturbation (``utils_rwp.py``,
``train_cifar10.py``) and the AWP reference (``utils_awp.py``). The
references take the ascent step with an SGD proxy (step size 0.01); the
step size cancels in the rescaling, so it is not a parameter here. They
perturb the parameters of two or more dimensions whose name contains
"weight"; here every parameter with two or more dimensions is perturbed
(the same set for standard layers, and parametrised weights too).
"""

import math
import numbers
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from sklearn.utils.validation import check_random_state

from .._core import batch_features, check_finite_tensor, first_output

__all__ = ["AdversarialTraining", "adversarial_weight_perturbation", "pgd_attack"]

# The references add this to the norm of the ascent direction.
_EPS = 1e-20
_NORMS = ("linf", "l2")
_PERTURBATIONS = (None, "awp", "rwp")
# Ascent steps of the references: one for AWP, ten for RWP.
_DEFAULT_STEPS = {"awp": 1, "rwp": 10}


# ----------------------------------------------------------------- checks
def _module_of(model):
    """The torch module of a module or fitted net, and a label encoder."""
    module = getattr(model, "module_", model)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module or a fitted weightstats/skorch net; got "
            f"{type(model).__name__}."
        )
    encode = getattr(model, "_encode_target", None) if module is not model else None
    return module, encode


def _device_of(module):
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


def _as_inputs(X, y, device, encode=None):
    """Features as a float tensor and labels as class indices on ``device``."""
    as_numpy = not isinstance(X, torch.Tensor)
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float32) if as_numpy else X, device=device)
    if not X_t.is_floating_point():
        raise TypeError(f"X must hold floating-point features; got dtype {X_t.dtype}.")
    check_finite_tensor(X_t, "X")
    if X_t.ndim < 2:
        raise ValueError(f"X must have one row per example (2 or more dimensions); got shape "
                         f"{tuple(X_t.shape)}.")
    if encode is not None and not isinstance(y, torch.Tensor):
        y = encode(y)
    y_t = torch.as_tensor(y if isinstance(y, torch.Tensor) else np.asarray(y), device=device)
    if y_t.is_floating_point() or y_t.is_complex():
        if not bool(torch.all(y_t == torch.round(y_t.real))):
            raise ValueError("y must hold integer class indices 0 .. n_classes - 1.")
    y_t = y_t.reshape(-1).long()
    if y_t.shape[0] != X_t.shape[0]:
        raise ValueError(f"X has {X_t.shape[0]} rows but y has {y_t.shape[0]} labels.")
    return X_t, y_t, as_numpy


def _check_eps(eps):
    if not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}.")


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _check_bounds(bounds):
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be None or a pair (low, high); got {bounds!r}.") from None
    if not low < high:
        raise ValueError(f"bounds must satisfy low < high; got {bounds!r}.")
    return low, high


def _logits(module, X):
    logits = first_output(module(X))
    if logits.ndim != 2:
        raise ValueError(
            f"the model must output logits of shape (n_samples, n_classes); got shape "
            f"{tuple(logits.shape)}."
        )
    return logits


# ------------------------------------------------------------------ attack
def pgd_attack(model, X, y, eps, steps=10, step_size=None, norm="linf", bounds=None,
               random_state=None):
    """Adversarial examples by projected gradient descent (PGD).

    Starts from a uniform random point of the ``eps``-ball around ``X`` and
    takes ``steps`` steps up the cross-entropy: ``delta <- P(delta +
    step_size sign(grad))`` for ``"linf"`` (``grad / ||grad||`` per row for
    ``"l2"``), projecting back onto the ball (and into ``bounds``) after
    every step. The model runs in evaluation mode and gets its mode back;
    no gradient reaches its parameters.

    Parameters
    ----------
    model : torch.nn.Module or fitted net
        A classifier returning logits (for a weightstats net, its
        ``module_``; labels are then encoded through the net's classes).
    X : tensor or array-like of shape (n_samples, ...)
        Clean inputs (floating point, finite).
    y : tensor or array-like of shape (n_samples,)
        Labels: class indices for a module, the net's labels for a net.
    eps : float
        Radius of the ball (e.g. 0.1 for pixels in [0, 1]).
    steps : int, default=10
        Gradient steps.
    step_size : float or None, default=None
        Step length; None uses ``2.5 * eps / steps`` (``eps / 4`` for 10
        steps, the references' 2/255 at eps = 8/255).
    norm : {"linf", "l2"}, default="linf"
        The threat model.
    bounds : tuple (low, high) or None, default=None
        Valid input range the examples are clipped to (``(0, 1)`` for
        scaled pixels); None clips nothing.
    random_state : int, RandomState instance or None, default=None
        Seeds the random start; None draws it from torch's global RNG.

    Returns
    -------
    X_adv : tensor or ndarray
        Adversarial inputs, of the type of ``X`` (a NumPy array for
        array-likes), with ``||X_adv - X|| <= eps`` per row.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, pgd_attack
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(4, 3, hidden_units=(8,))
    >>> X, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> X_adv = pgd_attack(model, X, y, eps=0.1, bounds=(0, 1), random_state=0)
    >>> bool((X_adv - X).abs().max() <= 0.1 + 1e-7), bool(X_adv.min() >= 0)
    (True, True)
    """
    module, encode = _module_of(model)
    _check_eps(eps)
    _check_positive_int(steps, "steps")
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}; got {norm!r}.")
    if step_size is None:
        step_size = 2.5 * eps / steps
    elif not isinstance(step_size, numbers.Real) or not step_size > 0:
        raise ValueError(f"step_size must be a number > 0 or None; got {step_size!r}.")
    bounds = _check_bounds(bounds)
    X_t, y_t, as_numpy = _as_inputs(X, y, _device_of(module), encode)
    X_adv = _pgd(module, X_t, y_t, eps, steps, step_size, norm, bounds, random_state)
    return X_adv.cpu().numpy() if as_numpy else X_adv.to(X.device if not as_numpy else "cpu")


def _generator(random_state, device):
    if random_state is None:
        return None
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _row_norms(tensor):
    shape = (-1,) + (1,) * (tensor.ndim - 1)
    return tensor.reshape(tensor.shape[0], -1).norm(dim=1).reshape(shape)


def _project(delta, X, eps, norm, bounds):
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * torch.clamp(eps / (_row_norms(delta) + 1e-12), max=1.0)
    if bounds is not None:
        delta = (X + delta).clamp(*bounds) - X
    return delta


def _pgd(module, X, y, eps, steps, step_size, norm, bounds, random_state):
    generator = _generator(random_state, X.device)
    if norm == "linf":
        delta = (torch.rand(X.shape, generator=generator, device=X.device, dtype=X.dtype) * 2 - 1)
        delta = delta * eps
    else:  # a random direction with a uniform radius, as in the references
        delta = torch.randn(X.shape, generator=generator, device=X.device, dtype=X.dtype)
        radius = torch.rand((X.shape[0],) + (1,) * (X.ndim - 1), generator=generator,
                            device=X.device, dtype=X.dtype)
        delta = delta / (_row_norms(delta) + 1e-12) * radius * eps
    delta = _project(delta, X, eps, norm, bounds)
    was_training = module.training
    module.eval()
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(_logits(module, X + delta), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                if norm == "linf":
                    delta = delta + step_size * grad.sign()
                else:
                    delta = delta + step_size * grad / (_row_norms(grad) + 1e-12)
                delta = _project(delta, X, eps, norm, bounds)
    finally:
        module.train(was_training)
    return (X + delta).detach()


# ----------------------------------------------------- weight perturbation
def _weights(module):
    weights = OrderedDict(
        (name, param)
        for name, param in module.named_parameters()
        if param.ndim >= 2 and param.requires_grad
    )
    if not weights:
        raise TypeError(
            f"{type(module).__name__} has no trainable weight tensors with two or more "
            "dimensions (nn.Linear, nn.Conv*, embeddings) to perturb."
        )
    return weights


def _global_norm(tensors):
    return torch.sqrt(sum(t.pow(2).sum() for t in tensors))


def _perturbation(module, X_adv, y, gamma, lsc_threshold, steps, layerwise):
    """The perturbation ``v`` (name -> tensor) and the LSC fraction of the last step."""
    weights = _weights(module)
    # The ascent runs on a functional copy: the module's buffers (batch-norm
    # statistics) are cloned so that the proxy's forward passes leave them alone.
    others = {name: p.detach() for name, p in module.named_parameters() if name not in weights}
    others.update((name, b.detach().clone()) for name, b in module.named_buffers())
    base = {name: w.detach() for name, w in weights.items()}
    diff = {name: torch.zeros_like(w) for name, w in base.items()}
    scaled = {name: torch.zeros_like(w) for name, w in base.items()}
    w_norm = _global_norm(base.values())
    fraction = 1.0
    for _ in range(steps):
        point = {name: (w + gamma * scaled[name]).requires_grad_(True) for name, w in base.items()}
        logits = first_output(torch.func.functional_call(module, {**others, **point}, (X_adv,)))
        losses = F.cross_entropy(logits, y, reduction="none")
        check_finite_tensor(losses, "the loss at the perturbed weights")
        below = losses.detach() < lsc_threshold
        fraction = float(below.float().mean())
        # The loss stationary condition: examples at or above c_min drop out
        # of the mean (the denominator stays the batch size, as in RWP).
        objective = (losses * below).mean()
        grads = torch.autograd.grad(objective, list(point.values()), allow_unused=True)
        with torch.no_grad():
            for (name, _), grad in zip(point.items(), grads):
                if grad is not None:
                    diff[name] += grad
            if layerwise:
                scaled = {name: base[name].norm() / (d.norm() + _EPS) * d
                          for name, d in diff.items()}
            else:
                scale = w_norm / (_global_norm(diff.values()) + _EPS)
                scaled = {name: scale * d for name, d in diff.items()}
    return {name: gamma * s for name, s in scaled.items()}, fraction


def adversarial_weight_perturbation(model, X_adv, y, *, method="rwp", gamma=0.01,
                                    lsc_threshold=1.7, steps=None):
    """The weight perturbation of AWP or RWP on a batch of adversarial examples.

    RWP (``method="rwp"``): ``v`` starts at 0; each of ``steps`` (10)
    iterations takes the gradient ``g`` of ``mean_i(l_i(w + v) 1[l_i(w + v)
    < lsc_threshold])`` (per-example cross-entropy ``l_i``, mean over the
    whole batch), accumulates ``d <- d + g`` and sets ``v = gamma ||w||
    d / ||d||`` with the norms taken over all weight tensors together.
    ``lsc_threshold=inf`` lets every example in: multi-step AWP with global
    scaling. AWP (``method="awp"``, the AWP reference): one step on the mean
    loss of all examples and ``v_l = gamma ||w_l|| d_l / ||d_l||`` per
    weight tensor. Weight tensors are the trainable parameters with two or
    more dimensions; biases and normalisation scales are not perturbed.

    Parameters
    ----------
    model : torch.nn.Module or fitted net
        A classifier returning logits; it is not changed.
    X_adv : tensor of shape (n_samples, ...)
        Adversarial inputs (from :func:`pgd_attack`), on the model's device.
    y : tensor of shape (n_samples,)
        Class indices.
    method : {"rwp", "awp"}, default="rwp"
        The rule.
    gamma : float, default=0.01
        Relative size of the perturbation.
    lsc_threshold : float, default=1.7
        ``c_min`` of RWP (ignored by AWP); ``inf`` disables the condition.
    steps : int or None, default=None
        Ascent steps; None uses the method's reference value (10 for RWP,
        1 for AWP).

    Returns
    -------
    v : dict of str to tensor
        The perturbation of each weight tensor, by parameter name.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, adversarial_weight_perturbation
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(4, 3, hidden_units=(8,))
    >>> X, y = torch.rand(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> v = adversarial_weight_perturbation(model, X, y, gamma=0.01)
    >>> sorted(v)
    ['body.0.weight', 'head.weight']
    >>> norm = lambda ts: float(torch.sqrt(sum(t.pow(2).sum() for t in ts)))
    >>> round(norm(v.values()) / norm([model.body[0].weight, model.head.weight]), 6)
    0.01
    """
    module, _ = _module_of(model)
    method, gamma, lsc_threshold, steps = _check_perturbation(method, gamma, lsc_threshold, steps)
    X_t, y_t, _ = _as_inputs(X_adv, y, _device_of(module))
    v, _ = _perturbation(module, X_t, y_t, gamma, lsc_threshold, steps, method == "awp")
    return v


def _check_perturbation(method, gamma, lsc_threshold, steps):
    if method not in ("awp", "rwp"):
        raise ValueError(f"method must be 'awp' or 'rwp'; got {method!r}.")
    if not isinstance(gamma, numbers.Real) or not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0; got {gamma!r}.")
    if not isinstance(lsc_threshold, numbers.Real) or math.isnan(lsc_threshold):
        raise ValueError(f"lsc_threshold must be a number (inf allowed); got {lsc_threshold!r}.")
    if steps is None:
        steps = _DEFAULT_STEPS[method]
    _check_positive_int(steps, "perturbation steps")
    if method == "awp":
        lsc_threshold = math.inf
    return method, float(gamma), float(lsc_threshold), int(steps)


class _Perturbed:
    """Adds ``v`` to the weights and puts the saved originals back, bit for bit."""

    def __init__(self, module, v):
        params = dict(module.named_parameters())
        self._params = [(params[name], delta) for name, delta in v.items()]
        self._saved = None

    def apply(self):
        with torch.no_grad():
            self._saved = [param.detach().clone() for param, _ in self._params]
            for param, delta in self._params:
                param.add_(delta)

    def restore(self):
        with torch.no_grad():
            for (param, _), saved in zip(self._params, self._saved):
                param.copy_(saved)
        self._saved = None

    @property
    def active(self):
        return self._saved is not None


class AdversarialTraining(Callback):
    """Adversarial training (PGD), optionally at AWP or RWP-perturbed weights.

    Each training batch is replaced by its PGD adversarial examples
    (:func:`pgd_attack`). With ``weight_perturbation``, the perturbation
    ``v`` (:func:`adversarial_weight_perturbation`) is added to the weights,
    the loss and its gradient are computed at ``w + v``, and the weights are
    restored exactly (copied back) before the optimizer applies that
    gradient to ``w``: ``w <- w - lr grad L(w + v)``. The references
    subtract ``v`` after the optimizer step instead, which equals this up to
    rounding and the weight-decay term ``wd * v``.

    As a skorch callback it works in any skorch net whose ``train_step``
    notifies ``on_grad_computed`` (skorch's and weightstats' nets do), with
    a classifier trained by ``torch.nn.CrossEntropyLoss`` on one tensor of
    features; the batch is replaced in place, so the loader must hand out
    copies (the default loaders do). Outside skorch, call
    :meth:`train_step` in a plain torch loop.

    Parameters
    ----------
    eps : float
        Radius of the PGD ball.
    steps : int, default=10
        PGD steps (PGD-10).
    weight_perturbation : {None, "awp", "rwp"}, default=None
        None is plain adversarial training; "awp" adds AWP's perturbation
        (one ascent step, per-tensor scaling); "rwp" RWP's (10 ascent steps
        under the loss stationary condition, global scaling).
    gamma : float, default=0.01
        Relative size ``||v|| / ||w||`` of the weight perturbation.
    lsc_threshold : float, default=1.7
        ``c_min`` of RWP: only adversarial examples with a loss below it
        drive the perturbation (``inf`` admits all).
    step_size : float or None, default=None
        PGD step; None is ``2.5 * eps / steps``.
    norm : {"linf", "l2"}, default="linf"
        PGD threat model.
    bounds : tuple (low, high) or None, default=None
        Valid input range, e.g. ``(0, 1)`` for scaled pixels.
    perturbation_steps : int or None, default=None
        Ascent steps of the weight perturbation; None is 10 for RWP and 1
        for AWP (the references).

    Attributes
    ----------
    lsc_fractions_ : list of float
        RWP: fraction of each batch's examples below ``lsc_threshold`` in
        the last ascent step (recorded per batch as ``lsc_fraction``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import AdversarialTraining, NeuralNetClassifier, pgd_attack
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> adversarial = AdversarialTraining(eps=0.1, weight_perturbation="rwp", bounds=(0, 1))
    >>> net = NeuralNetClassifier(module__hidden_units=(64,), lr=0.1, max_epochs=2,
    ...                           random_state=0, callbacks=[adversarial]).fit(X, y)
    >>> X_adv = pgd_attack(net, X[:200], y[:200], eps=0.1, bounds=(0, 1), random_state=0)
    >>> X_adv.shape, float(abs(X_adv - X[:200]).max()) <= 0.1 + 1e-6
    ((200, 64), True)
    """

    def __init__(self, eps, steps=10, weight_perturbation=None, gamma=0.01, lsc_threshold=1.7,
                 step_size=None, norm="linf", bounds=None, perturbation_steps=None):
        self.eps = eps
        self.steps = steps
        self.weight_perturbation = weight_perturbation
        self.gamma = gamma
        self.lsc_threshold = lsc_threshold
        self.step_size = step_size
        self.norm = norm
        self.bounds = bounds
        self.perturbation_steps = perturbation_steps

    def initialize(self):
        """Check the parameters and reset the records.

        Returns
        -------
        self : object
            The callback.
        """
        _check_eps(self.eps)
        _check_positive_int(self.steps, "steps")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}; got {self.norm!r}.")
        if self.step_size is not None and not (
            isinstance(self.step_size, numbers.Real) and self.step_size > 0
        ):
            raise ValueError(f"step_size must be a number > 0 or None; got {self.step_size!r}.")
        self._bounds = _check_bounds(self.bounds)
        if self.weight_perturbation not in _PERTURBATIONS:
            raise ValueError(
                f"weight_perturbation must be None, 'awp' or 'rwp'; got "
                f"{self.weight_perturbation!r}."
            )
        self._rule = _check_perturbation(
            self.weight_perturbation or "rwp", self.gamma, self.lsc_threshold,
            self.perturbation_steps
        )
        self.lsc_fractions_ = []
        self._perturbed = None
        return self

    def _attack(self, module, X, y):
        step_size = 2.5 * self.eps / self.steps if self.step_size is None else self.step_size
        return _pgd(module, X, y, self.eps, self.steps, step_size, self.norm, self._bounds, None)

    def _perturb(self, module, X_adv, y):
        if self.weight_perturbation is None:
            return None
        method, gamma, threshold, steps = self._rule
        v, fraction = _perturbation(module, X_adv, y, gamma, threshold, steps, method == "awp")
        if method == "rwp":
            self.lsc_fractions_.append(fraction)
        perturbed = _Perturbed(module, v)
        perturbed.apply()
        return perturbed

    # ------------------------------------------------------------- skorch
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Check that the net trains a classifier with the cross-entropy.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X, y : input and target data, default=None
            Training data.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if not isinstance(getattr(net, "criterion_", None), torch.nn.CrossEntropyLoss):
            raise TypeError(
                "AdversarialTraining attacks the cross-entropy of the logits; train the net "
                "with criterion=torch.nn.CrossEntropyLoss (the weightstats default)."
            )
        self.lsc_fractions_ = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        """Replace the batch by adversarial examples and perturb the weights.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        batch : tuple
            The batch ``(X, y)``; its feature tensor is overwritten in place.
        training : bool, default=False
            Whether this is a training batch (others are left alone).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if not training:
            return
        Xi, yi = unpack_data(batch)
        features = batch_features(Xi)
        if not isinstance(features, torch.Tensor) or not features.is_floating_point():
            raise TypeError(
                "AdversarialTraining needs the features of a batch as one floating-point "
                f"tensor; got {type(features).__name__}. Multi-input dicts are not supported."
            )
        if features._base is not None:
            raise TypeError(
                "the training batch is a view of the data set; AdversarialTraining replaces "
                "the batch in place and would overwrite the data. Use a loader that copies "
                "batches (the default DataLoader does)."
            )
        module = net.module_
        X = features.to(net.device)
        y = torch.as_tensor(yi, device=net.device).reshape(-1).long()
        X_adv = self._attack(module, X, y)
        with torch.no_grad():
            features.copy_(X_adv.to(features.device))
        self._perturbed = self._perturb(module, X_adv, y)
        if self._perturbed is not None and self.weight_perturbation == "rwp":
            net.history.record_batch("lsc_fraction", self.lsc_fractions_[-1])

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        """Restore the weights: the gradient was taken at ``w + v``.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        named_parameters : iterable of (str, Parameter)
            The parameters (unused).
        batch : tuple, default=None
            The batch.
        training : bool, default=False
            Whether this is a training batch.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._perturbed is not None and self._perturbed.active:
            self._perturbed.restore()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Fail loudly if the net never reported its gradient.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        batch : tuple, default=None
            The batch.
        training : bool, default=False
            Whether this is a training batch.
        **kwargs : dict
            Other arguments skorch passes.
        """
        perturbed, self._perturbed = self._perturbed, None
        if perturbed is not None and perturbed.active:
            perturbed.restore()
            raise RuntimeError(
                f"{type(net).__name__}.train_step did not notify on_grad_computed, so the "
                "weight perturbation could not be removed before the optimizer step; "
                "override train_step as skorch's does or use weight_perturbation=None."
            )

    # ---------------------------------------------------------- plain torch
    def train_step(self, model, optimizer, X, y):
        """One adversarial training step of a plain torch model.

        Parameters
        ----------
        model : torch.nn.Module
            A classifier returning logits (put in training mode).
        optimizer : torch.optim.Optimizer
            Its optimizer.
        X : tensor of shape (n_samples, ...)
            Clean inputs of the batch.
        y : tensor of shape (n_samples,)
            Class indices.

        Returns
        -------
        loss : float
            The adversarial loss at the perturbed weights.

        Examples
        --------
        >>> import torch
        >>> from weightstats.nn import MLP, AdversarialTraining
        >>> _ = torch.manual_seed(0)
        >>> model = MLP(4, 3, hidden_units=(8,))
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> adversarial = AdversarialTraining(eps=0.1, weight_perturbation="rwp").initialize()
        >>> X, y = torch.rand(16, 4), torch.arange(16) % 3
        >>> loss = adversarial.train_step(model, optimizer, X, y)
        >>> loss > 0
        True
        """
        if not hasattr(self, "_bounds"):
            self.initialize()
        module, _ = _module_of(model)
        X_t, y_t, _ = _as_inputs(X, y, _device_of(module))
        module.train()
        X_adv = self._attack(module, X_t, y_t)
        perturbed = self._perturb(module, X_adv, y_t)
        try:
            optimizer.zero_grad()
            loss = F.cross_entropy(_logits(module, X_adv), y_t)
            if not bool(torch.isfinite(loss)):
                raise ValueError(f"the adversarial loss is non-finite ({float(loss)}).")
            loss.backward()
        finally:
            if perturbed is not None:
                perturbed.restore()
        optimizer.step()
        return float(loss.detach())
