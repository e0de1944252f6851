"""Weight compander: each weight passes through a bounded, odd, steep-at-zero map.

Cakaj, Mehnert & Yang, "Weight Compander: A Simple Weight Reparameterization
for Regularization" (arXiv 2306.16993, IJCNN 2023) reparametrise every
weight through a nonlinear function that bounds its magnitude and pushes
it away from zero, with hyper-parameters that can be learned. The paper's
own function could not be consulted for this implementation (no public
code; only the abstract was available), so the function here is **our
construction** with exactly the properties the abstract names:

    w = f(v) = a * tanh(g * v / a),    a > 0 (bound), g > 0 (gain),

which is odd, strictly increasing, bounded by ``|w| < a``, and has slope
``g`` at zero and ``g (1 - (w / a)^2)`` elsewhere, so with ``g > 1`` it is
steeper near zero than the identity (small raw values ``v`` map to larger
weights: a share ``P(|w| < eps) ~ P(|v| < eps / g)`` of near-zero weights,
``g`` times fewer for a smooth distribution of ``v``) and flat near the
bound (gradients to ever larger weights vanish). ``a`` and ``g`` are one
scalar each per layer, trainable when ``learnable=True`` (stored as logs,
so they stay positive).
"""

import math
import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._core import check_finite_tensor
from ._adapters import ModuleEditingCallback, select_modules

__all__ = ["Compander", "WeightCompanding", "remove_weight_compander", "weight_compander"]

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
    return float(value)


class Compander(nn.Module):
    """The companding map ``w = a * tanh(g * v / a)`` as a parametrisation.

    Register it with ``torch.nn.utils.parametrize.register_parametrization``
    (or let :func:`weight_compander` do it): the layer then trains the raw
    tensor ``v`` and computes its weight as ``f(v)``. It acts elementwise,
    on tensors of any shape.

    Parameters
    ----------
    bound : float, default=1.0
        ``a``: every weight satisfies ``|w| < a``.
    gain : float, default=2.0
        ``g``: the slope at zero (``g > 1`` spreads small raw values away
        from zero).
    learnable : bool, default=True
        Whether ``a`` and ``g`` are trained (as parameters ``log_bound`` and
        ``log_gain``) or fixed (buffers).
    dtype, device : torch dtype and device, default=None
        Of ``log_bound`` and ``log_gain``.

    Attributes
    ----------
    log_bound, log_gain : torch.Tensor of shape ()
        ``log a`` and ``log g``.

    See Also
    --------
    weight_compander : Register it on the layers of a module.

    Notes
    -----
    This function is our construction with the properties stated in the
    abstract of Cakaj, Mehnert & Yang (2023) (odd, monotone, bounded, steep
    near zero, learnable hyper-parameters); their exact function was not
    available. :meth:`right_inverse` maps weights back to raw values
    ``v = (a / g) atanh(w / a)``, so registering it keeps the layer's
    current weights.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import Compander
    >>> f = Compander(bound=0.5, gain=2.0, learnable=False)
    >>> v = torch.tensor([-10.0, -0.01, 0.0, 0.01, 10.0])
    >>> f(v)
    tensor([-0.5000, -0.0200,  0.0000,  0.0200,  0.5000])
    >>> torch.allclose(f(f.right_inverse(torch.tensor([0.3, -0.1]))), torch.tensor([0.3, -0.1]))
    True
    """

    def __init__(self, bound=1.0, gain=2.0, learnable=True, dtype=None, device=None):
        super().__init__()
        bound, gain = _check_positive(bound, "bound"), _check_positive(gain, "gain")
        self.learnable = bool(learnable)
        options = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        for name, value in (("log_bound", bound), ("log_gain", gain)):
            tensor = torch.tensor(math.log(value), **options)
            if self.learnable:
                setattr(self, name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)

    @property
    def bound(self):
        """The bound ``a`` (a 0-d tensor, differentiable when learnable).

        Returns
        -------
        bound : torch.Tensor of shape ()
            ``exp(log_bound)``.
        """
        return self.log_bound.exp()

    @property
    def gain(self):
        """The slope at zero ``g`` (a 0-d tensor).

        Returns
        -------
        gain : torch.Tensor of shape ()
            ``exp(log_gain)``.
        """
        return self.log_gain.exp()

    def forward(self, raw):
        """Compand raw values into weights.

        Parameters
        ----------
        raw : torch.Tensor
            The raw tensor ``v`` (any shape).

        Returns
        -------
        weight : torch.Tensor
            ``a * tanh(g * v / a)``, same shape.
        """
        bound = self.bound.to(raw.dtype)
        return bound * torch.tanh(raw * (self.gain.to(raw.dtype) / bound))

    def right_inverse(self, weight):
        """The raw values whose companded value is ``weight``.

        Parameters
        ----------
        weight : torch.Tensor
            Weights, all with ``|w| < a``.

        Returns
        -------
        raw : torch.Tensor
            ``(a / g) * atanh(w / a)``.
        """
        with torch.no_grad():
            check_finite_tensor(weight, "the weight to compand")
            bound = self.bound.to(weight.dtype)
            gain = self.gain.to(weight.dtype)
            ratio = weight / bound
            if weight.numel() and not float(ratio.abs().max()) < 1.0:
                raise ValueError(
                    f"the compander's bound {float(bound):.4g} must exceed every |weight|, but "
                    f"the largest is {float(weight.abs().max()):.4g}; pass a larger bound (or "
                    "bound=None)."
                )
            return torch.atanh(ratio) * (bound / gain)

    def extra_repr(self):
        """The current bound and gain, for ``print``.

        Returns
        -------
        text : str
            ``bound=..., gain=..., learnable=...``.
        """
        return (
            f"bound={self.bound.item():.4g}, gain={self.gain.item():.4g}, "
            f"learnable={self.learnable}"
        )


