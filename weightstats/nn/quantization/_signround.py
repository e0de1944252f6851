"""SignRound: weight rounding learned by signed gradient descent (Cheng et al.; intel/auto-round).

Post-training, weight-only quantisation. For every block (by default every
``nn.Linear`` on its own), in the order the model calls them:

1. the calibration rows are run through the full-precision model, giving the
   block's inputs and its reference output, and through the model with the
   blocks before it already quantised, giving the inputs it will see
   (``quantized_inputs=True``, auto-round's ``enable_quanted_input``);
2. each weight of the block gets trainable rounding offsets ``v`` (one per
   weight, start 0) and range factors ``min_scale``, ``max_scale`` (one per
   group, start 1) in the rule of :func:`signround_fake_quantize`;
3. ``iters`` steps of signed gradient descent ``theta -= lr_t sign(grad)``
   on the mean squared error between the block's quantised output and its
   reference output, with ``lr_t = lr (1 - t / iters)`` (``lr = 1 / iters``
   by default, auto-round's ``LinearLR`` to 0); after each step ``v`` is
   clipped to [-0.5, 0.5] and the factors to [0, 1];
4. the parameters with the lowest loss seen (checked before each step, so
   the round-to-nearest start counts) are kept.

``iters=0`` keeps the starting point: round-to-nearest, bit for bit.
"""

import copy
import numbers
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_random_state
from torch import nn
from torch.nn.utils import parametrize

from .._core import check_finite_tensor
from ._quant_linear import QuantLinear
from ._rounding import (
    check_bits,
    check_group_size,
    check_scale_dtype,
    group_shape,
    quantize_groups,
)

__all__ = ["SignRound", "rtn_quantize"]


