"""Dense-to-sparse training on a cubic schedule: ST-3 and gradual magnitude pruning.

ST-3 ("Straight-Through gradients and Soft-Thresholding", Vanderschueren &
De Vleeschouwer, WACV 2023) trains dense weights ``W`` but computes with

    W_hat = s_row * (W - sign(W) * th) * [|W| > th],
    s_row = 1.01 / (mean_row(|W| [|W| > th]) / mean_row(|W|) + 0.01),

and passes the gradient of ``W_hat`` to ``W`` unchanged (straight-through).
The threshold ``th`` is the quantile of ``|W|`` over all layers at the
current target sparsity ``r = r_max (1 - (1 - tau)^3)``, ``tau`` the
progress through the ramp, updated after every optimizer step. Rules and
constants follow the reference code (vanderschuea/stthree,
``models/layers/quantized.py`` ``PrunedLayer``/``STEPrunedLayer`` and
``trainmodules/pruning.py``): the 1e-6 guards of the row means, the
``(n - 1) r`` linearly interpolated quantile, and no pruning while
``th <= 0``.

Gradual magnitude pruning (Zhu & Gupta 2017) is the baseline without a
straight-through gradient: on the same schedule it zeroes the
smallest-magnitude weights with a :mod:`torch.nn.utils.prune` mask, and a
pruned weight gets no gradient and stays pruned ("sticky").
"""

import numbers

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from ..._kernels._sparse import soft_threshold_deltas, threshold_quantile
from ._masks import (
    OptimizerStepCallback,
    check_fraction,
    check_not_parametrized,
    keep_masks,
    order_statistics,
    prunable_layers,
    pruning_hook,
    set_mask,
    unwrap_module,
)

__all__ = ["GradualMagnitudePruning", "SoftThresholdSparsity"]

# The reference's guards and rescaling constants (quantized.py, get_scale).
_MEAN_EPS = 1e-6
_SCALE_NUM = 1.01
_SCALE_EPS = 0.01


def soft_threshold(weight, threshold, soft=True, rescale=True):
    """The ST-3 forward value of ``weight`` at ``threshold`` (no gradient).

    Parameters
    ----------
    weight : tensor
        Dense weights, output channels along the first dimension.
    threshold : float
        The threshold; ``<= 0`` returns ``weight`` unchanged.
    soft : bool, default=True
        Shrink the kept weights by ``threshold`` (soft thresholding);
        ``False`` keeps them as they are (hard thresholding).
    rescale : bool, default=True
        Multiply each output row by ``1.01 / (kept mean |W| / mean |W| +
        0.01)``.

    Returns
    -------
    value : tensor
        The weights the forward pass uses.
    """
    if threshold <= 0:
        return weight
    magnitude = weight.abs()
    keep = magnitude > threshold
    # Soft: sign(W) (|W| - th) on the kept weights, zero elsewhere.
    value = weight - weight.clamp(-threshold, threshold) if soft else weight * keep
    if rescale:
        dims = tuple(range(1, weight.ndim))
        kept = ((magnitude * keep).mean(dim=dims, keepdim=True) + _MEAN_EPS) / (
            magnitude.mean(dim=dims, keepdim=True) + _MEAN_EPS
        )
        value = value.mul_(_SCALE_NUM / (kept + _SCALE_EPS))
    return value


