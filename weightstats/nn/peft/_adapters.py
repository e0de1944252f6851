"""Put adapters into a pretrained module, freeze the rest, merge them back.

:func:`add_adapters` works on any ``torch.nn.Module`` (no model classes or
configs needed): it picks ``nn.Linear`` layers by name, wraps them, and
leaves only the adapters (and layers named in ``trainable_modules``)
trainable. :class:`AdapterTuning` does the same inside the skorch-style
estimators, on a copy of the pretrained module they are given.
"""

import copy
import re
import warnings
from dataclasses import dataclass, field

from skorch.callbacks import Callback
from torch import nn

from ._base import MergeableLinear
from ._bone import BoneLinear
from ._compacter import BottleneckAdapter, CompacterAdapter, phm_rule
from ._lora import LoRALinear

__all__ = [
    "AdapterSummary",
    "AdapterTuning",
    "add_adapters",
    "adapter_summary",
    "ModuleEditingCallback",
    "merge_adapters",
    "own_module",
    "select_modules",
    "unmerge_adapters",
]

# kind -> (accepted keyword arguments with defaults)
_KIND_PARAMS = {
    "bone": {"r": 64},
    "bat": {"r": 64},
    "lora": {"r": 8, "alpha": None, "dropout": 0.0},
    "compacter": {"reduction": 32, "n": 4, "rank": 1},
    "adapter": {"reduction": 32},
}
_SERIAL = (CompacterAdapter, BottleneckAdapter)
_ADAPTERS = (MergeableLinear, *_SERIAL)


def select_modules(module, target_modules, *, types, default_types=None, what="adapters"):
    """Names and layers of ``module`` matched by ``target_modules``.

    ``None`` takes every layer of ``default_types`` (``types`` when None);
    a string is a regular expression that must match the whole qualified
    name; a list of strings matches a name equal to an entry or ending in
    ``"." + entry`` (peft's rules). Layers inside existing adapters are
    never picked by ``None``.
    """
    inside_adapters = set()
    for name, sub in module.named_modules():
        if isinstance(sub, _ADAPTERS):
            inside_adapters.update(
                f"{name}.{child}" if name else child for child, _ in sub.named_modules() if child
            )
    if target_modules is None:
        wanted = types if default_types is None else default_types
        found = [
            (name, sub)
            for name, sub in module.named_modules()
            if isinstance(sub, wanted) and name not in inside_adapters
        ]
    else:
        if isinstance(target_modules, str):
            pattern = re.compile(target_modules)

            def matches(name):
                return pattern.fullmatch(name) is not None
        elif isinstance(target_modules, (list, tuple, set)) and all(
            isinstance(key, str) for key in target_modules
        ):
            keys = list(target_modules)

            def matches(name):
                return any(name == key or name.endswith("." + key) for key in keys)
        else:
            raise TypeError(
                "target_modules must be None, a regular expression (str) or a list of layer "
                f"names; got {target_modules!r}."
            )
        found = [(name, sub) for name, sub in module.named_modules() if matches(name)]
        for name, sub in found:
            if name in inside_adapters:
                raise ValueError(f"layer {name!r} is already inside an adapter.")
            if isinstance(sub, _ADAPTERS):
                raise ValueError(
                    f"layer {name!r} already has an adapter; merge_adapters(module, unload=True) "
                    "turns merged adapters back into plain layers."
                )
            if not isinstance(sub, types):
                allowed = ", ".join(t.__name__ for t in types)
                raise TypeError(
                    f"{what} apply to {allowed} layers, but {name or 'the module'!r} is a "
                    f"{type(sub).__name__}; choose other target_modules."
                )
    if not found:
        available = [name for name, sub in module.named_modules() if isinstance(sub, types)]
        raise ValueError(
            f"target_modules={target_modules!r} matches no layer of the module; layers that "
            f"{what} can take: {available}."
        )
    return found


def _replace(root, name, new):
    """Put ``new`` where ``name`` is; returns the (possibly new) root."""
    if not name:
        return new
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
    return root


