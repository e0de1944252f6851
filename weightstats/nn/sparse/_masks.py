"""Masks on the weights of linear and convolution layers, the magnitude baseline and the report.

Every method of :mod:`weightstats.nn.sparse` keeps its mask where
:mod:`torch.nn.utils.prune` keeps one: the trained tensor is ``weight_orig``
(a parameter), the mask is the buffer ``weight_mask`` and a forward
pre-hook sets ``weight = weight_orig * weight_mask``. A pruned model is
therefore an ordinary torch model (its state dict has both tensors) and
``torch.nn.utils.prune.remove`` makes the zeros permanent.
"""

import math
import numbers

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import Callback
from torch import nn
from torch.nn.utils import parametrize, prune

from .._core import EpochsSinceFit

__all__ = ["magnitude_prune", "sparsity_report"]

# The layers whose weights the methods sparsify (their ``weight`` multiplies
# the input; biases and normalisation layers stay dense, as in the
# reference implementations).
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model, owner):
    """The ``(name, module)`` pairs of the layers a method sparsifies.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    owner : str
        The method, named in the error message.

    Returns
    -------
    layers : list of (str, torch.nn.Module)
        The linear and convolution layers, in module order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{owner} needs a torch.nn.Module (or a fitted skorch net); got {type(model).__name__}."
        )
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE)]
    if not layers:
        kinds = sorted({type(module).__name__ for module in model.modules()} - {type(model).__name__})
        raise TypeError(
            f"{owner} sparsifies the weights of nn.Linear and nn.Conv1d/2d/3d layers; the model "
            f"has none (its layers: {kinds or 'none'})."
        )
    return layers


def unwrap_module(model):
    """The module of a fitted skorch net, or the module itself."""
    module = getattr(model, "module_", model)
    return module


def pruning_hook(module):
    """The ``torch.nn.utils.prune`` method acting on ``module.weight``, or None."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == "weight":
            return hook
    return None


def check_not_parametrized(module, name, owner):
    if parametrize.is_parametrized(module, "weight"):
        raise ValueError(
            f"{owner} cannot mask layer {name!r}: its weight is parametrised (e.g. by "
            "SoftThresholdSparsity); call SoftThresholdSparsity.finalize(model) first."
        )


def refresh_weight(module):
    """Recompute ``module.weight`` from ``weight_orig`` and the mask now, not at the next forward."""
    hook = pruning_hook(module)
    if hook is not None:
        with torch.no_grad():
            setattr(module, "weight", hook.apply_mask(module))


def set_mask(module, mask):
    """Give ``module.weight`` the mask ``mask`` (a new prune mask, or the existing one updated).

    An existing mask buffer is overwritten in place, whatever pruning method
    owns it, so the new mask replaces the old one instead of being combined
    with it.
    """
    mask = mask.to(dtype=module.weight.dtype, device=module.weight.device)
    if pruning_hook(module) is None:
        prune.custom_from_mask(module, "weight", mask)
    else:
        module.weight_mask.copy_(mask)
        refresh_weight(module)


class DenseGradientMask(prune.BasePruningMethod):
    """A prune mask whose gradient reaches every entry of ``weight_orig``.

    For training methods that keep ``weight_orig`` zero outside the mask by
    re-applying it after every optimizer step (sparse momentum, like its
    reference implementation): the forward then uses ``weight_orig`` as it
    is, which equals ``weight_orig * weight_mask``, and the gradient of
    ``weight`` reaches ``weight_orig`` unmasked, so the optimizer's
    momentum also sees the inactive weights (sparse momentum regrows where
    that momentum is largest). Swapped for
    :class:`torch.nn.utils.prune.CustomFromMask` when training ends.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, mask=None):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    def apply_mask(self, module):
        # A view, not the parameter itself (setattr would register it).
        return getattr(module, self._tensor_name + "_orig").view_as(module.weight_mask)


def swap_pruning_method(module, method_cls):
    """Replace the pruning hook of ``module.weight`` by a ``method_cls`` hook on the same mask."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == "weight":
            if type(hook) is method_cls:
                return
            new = method_cls(module.weight_mask.detach().clone())
            new._tensor_name = "weight"
            module._forward_pre_hooks[key] = new
            refresh_weight(module)
            return