class SoftThresholdParametrization(nn.Module):
    """The ST-3 parametrisation of one weight (``torch.nn.utils.parametrize``).

    ``forward(W) = W + (f(W) - W).detach()`` with ``f`` the thresholding of
    :func:`soft_threshold` (the reference's straight-through form): the
    value is ``f(W)``, the gradient reaches ``W`` unchanged. Its state is
    three buffers (``threshold``, ``soft``, ``rescale``) so that state
    dicts round-trip; :class:`SoftThresholdSparsity` sets the threshold
    after every optimizer step and hands over ``f(W) - W``, computed for
    all layers at once, which the forward reuses while ``W`` is unchanged.

    Parameters
    ----------
    soft : bool, default=True
        Soft (``True``) or hard thresholding.
    rescale : bool, default=True
        Per-row rescaling.
    """

    def __init__(self, soft=True, rescale=True):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(-1.0))
        self.register_buffer("soft", torch.tensor(bool(soft)))
        self.register_buffer("rescale", torch.tensor(bool(rescale)))
        self._delta, self._key, self._threshold_value = None, None, None
        # A loaded state dict may bring another threshold: forget the cache.
        self.register_load_state_dict_post_hook(lambda module, keys: module._forget())

    def _forget(self):
        self._delta, self._key, self._threshold_value = None, None, None

    def set_threshold(self, threshold):
        """Set the threshold (``<= 0``: no pruning).

        Parameters
        ----------
        threshold : float
            The new threshold.
        """
        self.threshold.fill_(threshold)
        self._threshold_value = float(threshold)

    def _current_threshold(self):
        if self._threshold_value is None:
            self._threshold_value = float(self.threshold)
        return self._threshold_value

    @staticmethod
    def _state_key(weight, threshold):
        return (weight.data_ptr(), weight._version, threshold)

    def store(self, weight, delta):
        """Keep ``f(weight) - weight`` for the forward passes until ``weight`` changes.

        Parameters
        ----------
        weight : tensor
            The dense weight (the parametrisation's ``original``).
        delta : tensor
            ``f(weight) - weight`` at the current threshold.
        """
        self._delta, self._key = delta, self._state_key(weight, self._current_threshold())

    def forward(self, weight):
        """The thresholded weight; its gradient goes straight through to ``weight``.

        Parameters
        ----------
        weight : tensor
            The dense (original) weight.

        Returns
        -------
        value : tensor
            The weight the layer uses.
        """
        threshold = self._current_threshold()
        if threshold <= 0:
            return weight
        if self._delta is None or self._key != self._state_key(weight, threshold):
            with torch.no_grad():
                dense = weight.detach()
                value = soft_threshold(dense, threshold, bool(self.soft), bool(self.rescale))
                self.store(weight, value - dense)
        return weight + self._delta

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_delta"], state["_key"], state["_threshold_value"] = None, None, None
        return state


def _interpolated_quantile(values, ratio):
    """The reference's quantile: linear interpolation at position ``(n - 1) * ratio`` of the sorted values."""
    position = (values.numel() - 1) * ratio
    low = int(position)
    e1, e2 = order_statistics(values, low, with_next=True)
    return e1 + (e2 - e1) * (position - low)