def add_adapters(
    module, kind="bone", target_modules=None, *, trainable_modules=None, verbose=False, **params
):
    """Add adapters to the linear layers of a module and freeze everything else.

    Parameters
    ----------
    module : torch.nn.Module
        The pretrained network; changed in place.
    kind : {"bone", "bat", "lora", "compacter", "adapter"}, default="bone"
        * ``"bone"`` / ``"bat"``: :class:`BoneLinear` replaces each target
          (options ``r=64``);
        * ``"lora"``: :class:`LoRALinear` (options ``r=8, alpha=None,
          dropout=0.0``);
        * ``"compacter"``: a :class:`CompacterAdapter` after each target,
          all sharing one PHM rule (options ``reduction=32, n=4, rank=1``);
        * ``"adapter"``: a dense :class:`BottleneckAdapter` after each
          target (option ``reduction=32``).
    target_modules : None, str or list of str, default=None
        Which ``nn.Linear`` layers: ``None`` takes all of them; a string is
        a regular expression matching the whole qualified name (e.g.
        ``r"body\\.\\d+"``); a list matches names equal to an entry or
        ending in ``"." + entry`` (e.g. ``["body.0", "head"]``).
    trainable_modules : None, str or list of str, default=None
        Layers whose own parameters stay trainable (a new classifier
        head, say), matched like ``target_modules``.
    verbose : bool, default=False
        Print :func:`adapter_summary` afterwards.
    **params : dict
        Options of the adapter kind (see ``kind``).

    Returns
    -------
    module : torch.nn.Module
        The same module with its targets wrapped (a new wrapper when
        ``module`` itself is the only target). Count what trains with
        ``adapter_summary(module).n_trainable``.

    See Also
    --------
    adapter_summary : Adapters and trainable-parameter counts of a module.
    merge_adapters : Merge linear adapters into the base weights.
    AdapterTuning : The same inside the skorch-style estimators.

    Notes
    -----
    Every parameter is frozen except those of the adapters (including
    adapters added by earlier calls) and of ``trainable_modules``. Adapters
    are created on the device and in the dtype of the layer they adapt.
    Linear adapters (Bone, Bat, LoRA) start at zero, so the module computes
    exactly what it did before; Compacter starts near zero (its rule is
    small) and the dense adapter exactly at zero.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, adapter_summary, add_adapters
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(64, 10, hidden_units=(128, 128))
    >>> x = torch.randn(5, 64)
    >>> before = model(x)
    >>> model = add_adapters(model, "bat", ["body.0", "body.2"], r=8)
    >>> torch.allclose(model(x), before)
    True
    >>> summary = adapter_summary(model)
    >>> summary.n_trainable  # 2 layers x (128 / 8) x 8 x 8
    2048
    >>> print(summary)
    Adapters: 2 layers
      body.0  BoneLinear(in_features=64, out_features=128, r=8, variant='bat', merged=False)
      body.2  BoneLinear(in_features=128, out_features=128, r=8, variant='bat', merged=False)
    Trainable parameters: 2,048 of 28,170 (7.27 %)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
    if kind not in _KIND_PARAMS:
        raise ValueError(f"kind must be one of {sorted(_KIND_PARAMS)}; got {kind!r}.")
    unknown = set(params) - set(_KIND_PARAMS[kind])
    if unknown:
        raise TypeError(
            f"adapters of kind {kind!r} take the options {sorted(_KIND_PARAMS[kind])}; got "
            f"unknown {sorted(unknown)}."
        )
    options = {**_KIND_PARAMS[kind], **params}
    targets = select_modules(module, target_modules, types=(nn.Linear,))
    keep_trainable = []
    if trainable_modules is not None:
        keep_trainable = select_modules(
            module, trainable_modules, types=(nn.Module,), what="trainable_modules"
        )
    if kind == "compacter":
        weight = targets[0][1].weight
        options["shared_rule"] = phm_rule(options["n"], dtype=weight.dtype, device=weight.device)
    # Build every wrapper before changing anything, so a bad layer leaves
    # the module untouched.
    wrapped = [(name, _wrap(layer, kind, options)) for name, layer in targets]
    for name, new in wrapped:
        module = _replace(module, name, new)
    module.requires_grad_(False)
    for sub in module.modules():
        if isinstance(sub, MergeableLinear):
            for param_name, param in sub.named_parameters():
                if not param_name.startswith("base."):
                    param.requires_grad_(True)
        elif isinstance(sub, _SERIAL):
            sub.requires_grad_(True)
    for _, sub in keep_trainable:
        sub.requires_grad_(True)
    if verbose:
        print(adapter_summary(module))
    return module


def _wrap(layer, kind, options):
    if kind in ("bone", "bat"):
        return BoneLinear(layer, r=options["r"], variant=kind)
    if kind == "lora":
        return LoRALinear(layer, r=options["r"], alpha=options["alpha"], dropout=options["dropout"])
    weight = layer.weight
    if kind == "compacter":
        adapter = CompacterAdapter(
            layer.out_features, reduction=options["reduction"], n=options["n"],
            rank=options["rank"], shared_rule=options["shared_rule"],
        )
    else:
        adapter = BottleneckAdapter(layer.out_features, reduction=options["reduction"])
    adapter = adapter.to(dtype=weight.dtype, device=weight.device)
    return nn.Sequential(layer, adapter)


def merge_adapters(module, *, unload=False):
    """Merge every linear adapter (Bone, Bat, LoRA) into its base weight.

    Parameters
    ----------
    module : torch.nn.Module
        A module with adapters; changed in place.
    unload : bool, default=False
        Also replace each merged adapter layer by its base ``nn.Linear``
        (a plain module again; :func:`unmerge_adapters` is then impossible).

    Returns
    -------
    module : torch.nn.Module
        The module (a new object only when ``module`` itself was an adapter
        layer and ``unload=True``).

    Warns
    -----
    UserWarning
        When the module holds Compacter or bottleneck adapters: they are
        nonlinear, cannot be merged and stay as they are.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, add_adapters, merge_adapters, unmerge_adapters
    >>> _ = torch.manual_seed(0)
    >>> model = add_adapters(MLP(8, 3, hidden_units=(16,)), "lora", ["body.0"], r=2)
    >>> with torch.no_grad():
    ...     _ = model.body[0].lora_B.normal_()
    >>> x = torch.randn(4, 8)
    >>> y = model(x)
    >>> torch.allclose(merge_adapters(model)(x), y, atol=1e-6), model.body[0].merged
    (True, True)
    >>> plain = merge_adapters(model, unload=True)
    >>> type(plain.body[0]).__name__, torch.allclose(plain(x), y, atol=1e-6)
    ('Linear', True)
    """
    serial = [name for name, sub in module.named_modules() if isinstance(sub, _SERIAL)]
    if serial:
        warnings.warn(
            f"the adapters at {serial} are nonlinear (Compacter / bottleneck) and cannot be "
            "merged; they stay as separate modules.",
            UserWarning,
            stacklevel=2,
        )
    mergeable = [(name, sub) for name, sub in module.named_modules()
                 if isinstance(sub, MergeableLinear)]
    for _, sub in mergeable:
        sub.merge()
    if unload:
        for name, sub in mergeable:
            module = _replace(module, name, sub.base)
    return module


def unmerge_adapters(module):
    """Take every merged linear adapter out of its base weight again.

    Parameters
    ----------
    module : torch.nn.Module
        A module whose adapters were merged by :func:`merge_adapters`.

    Returns
    -------
    module : torch.nn.Module
        The same module; adapters train again.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, add_adapters, merge_adapters, unmerge_adapters
    >>> model = add_adapters(MLP(8, 3, hidden_units=(16,)), "bone", ["body.0"], r=4)
    >>> before = model.body[0].base.weight.clone()
    >>> with torch.no_grad():
    ...     _ = model.body[0].block.normal_()
    >>> _ = unmerge_adapters(merge_adapters(model))
    >>> torch.allclose(model.body[0].base.weight, before), model.body[0].merged
    (True, False)
    """
    for sub in module.modules():
        if isinstance(sub, MergeableLinear):
            sub.unmerge()
    return module


@dataclass(frozen=True)
class AdapterSummary:
    """What :func:`adapter_summary` reports.

    Parameters
    ----------
    layers : dict of str to str
        Qualified name of each adapter module and its description.
    n_trainable : int
        Parameters with ``requires_grad`` (each shared tensor counted once).
    n_total : int
        All parameters, adapters included.

    Examples
    --------
    >>> from torch import nn
    >>> from weightstats.nn import adapter_summary
    >>> adapter_summary(nn.Linear(3, 2)).n_total
    8
    """

    layers: dict = field(default_factory=dict)
    n_trainable: int = 0
    n_total: int = 0

    @property
    def trainable_fraction(self):
        """Share of the parameters that train.

        Returns
        -------
        fraction : float
            ``n_trainable / n_total`` (0 for a module without parameters).
        """
        return self.n_trainable / self.n_total if self.n_total else 0.0

    def __str__(self):
        width = max((len(name) for name in self.layers), default=0)
        lines = [f"Adapters: {len(self.layers)} layer{'s' * (len(self.layers) != 1)}"]
        lines += [f"  {name:<{width}}  {text}" for name, text in self.layers.items()]
        lines.append(
            f"Trainable parameters: {self.n_trainable:,} of {self.n_total:,} "
            f"({100 * self.trainable_fraction:.2f} %)"
        )
        return "\n".join(lines)


def adapter_summary(module):
    """List the adapters of a module and count its trainable parameters.

    Parameters
    ----------
    module : torch.nn.Module
        Any module.

    Returns
    -------
    summary : AdapterSummary
        Adapter layers by name, ``n_trainable`` and ``n_total`` (shared
        parameters, such as Compacter's rule, counted once); ``print`` it
        for a table.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, adapter_summary, add_adapters
    >>> _ = torch.manual_seed(0)
    >>> model = add_adapters(MLP(64, 10, hidden_units=(128, 128)), "compacter",
    ...                      ["body.0", "body.2"], reduction=8)
    >>> adapter_summary(model).n_trainable  # one shared rule + 2 x (144 + 16 + 144 + 128)
    928
    """
    layers = {}
    for name, sub in module.named_modules():
        if isinstance(sub, _ADAPTERS):
            layers[name] = f"{type(sub).__name__}({sub.extra_repr()})" if isinstance(
                sub, MergeableLinear
            ) else _serial_description(sub)
    unique = {id(p): p for p in module.parameters()}.values()
    return AdapterSummary(
        layers=layers,
        n_trainable=sum(p.numel() for p in unique if p.requires_grad),
        n_total=sum(p.numel() for p in unique),
    )


def _serial_description(adapter):
    text = f"{type(adapter).__name__}(d_model={adapter.d_model}, reduction={adapter.reduction}"
    if isinstance(adapter, CompacterAdapter):
        text += f", n={adapter.down.n}, rank={adapter.down.rank}"
    return text + ")"


def own_module(net, module):
    """``module``, deep-copied when it is the object the net was given.

    A pretrained module passed as ``module=`` is used by skorch as it is;
    copying it before adding adapters or parametrisations keeps the
    caller's module unchanged and makes every ``fit`` start from it.
    """
    return copy.deepcopy(module) if module is net.module else module


class ModuleEditingCallback(Callback):
    """Base of the callbacks that rebuild the net's module.

    The nets call :meth:`modify_module` before building the optimizer.
    Subclasses define ``_edit(module)`` (change the module in place and
    return it) and ``_applied(module)`` (whether a module carries the
    change).
    """

    def _edit(self, module):
        raise NotImplementedError

    def _applied(self, module):
        raise NotImplementedError

    def modify_module(self, net, module):
        """The module the net trains: a copy of the given one, edited.

        Parameters
        ----------
        net : NeuralNet
            The net building its module.
        module : torch.nn.Module
            The freshly built module, or the instance the net was given
            (then it is deep-copied first and stays unchanged).

        Returns
        -------
        module : torch.nn.Module
            The edited module.
        """
        return self._edit(own_module(net, module))

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Check that the net called ``modify_module``.

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
        if not self._applied(net.module_):
            raise RuntimeError(
                f"{type(self).__name__} did not find its change in the net's module: use it "
                "with weightstats.nn.NeuralNetClassifier or NeuralNetRegressor, which let "
                "callbacks modify the module before the optimizer is built."
            )


class AdapterTuning(ModuleEditingCallback):
    """Fine-tune only adapters of a pretrained module in a weightstats net.

    When the net builds its module (``initialize``, every fresh ``fit``), a
    copy of the module is given adapters by :func:`add_adapters` and
    everything else is frozen; the optimizer then sees the adapters. The
    module passed to the net is never changed, so refitting starts from the
    pretrained weights again, and pickling / skops round-trip the adapted
    net. Works with :class:`NeuralNetClassifier`, :class:`NeuralNetRegressor`
    and their subclasses (they call the callback's ``modify_module``).

    Parameters
    ----------
    kind : {"bone", "bat", "lora", "compacter", "adapter"}, default="bone"
        The adapter kind (see :func:`add_adapters`).
    target_modules : None, str or list of str, default=None
        Layers to adapt (see :func:`add_adapters`).
    adapter_params : dict or None, default=None
        Options of the kind, e.g. ``{"r": 8}``.
    trainable_modules : None, str or list of str, default=None
        Layers trained in full besides the adapters (e.g. ``["head"]``).

    See Also
    --------
    add_adapters : The same on a plain module.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import (MLP, AdapterTuning, NeuralNetClassifier,
    ...                             adapter_summary)
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype(np.float32)
    >>> pretrained = NeuralNetClassifier(module__hidden_units=(64,), lr=0.1, max_epochs=5,
    ...                                  random_state=0).fit(X, y).module_
    >>> tuning = AdapterTuning("lora", ["body.0", "head"], adapter_params={"r": 2})
    >>> net = NeuralNetClassifier(pretrained, lr=0.1, max_epochs=5, random_state=0,
    ...                           callbacks=[tuning]).fit(1 - X, y)   # inverted pixels
    >>> adapter_summary(net.module_).n_trainable    # 2 * (64 + 64) + 2 * (64 + 10)
    404
    >>> type(pretrained.body[0]).__name__           # the pretrained module is unchanged
    'Linear'
    """

    def __init__(self, kind="bone", target_modules=None, adapter_params=None,
                 trainable_modules=None):
        self.kind = kind
        self.target_modules = target_modules
        self.adapter_params = adapter_params
        self.trainable_modules = trainable_modules

    def _edit(self, module):
        return add_adapters(
            module, self.kind, self.target_modules, trainable_modules=self.trainable_modules,
            **(self.adapter_params or {}),
        )

    def _applied(self, module):
        return bool(adapter_summary(module).layers)