class _SignSGD(torch.optim.Optimizer):
    """Signed gradient descent ``param -= lr * sign(grad)``, then clipping to ``bounds``.

    auto-round's ``SignSGD`` (no momentum, no weight decay) with the clipping
    of the trained parameters done in the step.
    """

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr, "bounds": None})

    @torch.no_grad()
    def step(self, closure=None):
        """One signed step of every parameter with a gradient."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(torch.sign(param.grad), alpha=-group["lr"])
                if group["bounds"] is not None:
                    param.clamp_(*group["bounds"])


class _StopForward(Exception):
    """Raised by a hook once the inputs of the block being calibrated are known."""


class _SignRoundWeight(nn.Module):
    """The parametrisation a weight wears while it is calibrated."""

    def __init__(self, shape, bits, group_size, sym, scale_dtype, minmax_tuning, device):
        super().__init__()
        n_total, group = group_shape(shape, group_size)
        self.bits, self.group_size, self.sym, self.scale_dtype = bits, group_size, sym, scale_dtype
        self.v = nn.Parameter(torch.zeros(n_total, group, device=device))
        if minmax_tuning:
            self.min_scale = nn.Parameter(torch.ones(n_total, device=device))
            self.max_scale = nn.Parameter(torch.ones(n_total, device=device))
        else:
            self.min_scale = self.max_scale = None

    def forward(self, weight):
        return quantize_groups(
            weight, self.bits, self.group_size, self.sym, v=self.v, min_scale=self.min_scale,
            max_scale=self.max_scale, scale_dtype=self.scale_dtype,
        )[0]

    def trainables(self):
        return {
            name: getattr(self, name)
            for name in ("v", "min_scale", "max_scale")
            if getattr(self, name) is not None
        }


# ---------------------------------------------------------------- helpers
def _unwrap(model):
    """The module of a fitted skorch net, or the module itself."""
    module = getattr(model, "module_", model)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module or a fitted skorch net; got {type(model).__name__}."
        )
    return module


def _resolve_layers(module, layers):
    modules = dict(module.named_modules())
    if layers is None:
        names = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
        if not names:
            raise ValueError("the model has no nn.Linear layer to quantise.")
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers is empty; name at least one nn.Linear layer or pass None.")
        for name in names:
            if name not in modules:
                raise ValueError(
                    f"the model has no layer {name!r}; layer names are those of "
                    "model.named_modules()."
                )
            if not isinstance(modules[name], nn.Linear):
                raise TypeError(
                    f"layer {name!r} is a {type(modules[name]).__name__}; only nn.Linear layers "
                    "are quantised."
                )
    for name in names:
        if parametrize.is_parametrized(modules[name]):
            raise ValueError(
                f"layer {name!r} has a parametrisation (e.g. from prepare_qat); remove it first "
                "with torch.nn.utils.parametrize.remove_parametrizations(layer, 'weight')."
            )
    return names


def _as_model_input(X, module):
    reference = next(iter(module.parameters()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    if isinstance(X, torch.Tensor):
        X = X.detach().to(device)
    else:
        try:
            X = torch.as_tensor(np.asarray(X), device=device)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"X_calib must be an array or tensor of calibration inputs; got "
                f"{type(X).__name__}."
            ) from exc
    if X.dim() == 0 or X.shape[0] == 0:
        raise ValueError(
            f"X_calib must hold at least one sample (first dimension); got {tuple(X.shape)}."
        )
    if X.is_floating_point():
        if reference is not None and reference.is_floating_point():
            X = X.to(reference.dtype)
        check_finite_tensor(X, "X_calib")
    return X


def _first_tensor(output, name):
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        raise TypeError(
            f"block {name!r} must return a float tensor (or a tuple starting with one)."
        )
    return output


def _rows(value, index, n):
    """Rows ``index`` of the tensors in value whose first dimension is the sample axis."""
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
        return value[index]
    if isinstance(value, tuple):
        return tuple(_rows(item, index, n) for item in value)
    if isinstance(value, list):
        return [_rows(item, index, n) for item in value]
    if isinstance(value, dict):
        return {key: _rows(item, index, n) for key, item in value.items()}
    return value


def _detach(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(item) for item in value)
    if isinstance(value, dict):
        return {key: _detach(item) for key, item in value.items()}
    return value


def _record_calls(model, units, X, stop_at=None):
    """Run ``model(X)`` and record the inputs and output of the named units.

    Returns ``{name: (args, kwargs, output)}`` and the order of first calls.
    With ``stop_at``, stops as soon as that unit has been called (its output
    is then not recorded).
    """
    modules = dict(model.named_modules())
    records, order, handles = {}, [], []

    def pre_hook(name):
        def hook(module, args, kwargs):
            if name in records:
                raise ValueError(
                    f"block {name!r} is called more than once per forward pass (shared "
                    "weights); SignRound calibrates each block once, so quantise it separately."
                )
            records[name] = [_detach(args), _detach(kwargs), None]
            order.append(name)
            if name == stop_at:
                raise _StopForward

        return hook

    def post_hook(name):
        def hook(module, args, kwargs, output):
            records[name][2] = _detach(output)

        return hook

    for name in units:
        handles.append(modules[name].register_forward_pre_hook(pre_hook(name), with_kwargs=True))
        if stop_at is None:
            handles.append(modules[name].register_forward_hook(post_hook(name), with_kwargs=True))
    try:
        with torch.no_grad():
            model(X)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return records, order


def _check_scalar(value, name, low, *, integer=False, allow_none=False, high=None):
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or value < low or (
        high is not None and value > high
    ):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        kind_name = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind_name} {bound}; got {value!r}.")
    return value


class SignRound:
    """SignRound weight-only post-training quantisation (signed gradient descent rounding).

    Learns, for every weight of the chosen ``nn.Linear`` layers, a rounding
    offset ``v`` in [-0.5, 0.5], and per group of ``group_size`` inputs two
    range factors in [0, 1] (``min_scale`` shrinks the group minimum,
    ``max_scale`` the maximum), by signed gradient descent on the output
    error of each block over a few calibration samples; then
    :meth:`quantize` turns the layers into :class:`QuantLinear` layers with
    packed integer weights. The rule and its defaults are those of
    intel/auto-round (see the user guide).

    Parameters
    ----------
    bits : int in [1, 8], default=4
        Bits per weight.
    group_size : int, default=128
        Inputs per quantisation group; -1 for one group per output row.
    sym : bool, default=False
        Symmetric quantisation (no zero point) instead of asymmetric.
    iters : int >= 0, default=200
        Signed gradient steps per block; 0 gives round-to-nearest exactly.
    lr : float or None, default=None
        Step size of the rounding offsets; None uses ``1 / iters`` (``2 /
        iters`` for 3 bits or fewer with ``iters >= 1000``), decayed
        linearly to 0.
    minmax_lr : float or None, default=None
        Step size of the range factors; None uses ``lr``.
    n_samples : int, default=128
        Calibration samples used (a random subset of ``X_calib`` when it
        has more rows).
    batch_size : int or None, default=None
        Samples per step; None uses all calibration samples in every step
        (auto-round draws 8 sequences of 2048 tokens a step; for row data a
        full batch of 128 rows gives a stable loss).
    layers : list of str or None, default=None
        The ``nn.Linear`` layers to quantise (names from
        ``named_modules()``); None quantises all of them.
    blocks : list of str or None, default=None
        Submodules (e.g. transformer blocks) whose quantised layers are
        calibrated together on the block output; layers outside them form
        blocks of their own.
    quantized_inputs : bool, default=True
        Feed each block the outputs of the already quantised blocks before
        it (the error they leave is then corrected for); False feeds the
        full-precision inputs.
    minmax_tuning : bool, default=True
        Learn the range factors; False learns the rounding offsets only.
    scale_dtype : torch.dtype, default=torch.float32
        Precision of the scales (auto-round stores float16).
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of calibration samples and the batch order.
    verbose : int, default=0
        1 prints each block's loss as it is calibrated.

    Attributes
    ----------
    layers_ : list of str
        The quantised layers.
    blocks_ : list of list of str
        The calibration blocks, in the order the model calls them (layer
        names of each).
    params_ : dict of str to dict of torch.Tensor
        Per layer the learned ``"v"`` (shape ``(n_groups_total, group)``),
        ``"min_scale"`` and ``"max_scale"`` (shape ``(n_groups_total,)``),
        on the CPU.
    losses_ : dict of str to dict of float
        Per block (named by its first layer, or by the block name) the
        calibration mean squared error of the block output with
        round-to-nearest (``"rtn"``) and with the learned rounding
        (``"signround"``), both over all calibration samples, and the step
        whose parameters were kept (``"best_iter"``).
    n_samples_ : int
        Calibration samples used.
    fit_time_ : float
        Seconds spent in :meth:`fit`.

    See Also
    --------
    rtn_quantize : The round-to-nearest baseline, same storage.
    QuantLinear : The quantised layer.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import SignRound, rtn_quantize
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> X = torch.randn(64, 8)
    >>> rounding = SignRound(bits=2, group_size=-1, iters=50, random_state=0).fit(model, X)
    >>> quantized = rounding.quantize(model)
    >>> type(quantized[0]).__name__
    'QuantLinear'
    >>> error = lambda m: float(((m(X) - model(X)) ** 2).mean().detach())
    >>> error(quantized) < error(rtn_quantize(model, bits=2, group_size=-1))
    True
    """

    def __init__(
        self,
        bits=4,
        group_size=128,
        sym=False,
        iters=200,
        lr=None,
        minmax_lr=None,
        n_samples=128,
        batch_size=None,
        layers=None,
        blocks=None,
        quantized_inputs=True,
        minmax_tuning=True,
        scale_dtype=torch.float32,
        random_state=None,
        verbose=0,
    ):
        self.bits = bits
        self.group_size = group_size
        self.sym = sym
        self.iters = iters
        self.lr = lr
        self.minmax_lr = minmax_lr
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.layers = layers
        self.blocks = blocks
        self.quantized_inputs = quantized_inputs
        self.minmax_tuning = minmax_tuning
        self.scale_dtype = scale_dtype
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        check_bits(self.bits)
        check_group_size(self.group_size)
        check_scale_dtype(self.scale_dtype)
        _check_scalar(self.iters, "iters", 0, integer=True)
        _check_scalar(self.n_samples, "n_samples", 1, integer=True)
        _check_scalar(self.batch_size, "batch_size", 1, integer=True, allow_none=True)
        for name in ("lr", "minmax_lr"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
                and np.isfinite(value)
            ):
                raise ValueError(f"{name} must be a positive number or None; got {value!r}.")

    def _learning_rates(self):
        if self.iters == 0:
            return 0.0, 0.0
        if self.lr is not None:
            lr = float(self.lr)
        elif self.iters >= 1000 and self.bits <= 3:
            lr = 2.0 / self.iters
        else:
            lr = 1.0 / self.iters
        return lr, float(self.minmax_lr) if self.minmax_lr is not None else lr

    def _units(self, module, layers):
        """The calibration blocks as (module name, names of its quantised layers)."""
        modules = dict(module.named_modules())
        blocks = [] if self.blocks is None else (
            [self.blocks] if isinstance(self.blocks, str) else list(self.blocks)
        )
        assigned, units = {}, []
        for block in blocks:
            if block not in modules:
                raise ValueError(f"the model has no block {block!r} (a name from named_modules()).")
            inside = [name for name in layers if name == block or name.startswith(block + ".")]
            if not inside:
                raise ValueError(f"block {block!r} contains none of the layers being quantised.")
            for name in inside:
                if name in assigned:
                    raise ValueError(
                        f"layer {name!r} is in two blocks ({assigned[name]!r} and {block!r})."
                    )
                assigned[name] = block
            units.append((block, inside))
        units += [(name, [name]) for name in layers if name not in assigned]
        return units

    def fit(self, model, X_calib):
        """Learn the rounding of every chosen layer on calibration inputs.

        ``model`` itself is not changed (calibration works on a copy).

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            The full-precision model.
        X_calib : array-like or torch.Tensor of shape (n_samples, ...)
            Calibration inputs, as ``model`` takes them.

        Returns
        -------
        self : SignRound
            The fitted rounding.
        """
        start = time.perf_counter()
        self._check_params()
        module = _unwrap(model)
        layers = _resolve_layers(module, self.layers)
        units = self._units(module, layers)
        X = _as_model_input(X_calib, module)
        rng = check_random_state(self.random_state)
        if X.shape[0] > self.n_samples:
            rows = np.sort(rng.choice(X.shape[0], size=self.n_samples, replace=False))
            X = X[torch.as_tensor(rows, device=X.device)]
        n = X.shape[0]
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        lr, minmax_lr = self._learning_rates()

        was_training = module.training
        module.eval()
        try:
            reference, order = _record_calls(module, [name for name, _ in units], X)
            missing = [name for name, _ in units if name not in reference]
            if missing:
                raise ValueError(
                    f"the model never calls {missing[:3]} on the calibration inputs; quantise "
                    "only layers that are used (layers=...)."
                )
            units.sort(key=lambda unit: order.index(unit[0]))
            work = copy.deepcopy(module).eval().requires_grad_(False)
            work_modules = dict(work.named_modules())
            self.params_, self.losses_ = {}, {}
            for unit_name, unit_layers in units:
                if self.quantized_inputs:
                    inputs = _record_calls(work, [unit_name], X, stop_at=unit_name)[0][unit_name]
                else:
                    inputs = reference[unit_name]
                args, kwargs = inputs[0], inputs[1]
                target = _first_tensor(reference[unit_name][2], unit_name)
                self.losses_[unit_name] = self._calibrate(
                    work_modules, unit_name, unit_layers, args, kwargs, target, n, batch, lr,
                    minmax_lr, generator,
                )
        finally:
            module.train(was_training)
        self.layers_ = [name for _, unit_layers in units for name in unit_layers]
        self.blocks_ = [list(unit_layers) for _, unit_layers in units]
        self.layer_shapes_ = {
            name: tuple(dict(module.named_modules())[name].weight.shape) for name in self.layers_
        }
        self.n_samples_ = n
        self.fit_time_ = time.perf_counter() - start
        return self

    def _calibrate(
        self, work_modules, unit_name, unit_layers, args, kwargs, target, n, batch, lr, minmax_lr,
        generator,
    ):
        unit = work_modules[unit_name]
        device = target.device
        wrappers = {}
        for name in unit_layers:
            layer = work_modules[name]
            wrappers[name] = _SignRoundWeight(
                tuple(layer.weight.shape), self.bits, self.group_size, bool(self.sym),
                self.scale_dtype, self.minmax_tuning, layer.weight.device,
            )
            parametrize.register_parametrization(layer, "weight", wrappers[name])
        rounding = [w.v for w in wrappers.values()]
        ranges = [p for w in wrappers.values() for key, p in w.trainables().items() if key != "v"]
        groups = [{"params": rounding, "lr": lr, "bounds": (-0.5, 0.5)}]
        if ranges:
            groups.append({"params": ranges, "lr": minmax_lr, "bounds": (0.0, 1.0)})
        trainables = rounding + ranges
        optimizer = _SignSGD(groups, lr=lr)
        # auto-round's schedule: linear decay to 0 over the iterations.
        schedule = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0, end_factor=0.0, total_iters=max(self.iters, 1)
        )

        def loss_on(index):
            if index is None:
                output = unit(*args, **kwargs)
                reference = target
            else:
                output = unit(*_rows(args, index, n), **_rows(kwargs, index, n))
                reference = target[index]
            output = _first_tensor(output, unit_name)
            return torch.mean((output.float() - reference.float()) ** 2)

        with torch.no_grad():
            rtn_loss = float(loss_on(None))
        best_loss, best_iter = float("inf"), 0
        best = [param.detach().clone() for param in trainables]
        order, position = torch.randperm(n, generator=generator), 0
        for step in range(self.iters):
            if batch == n:
                index = None
            else:
                if position + batch > n:
                    order, position = torch.randperm(n, generator=generator), 0
                index = order[position : position + batch].to(device)
                position += batch
            optimizer.zero_grad()
            loss = loss_on(index)
            value = float(loss.detach())
            if not np.isfinite(value):
                raise ValueError(
                    f"the calibration loss of block {unit_name!r} is non-finite at step {step}; "
                    "check the model and the calibration inputs."
                )
            loss.backward()
            if value < best_loss:
                best_loss, best_iter = value, step
                best = [param.detach().clone() for param in trainables]
            optimizer.step()
            schedule.step()
        with torch.no_grad():
            for param, value in zip(trainables, best, strict=True):
                param.copy_(value)
            final_loss = float(loss_on(None))
        for name, wrapper in wrappers.items():
            self.params_[name] = {
                key: param.detach().cpu().clone() for key, param in wrapper.trainables().items()
            }
            parametrize.remove_parametrizations(
                work_modules[name], "weight", leave_parametrized=True
            )
        if self.verbose:
            print(
                f"SignRound {unit_name}: output MSE round-to-nearest {rtn_loss:.4g} -> "
                f"{final_loss:.4g} (step {best_iter} of {self.iters})",
                flush=True,
            )
        if final_loss > rtn_loss * (1 + 1e-6):
            warnings.warn(
                f"SignRound's rounding of block {unit_name!r} has a larger calibration error "
                f"({final_loss:.4g}) than round-to-nearest ({rtn_loss:.4g}); use batch_size=None "
                "or more calibration samples.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return {"rtn": rtn_loss, "signround": final_loss, "best_iter": best_iter}

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise NotFittedError(
                "This SignRound instance is not fitted yet; call fit(model, X_calib) first."
            )

    def quantize(self, model, *, inplace=False):
        """Replace the calibrated layers by :class:`QuantLinear` layers.

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            The model :meth:`fit` saw (same layer names and shapes).
        inplace : bool, default=False
            Change ``model`` itself instead of a copy.

        Returns
        -------
        quantized : torch.nn.Module or skorch net
            The model (a copy unless ``inplace``) with packed integer layers.
        """
        self._check_fitted()
        return _replace_layers(model, self.layers_, inplace, self._quant_layer, self.layer_shapes_)

    def _quant_layer(self, name, linear):
        device = linear.weight.device
        params = {key: value.to(device) for key, value in self.params_[name].items()}
        return QuantLinear.from_linear(
            linear, self.bits, self.group_size, bool(self.sym), v=params["v"],
            min_scale=params.get("min_scale"), max_scale=params.get("max_scale"),
            scale_dtype=self.scale_dtype,
        )


def _replace_layers(model, layers, inplace, build, shapes=None):
    target = model if inplace else copy.deepcopy(model)
    module = _unwrap(target)
    modules = dict(module.named_modules())
    for name in layers:
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            raise ValueError(
                f"the model has no nn.Linear layer {name!r}; quantize the model that was fitted."
            )
        if shapes is not None and tuple(layer.weight.shape) != shapes[name]:
            raise ValueError(
                f"layer {name!r} has weight shape {tuple(layer.weight.shape)}, but SignRound was "
                f"fitted on shape {shapes[name]}; quantize the model that was fitted."
            )
        if parametrize.is_parametrized(layer):
            raise ValueError(f"layer {name!r} has a parametrisation; remove it first.")
        check_finite_tensor(layer.weight, f"the weight of layer {name!r}")
        if name:
            module.set_submodule(name, build(name, layer))
        elif hasattr(target, "module_"):  # a net whose module is a single Linear
            target.module_ = build(name, layer)
        else:
            target = build(name, layer)
    return target


def rtn_quantize(model, bits=4, group_size=128, sym=False, *, layers=None,
                 scale_dtype=torch.float32, inplace=False):
    """Round-to-nearest weight quantisation into :class:`QuantLinear` layers.

    The baseline of :class:`SignRound`, with the same rule and storage
    (``SignRound(iters=0)`` gives exactly the same layers).

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        The model.
    bits : int in [1, 8], default=4
        Bits per weight.
    group_size : int, default=128
        Inputs per group; -1 for one group per row.
    sym : bool, default=False
        Symmetric quantisation.
    layers : list of str or None, default=None
        ``nn.Linear`` layers to quantise; None for all.
    scale_dtype : torch.dtype, default=torch.float32
        Precision of the scales.
    inplace : bool, default=False
        Change ``model`` itself instead of a copy.

    Returns
    -------
    quantized : torch.nn.Module or skorch net
        The model with :class:`QuantLinear` layers.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import rtn_quantize
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> [type(m).__name__ for m in rtn_quantize(model, bits=4)]
    ['QuantLinear', 'ReLU', 'QuantLinear']
    """
    bits = check_bits(bits)
    group_size = check_group_size(group_size)
    scale_dtype = check_scale_dtype(scale_dtype)
    names = _resolve_layers(_unwrap(model), layers)

    def build(name, linear):
        return QuantLinear.from_linear(linear, bits, group_size, bool(sym), scale_dtype=scale_dtype)

    return _replace_layers(model, names, inplace, build)