def weight_compander(module, *, target_modules=None, bound=None, gain=2.0, learnable=True):
    """Register a :class:`Compander` on the ``weight`` of chosen layers.

    Parameters
    ----------
    module : torch.nn.Module
        The network; changed in place.
    target_modules : None, str or list of str, default=None
        ``None`` takes every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layer; a
        string is a regular expression matching the whole qualified name; a
        list matches names equal to an entry or ending in ``"." + entry``.
    bound : float or None, default=None
        ``a`` of every layer; ``None`` uses twice the largest ``|weight|``
        of each layer when it is registered (weights may grow, but not past
        twice their initial range unless the bound is learned upwards).
    gain : float, default=2.0
        ``g``, the slope at zero.
    learnable : bool, default=True
        Whether each layer's ``a`` and ``g`` are trained.

    Returns
    -------
    module : torch.nn.Module
        The same module; each target's weight is now
        ``layer.parametrizations.weight.original`` (the raw ``v``) passed
        through ``layer.parametrizations.weight[0]`` (the compander).

    See Also
    --------
    remove_weight_compander : Bake the companded weights back in.
    WeightCompanding : The same inside the skorch-style estimators.

    Notes
    -----
    The current weights are kept (the raw values are their inverse
    images). Weight decay set on the optimizer then acts on the raw ``v``,
    and on ``log a``, ``log g`` when they are learned; exclude those from
    decay with parameter groups if that is unwanted.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, weight_compander
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(8, 3, hidden_units=(16,))
    >>> x = torch.randn(4, 8)
    >>> before = model(x)
    >>> model = weight_compander(model, gain=3.0)
    >>> torch.allclose(model(x), before, atol=1e-6)     # same weights, new parametrisation
    True
    >>> compander = model.head.parametrizations.weight[0]
    >>> round(compander.gain.item(), 6), bool(model.head.weight.abs().max() < compander.bound)
    (3.0, True)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
    if bound is not None:
        _check_positive(bound, "bound")
    _check_positive(gain, "gain")
    targets = select_modules(module, target_modules, types=_LAYERS, what="the weight compander")
    settings = []
    for name, layer in targets:
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"the weight of layer {name!r} is already parametrised.")
        weight = check_finite_tensor(layer.weight.detach(), f"the weight of layer {name!r}")
        layer_bound = bound
        if layer_bound is None:
            largest = float(weight.abs().max())
            if largest == 0.0:
                raise ValueError(
                    f"the weight of layer {name!r} is all zeros, so bound=None has no scale; "
                    "pass a bound."
                )
            layer_bound = 2.0 * largest
        elif not float(weight.abs().max()) < bound:
            raise ValueError(
                f"bound={bound} does not exceed the largest |weight| of layer {name!r} "
                f"({float(weight.abs().max()):.4g}); pass a larger bound or bound=None."
            )
        settings.append((layer, layer_bound, weight))
    for layer, layer_bound, weight in settings:
        compander = Compander(layer_bound, gain, learnable, dtype=weight.dtype,
                              device=weight.device)
        parametrize.register_parametrization(layer, "weight", compander)
    return module


def remove_weight_compander(module):
    """Replace every companded weight by its current value (a plain parameter).

    Parameters
    ----------
    module : torch.nn.Module
        A module prepared by :func:`weight_compander`; changed in place.

    Returns
    -------
    module : torch.nn.Module
        The same module, with ordinary ``weight`` parameters holding
        ``f(v)`` (inference without the reparametrisation's cost).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, remove_weight_compander, weight_compander
    >>> model = weight_compander(MLP(8, 3, hidden_units=(16,)))
    >>> x = torch.randn(4, 8)
    >>> y = model(x)
    >>> model = remove_weight_compander(model)
    >>> torch.equal(model(x), y), hasattr(model.head, "parametrizations")
    (True, False)
    """
    for layer in list(module.modules()):
        if parametrize.is_parametrized(layer, "weight") and any(
            isinstance(p, Compander) for p in layer.parametrizations.weight
        ):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return module


class WeightCompanding(ModuleEditingCallback):
    """Train a weightstats net with companded weights.

    When the net builds its module, :func:`weight_compander` is registered
    on the chosen layers (of a copy, when the net was given a module
    instance), so the optimizer trains the raw values and, with
    ``learnable=True``, each layer's bound and gain.

    Parameters
    ----------
    target_modules : None, str or list of str, default=None
        Layers to compand (see :func:`weight_compander`).
    bound : float or None, default=None
        ``a`` (``None``: twice each layer's initial largest ``|weight|``).
    gain : float, default=2.0
        ``g``, the slope at zero.
    learnable : bool, default=True
        Whether ``a`` and ``g`` are trained.

    See Also
    --------
    weight_compander : The same on a plain module.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import NeuralNetClassifier, WeightCompanding
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype(np.float32)
    >>> net = NeuralNetClassifier(module__hidden_units=(32,), lr=0.1, max_epochs=3,
    ...                           random_state=0, callbacks=[WeightCompanding()]).fit(X, y)
    >>> compander = net.module_.body[0].parametrizations.weight[0]
    >>> bool(net.module_.body[0].weight.abs().max() < compander.bound)
    True
    """

    def __init__(self, target_modules=None, bound=None, gain=2.0, learnable=True):
        self.target_modules = target_modules
        self.bound = bound
        self.gain = gain
        self.learnable = learnable

    def _edit(self, module):
        return weight_compander(module, target_modules=self.target_modules, bound=self.bound,
                                gain=self.gain, learnable=self.learnable)

    def _applied(self, module):
        return any(isinstance(m, Compander) for m in module.modules())