class _RampedSparsity(OptimizerStepCallback):
    """Target sparsity ramped cubically over the optimizer steps of a training call."""

    def __init__(self, final_sparsity=0.9, ramp=(0.0, 0.8), scope="global"):
        self.final_sparsity = final_sparsity
        self.ramp = ramp
        self.scope = scope

    def initialize(self):
        """Check the parameters and reset the state.

        Returns
        -------
        self : object
            The callback.
        """
        check_fraction(self.final_sparsity, "final_sparsity")
        ramp = self.ramp
        if (
            not isinstance(ramp, (tuple, list))
            or len(ramp) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in ramp)
            or not 0 <= ramp[0] < ramp[1] <= 1
        ):
            raise ValueError(
                "ramp must be (start, end) fractions of the training steps with "
                f"0 <= start < end <= 1; got {ramp!r}."
            )
        if self.scope not in ("global", "layer"):
            raise ValueError(f"scope must be 'global' or 'layer'; got {self.scope!r}.")
        self._step_hook = None
        self.sparsity_ = 0.0
        return self

    def sparsity_at(self, step, total_steps):
        """The target sparsity after ``step`` of ``total_steps`` optimizer steps.

        ``r = final_sparsity * (1 - (1 - tau)^3)`` with ``tau`` the fraction
        of the ramp ``(start * total_steps, end * total_steps)`` completed,
        clipped to [0, 1].

        Parameters
        ----------
        step : int
            Optimizer steps done.
        total_steps : int
            Optimizer steps of the training call.

        Returns
        -------
        sparsity : float
            The target.
        """
        start, end = self.ramp[0] * total_steps, self.ramp[1] * total_steps
        tau = min(max((step - start) / (end - start), 0.0), 1.0)
        return float(self.final_sparsity * (1 - (1 - tau) ** 3))

    # skorch ------------------------------------------------------------
    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        """Learn the number of steps of the training call (first epoch only).

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        dataset_train : torch Dataset, default=None
            The training data.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._total_steps is None:
            steps_per_epoch = len(net.get_iterator(dataset_train, training=True))
            self._total_steps = max(1, steps_per_epoch * self._epochs.n_epochs)

    def on_epoch_end(self, net, **kwargs):
        """Record the sparsity target reached (``"sparsity"`` in the history).

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes.
        """
        net.history.record("sparsity", self.sparsity_)

    # plain loop ----------------------------------------------------------
    def attach(self, model, optimizer, total_steps):
        """Run the schedule in a plain loop: update after every ``optimizer.step()``.

        Parameters
        ----------
        model : torch.nn.Module
            The model (changed in place).
        optimizer : torch.optim.Optimizer
            The optimizer that trains ``model``.
        total_steps : int
            Optimizer steps the loop will take (the ramp is a fraction of
            them).

        Returns
        -------
        self : object
            The callback, attached.
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int; got {total_steps!r}.")
        self.initialize()
        self._start(model, optimizer, total_steps=int(total_steps))
        return self

    def _start(self, model, optimizer, net=None, total_steps=None):
        self._check_optimizer_type(optimizer)
        model = unwrap_module(model)
        self._layers = prunable_layers(model, type(self).__name__)
        self._model, self._total_steps, self._steps = model, total_steps, 0
        self._prepare()
        self.layers_ = [name for name, _ in self._layers]
        self.sparsity_ = 0.0
        self._update(0.0)
        self._hook(optimizer)

    def _after_step(self, optimizer, args, kwargs):
        self._steps += 1
        total = self._total_steps or self._steps
        self.sparsity_ = self.sparsity_at(self._steps, total)
        self._update(self.sparsity_)

    def _prepare(self):
        raise NotImplementedError

    def _update(self, sparsity):
        raise NotImplementedError