class OptimizerStepCallback(Callback):
    """Base of the training methods: a skorch callback that acts after every optimizer step.

    Subclasses implement ``_start(model, optimizer, net=None)`` (prepare the
    model, then call :meth:`_hook`), ``_after_step`` and ``_release`` (what
    :meth:`detach` leaves behind). The same code runs under skorch
    (``on_train_begin`` / ``on_train_end``) and in a plain loop
    (``attach`` / ``detach``). Pickling and copying drop the model,
    optimizer and hooks the callback is attached to.
    """

    _TRANSIENT = (
        "_model", "_layers", "_optimizer", "_step_hook", "_epochs", "_row_sizes", "_deltas", "_scratch",
        "_views", "_originals", "_parametrizations",
    )

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in self._TRANSIENT:
            state.pop(name, None)
        return state

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Prepare the net's module and hook into its optimizer.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X : input data, default=None
            Training inputs.
        y : target data, default=None
            Training targets.
        **kwargs : dict
            Other arguments skorch passes.
        """
        self._epochs = EpochsSinceFit(net)
        self._start(net.module_, net.optimizer_, net=net)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Unhook from the optimizer (see :meth:`detach`).

        Parameters
        ----------
        net : NeuralNet
            The net that was trained.
        X : input data, default=None
            Training inputs.
        y : target data, default=None
            Training targets.
        **kwargs : dict
            Other arguments skorch passes.
        """
        self.detach()

    def detach(self):
        """Stop acting on optimizer steps.

        Returns
        -------
        model : torch.nn.Module or None
            The model (``None`` if the callback was never attached).
        """
        hook = getattr(self, "_step_hook", None)
        if hook is not None:
            hook.remove()
            self._step_hook = None
        model = getattr(self, "_model", None)
        if model is not None:
            self._release()
        return model

    @staticmethod
    def _check_optimizer_type(optimizer):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}.")

    def _hook(self, optimizer):
        self._optimizer = optimizer
        self._step_hook = optimizer.register_step_post_hook(self._after_step)

    def _release(self):
        pass