class SoftThresholdSparsity(_RampedSparsity):
    """ST-3: soft-threshold sparse training with straight-through gradients.

    Registers a :mod:`torch.nn.utils.parametrize` parametrisation on the
    weight of every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layer and, after
    every optimizer step, sets the threshold so that the target sparsity
    ``r = final_sparsity * (1 - (1 - tau)^3)`` of all these weights (or of
    each layer's) is below it, ``tau`` the fraction of the ``ramp``
    completed. The forward pass uses the soft-thresholded, row-rescaled
    weights; the gradient updates the dense weights unchanged, so pruned
    weights can come back.

    A skorch callback (the ramp spans the optimizer steps of each ``fit`` /
    ``partial_fit`` call); for a plain loop, call :meth:`attach`. After
    training, :meth:`finalize` turns the parametrisation into the sparse
    weights plus a :mod:`torch.nn.utils.prune` mask.

    Parameters
    ----------
    final_sparsity : float in [0, 1), default=0.9
        Sparsity reached at the end of the ramp (``r_max``).
    ramp : tuple (start, end), default=(0.0, 0.8)
        Fractions of the training steps where the ramp starts and ends;
        the sparsity is 0 before and ``final_sparsity`` after.
    scope : {"global", "layer"}, default="global"
        One threshold for all layers (the reference's ``"l1"`` criterion,
        layers end with different sparsities) or one per layer.
    soft : bool, default=True
        Soft thresholding, ``W - sign(W) th`` on the kept weights;
        ``False`` keeps them unshrunk (hard thresholding).
    rescale : bool, default=True
        Per-row rescaling ``1.01 / (mean_row(|W| kept) / mean_row(|W|) +
        0.01)``. ``soft=False, rescale=False`` is the plain straight-through
        (STE) hard-threshold baseline.

    Attributes
    ----------
    layers_ : list of str
        Names of the parametrised layers.
    sparsity_ : float
        The target sparsity after the last optimizer step.
    thresholds_ : dict
        Layer name -> current threshold (-1 means no pruning yet).

    See Also
    --------
    GradualMagnitudePruning : The same schedule without straight-through gradients.
    SparseMomentum : Sparse training at a fixed density.

    Notes
    -----
    Straight-through: ``W_hat = W + (f(W) - W).detach()``, as the reference
    computes it. On CPU, ``f(W) - W`` and the threshold come from numba
    kernels (a pass that finds the quantile near the previous threshold, a
    pass per row that rescales and writes); elsewhere from torch
    operations on all layers at once. The reference updates the thresholds every step between a start and
    an end epoch (``ratio_granularity = "step"``); here the ramp bounds are
    fractions of the call's optimizer steps. The reference's ST-3σ variant
    (a global threshold on layer-normalised magnitudes) is not included.

    References
    ----------
    A. Vanderschueren and C. De Vleeschouwer, "Are Straight-Through
    gradients and Soft-Thresholding all you need for Sparse Training?",
    WACV 2023.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import NeuralNetClassifier, SoftThresholdSparsity, sparsity_report
    >>> X, y = load_digits(return_X_y=True)
    >>> st3 = SoftThresholdSparsity(final_sparsity=0.9, ramp=(0.0, 0.5))
    >>> net = NeuralNetClassifier(
    ...     module__hidden_units=(64,), lr=0.05, optimizer__momentum=0.9, max_epochs=6,
    ...     callbacks=[st3], random_state=0,
    ... ).fit(X / 16, y)
    >>> net.history[:, "sparsity"]
    [0.6333333333333333, 0.8666666666666666, 0.9, 0.9, 0.9, 0.9]
    >>> round(float(sparsity_report(net)["density"].iloc[-1]), 2)
    0.1
    >>> model = st3.finalize(net)  # sparse weights + torch.nn.utils.prune masks
    >>> sorted(name for name, _ in model.named_buffers())
    ['body.0.weight_mask', 'head.weight_mask']
    """

    def __init__(self, final_sparsity=0.9, ramp=(0.0, 0.8), scope="global", soft=True, rescale=True):
        super().__init__(final_sparsity=final_sparsity, ramp=ramp, scope=scope)
        self.soft = soft
        self.rescale = rescale

    def initialize(self):
        """Check the parameters and reset the state.

        Returns
        -------
        self : object
            The callback.
        """
        super().initialize()
        for name in ("soft", "rescale"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        self.thresholds_ = {}
        return self

    def _prepare(self):
        for name, layer in self._layers:
            parametrization = _parametrization(layer)
            if parametrization is None:
                if parametrize.is_parametrized(layer, "weight") or pruning_hook(layer) is not None:
                    raise ValueError(
                        f"layer {name!r} already carries a mask or another parametrisation; "
                        "SoftThresholdSparsity trains dense weights (call "
                        "torch.nn.utils.prune.remove on it first)."
                    )
                parametrization = SoftThresholdParametrization(self.soft, self.rescale).to(layer.weight.device)
                parametrize.register_parametrization(layer, "weight", parametrization)
            parametrization.soft.fill_(self.soft)
            parametrization.rescale.fill_(self.rescale)
        originals = [layer.parametrizations.weight.original for _, layer in self._layers]
        self._originals = originals
        self._parametrizations = [_parametrization(layer) for _, layer in self._layers]
        # The size of every output row, for the per-row means of the rescaling.
        self._row_sizes = torch.cat(
            [torch.full((w.shape[0],), w.numel() // w.shape[0], dtype=w.dtype, device=w.device) for w in originals]
        )
        # CPU weights of one float dtype go through the numba kernels, which
        # write f(W) - W into these buffers.
        dtypes = {w.dtype for w in originals}
        self._kernel = (
            all(w.device.type == "cpu" and w.is_contiguous() for w in originals)
            and len(dtypes) == 1
            and dtypes <= {torch.float32, torch.float64}
        )
        self._deltas = [torch.empty_like(w) for w in originals] if self._kernel else None
        self._scratch = (
            np.empty(sum(w.numel() for w in originals), dtype=originals[0].detach().numpy().dtype)
            if self._kernel
            else None
        )
        self._previous = {}
        self._views = (None,)

    @torch.no_grad()
    def _update(self, sparsity):
        originals, parametrizations = self._originals, self._parametrizations
        if sparsity == 0:
            for (name, _), p in zip(self._layers, parametrizations):
                p.set_threshold(-1.0)
                self.thresholds_[name] = -1.0
            return
        if self._kernel:
            self._update_cpu(sparsity, originals, parametrizations)
            return
        # All layers at once in flat buffers: a few large operations per
        # step instead of a dozen small ones per layer.
        flat = torch.cat([w.detach().reshape(-1) for w in originals])
        magnitude = flat.abs()
        sizes = [w.numel() for w in originals]
        if self.scope == "global":
            thresholds = [_interpolated_quantile(magnitude, sparsity)] * len(originals)
            element_threshold = thresholds[0]
        else:
            thresholds = [
                _interpolated_quantile(part, sparsity) for part in torch.split(magnitude, sizes)
            ]
            element_threshold = torch.empty_like(flat)
            for part, threshold in zip(torch.split(element_threshold, sizes), thresholds):
                part.fill_(threshold)
        keep = magnitude > element_threshold
        if self.soft:
            value = flat - torch.clamp(flat, -element_threshold, element_threshold)
        else:
            value = flat * keep
        if self.rescale:
            rows = [w.shape[0] for w in originals]
            kept_parts = torch.split(magnitude * keep, sizes)
            all_parts = torch.split(magnitude, sizes)
            kept_sum = torch.cat([part.view(r, -1).sum(1) for part, r in zip(kept_parts, rows)])
            all_sum = torch.cat([part.view(r, -1).sum(1) for part, r in zip(all_parts, rows)])
            row_sizes = self._row_sizes
            kept = (kept_sum / row_sizes + _MEAN_EPS) / (all_sum / row_sizes + _MEAN_EPS)
            scales = torch.split(_SCALE_NUM / (kept + _SCALE_EPS), rows)
            for part, r, scale in zip(torch.split(value, sizes), rows, scales):
                part.view(r, -1).mul_(scale[:, None])
        deltas = torch.split(value.sub_(flat), sizes)
        for (name, _), p, w, delta, threshold in zip(
            self._layers, parametrizations, originals, deltas, thresholds
        ):
            p.set_threshold(threshold)
            self.thresholds_[name] = threshold
            if threshold > 0:
                p.store(w, delta.view(w.shape))

    def _update_cpu(self, sparsity, originals, parametrizations):
        # NumPy views of the weights and of the delta buffers, rebuilt only
        # if a weight moved to new memory.
        pointers = [w.data_ptr() for w in originals]
        if getattr(self, "_views", (None,))[0] != pointers:
            arrays = tuple(w.detach().numpy().reshape(w.shape[0], -1) for w in originals)
            deltas = tuple(d.numpy().reshape(d.shape[0], -1) for d in self._deltas)
            self._views = (pointers, arrays, deltas)
        _, arrays, deltas = self._views
        if self.scope == "global":
            threshold = threshold_quantile(arrays, sparsity, self._scratch, self._previous.get("global"))
            self._previous["global"] = threshold
            thresholds = [threshold] * len(arrays)
        else:
            thresholds = []
            for (name, _), array in zip(self._layers, arrays):
                threshold = threshold_quantile((array,), sparsity, self._scratch, self._previous.get(name))
                self._previous[name] = threshold
                thresholds.append(threshold)
        soft_threshold_deltas(arrays, np.asarray(thresholds, dtype=np.float64), self.soft, self.rescale, deltas)
        for (name, _), p, w, delta, threshold in zip(
            self._layers, parametrizations, originals, self._deltas, thresholds
        ):
            p.set_threshold(threshold)
            self.thresholds_[name] = threshold
            if threshold > 0:
                p.store(w, delta)

    def finalize(self, model):
        """Replace the parametrisations by the sparse weights and a prune mask.

        Each parametrised layer gets its thresholded, rescaled weight as
        an ordinary parameter, masked by :func:`torch.nn.utils.prune.custom_from_mask`
        (the mask is ``|W| > th``). Further training then keeps the pruned
        weights at zero (the reference's fine-tuning after ``fix``);
        ``torch.nn.utils.prune.remove`` makes the model plain.

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            A model trained with this callback.

        Returns
        -------
        model : torch.nn.Module
            The module, changed in place.
        """
        model = unwrap_module(model)
        found = False
        for name, layer in prunable_layers(model, "finalize"):
            parametrization = _parametrization(layer)
            if parametrization is None:
                continue
            found = True
            with torch.no_grad():
                threshold = float(parametrization.threshold)
                original = layer.parametrizations.weight.original
                keep = original.abs() > threshold if threshold > 0 else torch.ones_like(original, dtype=torch.bool)
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            prune.custom_from_mask(layer, "weight", keep.to(layer.weight.dtype))
        if not found:
            raise ValueError("finalize found no layer parametrised by SoftThresholdSparsity in the model.")
        return model


def _parametrization(layer):
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    for p in layer.parametrizations.weight:
        if isinstance(p, SoftThresholdParametrization):
            return p
    return None


class GradualMagnitudePruning(_RampedSparsity):
    """Gradual magnitude pruning on the cubic schedule (the baseline of ST-3).

    After every optimizer step, zeroes the smallest-magnitude weights of
    the ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layers up to the target
    sparsity ``r = final_sparsity * (1 - (1 - tau)^3)`` (Zhu & Gupta,
    2017), with :mod:`torch.nn.utils.prune` masks. A pruned weight gets no
    gradient and is set to zero, so it stays pruned.

    Parameters
    ----------
    final_sparsity : float in [0, 1), default=0.9
        Sparsity at the end of the ramp.
    ramp : tuple (start, end), default=(0.0, 0.8)
        Fractions of the training steps where the ramp starts and ends.
    scope : {"global", "layer"}, default="global"
        Rank all weights together or each layer separately.

    Attributes
    ----------
    layers_ : list of str
        Names of the masked layers.
    sparsity_ : float
        The target sparsity after the last optimizer step.

    See Also
    --------
    SoftThresholdSparsity : ST-3, with straight-through gradients.
    magnitude_prune : The one-shot version.

    References
    ----------
    M. Zhu and S. Gupta, "To prune, or not to prune: exploring the efficacy
    of pruning for model compression", arXiv:1710.01878, 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import GradualMagnitudePruning, NeuralNetClassifier, sparsity_report
    >>> X, y = load_digits(return_X_y=True)
    >>> net = NeuralNetClassifier(
    ...     module__hidden_units=(64,), lr=0.05, optimizer__momentum=0.9, max_epochs=4,
    ...     callbacks=[GradualMagnitudePruning(final_sparsity=0.8, ramp=(0.0, 0.5))],
    ...     random_state=0,
    ... ).fit(X / 16, y)
    >>> net.history[:, "sparsity"]
    [0.7, 0.8, 0.8, 0.8]
    >>> round(float(sparsity_report(net)["density"].iloc[-1]), 2)
    0.2
    """

    def _prepare(self):
        self._last_sparsity = None
        with torch.no_grad():
            for name, layer in self._layers:
                check_not_parametrized(layer, name, type(self).__name__)
                if pruning_hook(layer) is None:
                    set_mask(layer, torch.ones_like(layer.weight))

    @torch.no_grad()
    def _update(self, sparsity):
        # Pruned weights are zero and get no gradient, so at an unchanged
        # target the mask would not change.
        if sparsity == getattr(self, "_last_sparsity", None):
            return
        self._last_sparsity = sparsity
        scores = [layer.weight.detach().abs() for _, layer in self._layers]
        for (_, layer), keep in zip(self._layers, keep_masks(scores, sparsity, self.scope)):
            # Sticky: a pruned weight is zeroed, so it ranks lowest from now on.
            layer.weight_orig.mul_(keep)
            set_mask(layer, keep)