def check_fraction(value, name, *, low_open=False, high_open=True):
    """A float in [0, 1) (or as the flags say), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}.")
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not (low_ok and high_ok):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}; got {value!r}.")
    return float(value)


def keep_masks(scores, sparsity, scope):
    """Boolean keep-masks that drop the lowest scores, exactly ``round(sparsity * n)`` of them.

    Parameters
    ----------
    scores : list of tensor
        One non-negative score tensor per layer (larger is kept).
    sparsity : float in [0, 1)
        Fraction of the entries to drop: over all layers together
        (``scope="global"``) or in each layer (``scope="layer"``).
    scope : {"global", "layer"}
        Where the ranking happens.

    Returns
    -------
    masks : list of bool tensor
        ``True`` where an entry is kept. Ties at the cut are broken by
        position (the first ones are dropped), so the count is exact.
    """
    if scope == "layer":
        return [_keep_lowest_dropped(score.reshape(-1), sparsity).reshape(score.shape) for score in scores]
    flat = torch.cat([score.reshape(-1) for score in scores])
    keep = _keep_lowest_dropped(flat, sparsity)
    masks, start = [], 0
    for score in scores:
        masks.append(keep[start : start + score.numel()].reshape(score.shape))
        start += score.numel()
    return masks


def order_statistics(values, low, with_next=False):
    """The ``low``-th smallest of ``values`` (0-based), and the next one if asked (floats).

    A partial sort: NumPy's introselect on CPU (several times faster than
    ``torch.kthvalue`` there; one partition, the next value being the
    minimum of the part above it), ``torch.kthvalue`` on other devices.
    """
    values = values.detach().reshape(-1)
    if values.device.type == "cpu":
        array = values.numpy() if values.dtype != torch.bfloat16 else values.float().numpy()
        parted = np.partition(array, low)
        first = float(parted[low])
        if not with_next:
            return first
        return first, float(parted[low + 1 :].min()) if low + 1 < parted.size else first
    first_t = torch.kthvalue(values, low + 1).values
    if not with_next:
        return float(first_t)
    if low + 1 >= values.numel():
        return float(first_t), float(first_t)
    # The next order statistic: the smallest value among those after ``low``
    # in sorted order (ties with ``first`` included).
    n_le = int((values <= first_t).sum())
    if n_le > low + 1:
        return float(first_t), float(first_t)
    return float(first_t), float(torch.where(values > first_t, values, float("inf")).min())


def extreme_indices(score, k, largest):
    """Flat indices of the ``k`` largest (or smallest) entries of ``score``, in no order.

    ``np.argpartition`` on CPU (linear time; ``torch.topk`` sorts its
    selection and is several times slower for large ``k``),
    ``torch.topk`` elsewhere.
    """
    flat = score.reshape(-1)
    if flat.device.type == "cpu":
        array = flat.numpy()
        n = array.size
        if largest:
            picked = np.argpartition(array, n - k)[n - k :]
        else:
            picked = np.argpartition(array, k - 1)[:k]
        return torch.from_numpy(picked)
    return torch.topk(flat, k, largest=largest, sorted=False).indices


def _keep_lowest_dropped(flat, sparsity):
    n_drop = int(round(sparsity * flat.numel()))
    keep = torch.ones(flat.shape, dtype=torch.bool, device=flat.device)
    if n_drop == 0:
        return keep
    # Scores are non-negative; already pruned weights score exactly zero and
    # can be most of them, which makes a partial sort slow: select among the
    # positive scores only.
    n_zero = int((flat == 0).sum())
    if n_drop <= n_zero:
        cut = torch.zeros((), dtype=flat.dtype, device=flat.device)
    else:
        positive = flat[flat > 0] if n_zero else flat
        cut = torch.tensor(order_statistics(positive, n_drop - n_zero - 1), dtype=flat.dtype, device=flat.device)
    below = flat < cut
    keep &= ~below
    n_tied = n_drop - int(below.sum())
    if n_tied > 0:
        tied = torch.nonzero(flat == cut).reshape(-1)[:n_tied]
        keep[tied] = False
    return keep


def magnitude_prune(model, sparsity, scope="global"):
    """Zero the smallest-magnitude weights of the linear and convolution layers.

    The one-shot magnitude baseline. The masks are
    :mod:`torch.nn.utils.prune` masks (``weight_orig``, ``weight_mask``);
    on a layer that already has one, the new mask replaces it, so
    ``sparsity`` is the fraction of zero weights afterwards (not a further
    fraction of the remaining ones, as repeated ``prune.l1_unstructured``
    calls would give).

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        The model; its ``nn.Linear`` and ``nn.Conv1d/2d/3d`` weights are
        masked in place (biases stay dense).
    sparsity : float in [0, 1)
        Fraction of the weights set to zero, rounded to a whole number of
        weights.
    scope : {"global", "layer"}, default="global"
        ``"global"`` ranks all weights together (layers end up with
        different sparsities); ``"layer"`` prunes each layer to
        ``sparsity``.

    Returns
    -------
    model : torch.nn.Module
        The same module, masked.

    See Also
    --------
    sparsity_report : Density, non-zeros and FLOPs per layer.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, magnitude_prune, sparsity_report
    >>> _ = torch.manual_seed(0)
    >>> model = magnitude_prune(MLP(64, 10, hidden_units=(32,)), 0.75, scope="layer")
    >>> sorted(name for name, _ in model.named_buffers())
    ['body.0.weight_mask', 'head.weight_mask']
    >>> sparsity_report(model)["density"].round(3).tolist()
    [0.25, 0.25, 0.25]
    """
    sparsity = check_fraction(sparsity, "sparsity")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer'; got {scope!r}.")
    module = unwrap_module(model)
    layers = prunable_layers(module, "magnitude_prune")
    for name, layer in layers:
        check_not_parametrized(layer, name, "magnitude_prune")
    with torch.no_grad():
        scores = [layer.weight.detach().abs() for _, layer in layers]
        for (_, layer), keep in zip(layers, keep_masks(scores, sparsity, scope)):
            set_mask(layer, keep)
    return module


def _layer_flops(layer, weights, out_shape):
    """Multiply-adds x 2 of one example through ``layer`` with ``weights`` non-zero weights."""
    if out_shape is None:
        positions = 1
    elif isinstance(layer, nn.Linear):
        # Rows of the batch times any sequence positions.
        positions = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
    else:
        positions = int(np.prod(out_shape[2:]))
    return 2 * weights * positions


def sparsity_report(model, example_input=None):
    """Per-layer density, non-zero weights and FLOPs saved by the zeros.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        The model (pruned, parametrised or dense). Every ``nn.Linear`` and
        ``nn.Conv1d/2d/3d`` layer is reported; the weight counted is the one
        the forward pass uses (``weight_orig * weight_mask`` for pruned
        layers, the parametrised value for parametrised ones).
    example_input : tensor, default=None
        A batch to run once (in evaluation mode, without gradients) to learn
        the output sizes. Without it, FLOPs are per input row for linear
        layers and per output position for convolutions.

    Returns
    -------
    report : pandas.DataFrame
        One row per layer and a final ``"total"`` row, with columns
        ``layer``, ``type``, ``shape``, ``weights``, ``nonzero``,
        ``density`` (``nonzero / weights``), ``flops_dense``,
        ``flops_sparse`` and ``flops_saved``. FLOPs are two per
        multiply-add of the weight product of one example (biases not
        counted); the sparse count assumes every zero weight is skipped.

    See Also
    --------
    magnitude_prune : The magnitude baseline.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, magnitude_prune, sparsity_report
    >>> _ = torch.manual_seed(0)
    >>> model = magnitude_prune(MLP(64, 10, hidden_units=(100,)), 0.9, scope="layer")
    >>> report = sparsity_report(model)
    >>> report[["layer", "weights", "nonzero", "flops_dense", "flops_saved"]]
        layer  weights  nonzero  flops_dense  flops_saved
    0  body.0     6400      640        12800        11520
    1    head     1000      100         2000         1800
    2   total     7400      740        14800        13320
    """
    module = unwrap_module(model)
    layers = prunable_layers(module, "sparsity_report")
    out_shapes = {}
    if example_input is not None:
        handles = [
            layer.register_forward_hook(
                lambda mod, inputs, output, name=name: out_shapes.__setitem__(name, tuple(output.shape))
            )
            for name, layer in layers
        ]
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                module(example_input)
        finally:
            module.train(was_training)
            for handle in handles:
                handle.remove()
    rows = []
    with torch.no_grad():
        for name, layer in layers:
            weight = layer.weight
            n_weights, nonzero = weight.numel(), int(torch.count_nonzero(weight))
            shape = out_shapes.get(name)
            rows.append(
                {
                    "layer": name,
                    "type": type(layer).__name__,
                    "shape": tuple(weight.shape),
                    "weights": n_weights,
                    "nonzero": nonzero,
                    "flops_dense": _layer_flops(layer, n_weights, shape),
                    "flops_sparse": _layer_flops(layer, nonzero, shape),
                }
            )
    report = pd.DataFrame(rows)
    total = {"layer": "total", "type": "", "shape": ()}
    for column in ("weights", "nonzero", "flops_dense", "flops_sparse"):
        total[column] = int(report[column].sum())
    report = pd.concat([report, pd.DataFrame([total])], ignore_index=True)
    report["density"] = report["nonzero"] / report["weights"]
    report["flops_saved"] = report["flops_dense"] - report["flops_sparse"]
    columns = ["layer", "type", "shape", "weights", "nonzero", "density"]
    return report[columns + ["flops_dense", "flops_sparse", "flops_saved"]]
