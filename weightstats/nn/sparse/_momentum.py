"""Sparse momentum ("Sparse Networks from Scratch", Dettmers & Zettlemoyer 2019).

Training keeps a fixed number of non-zero weights. The mask is applied
after every optimizer step; at the end of every epoch but the last:

1. each layer's share of the weights is its mean ``|momentum|`` over its
   *active* weights, normalised over the layers (redistribution);
2. each layer drops ``ceil(rate * nnz)`` of its active weights, those of
   smallest magnitude; ``rate`` is ``prune_rate`` decayed over the epochs;
3. the dropped total is regrown: each layer receives its share (capped at
   99 % of its free slots, the excess spread equally over the other
   layers), at the zero positions with the largest ``|momentum|``, and a
   regrown weight starts at 0.

Rules and defaults follow the reference implementation
(TimDettmers/sparse_learning, ``sparselearning/core.py`` ``Masking`` and
``funcs.py``). Two deliberate differences, both to conserve the non-zero
count exactly every epoch: the initial mask has exactly
``round(density * n)`` active weights per layer (the reference draws each
weight with probability ``density``), and the regrowth counts are rounded
so that they add up to the number removed (the reference floors them and
corrects the drift over later epochs).

The momentum is the optimizer's: SGD's ``momentum_buffer`` or Adam's
``exp_avg / (sqrt(exp_avg_sq) + 1e-8)``. For the momentum to see the
inactive weights, the mask passes the gradient to ``weight_orig`` unmasked
while training (the weights stay zero because the mask is re-applied after
each step), as the reference does by masking the weights, not the
gradients.
"""

import math
import numbers

import torch
from torch.nn.utils import prune

from ._masks import (
    DenseGradientMask,
    OptimizerStepCallback,
    check_fraction,
    check_not_parametrized,
    extreme_indices,
    prunable_layers,
    pruning_hook,
    set_mask,
    swap_pruning_method,
    unwrap_module,
)

__all__ = ["SparseMomentum"]

# CosineDecay's floor in the reference (eta_min).
_MIN_PRUNE_RATE = 0.005
# Regrowth never fills more than this share of a layer's free slots.
_GROWTH_CAP = 0.99
# A layer sparser than this keeps its prune rate at most its sparsity when
# it is gaining weights (the reference's adjust_prune_rate).
_DENSE_LAYER_SPARSITY = 0.2
_ADAM_EPS = 1e-8


class SparseMomentum(OptimizerStepCallback):
    """Sparse training at a fixed density, regrowing by momentum (sparse momentum).

    A skorch callback for the weightstats nets (or any skorch net); for a
    plain training loop, call :meth:`attach` instead. Masks the weights of
    every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layer with a
    :mod:`torch.nn.utils.prune` mask (``weight_orig``, ``weight_mask``):
    the trained model is an ordinary pruned torch model, and
    ``torch.nn.utils.prune.remove`` makes it permanent. Biases stay dense.

    Each training call starts from a random mask with ``density`` active
    weights in every layer (or continues from the masks the model already
    has, e.g. after ``partial_fit`` or :func:`magnitude_prune`); at the end
    of every epoch but the last it moves weights between and within layers
    by the rule of Dettmers & Zettlemoyer (2019), keeping the total number
    of active weights fixed.

    Parameters
    ----------
    density : float in (0, 1], default=0.05
        Fraction of the weights of each layer active at the start (the
        total stays fixed; the layers' shares change).
    prune_rate : float in [0, 1), default=0.5
        Fraction of each layer's active weights replaced at the first
        epoch end, decayed by ``decay``; 0 keeps the initial random mask
        (static sparse training, the natural baseline).
    decay : {"cosine", "linear"}, default="cosine"
        Decay of the prune rate over the training call: at the end of
        epoch ``e`` of ``E`` (``t = e / E``) the rate is
        ``0.005 + (prune_rate - 0.005) * (1 + cos(pi t)) / 2`` (cosine,
        the reference's ``CosineDecay`` with ``eta_min=0.005``) or
        ``prune_rate * (1 - t)`` (linear).
    redistribution : {"momentum", "magnitude", "nonzero", "none"}, default="momentum"
        Statistic giving each layer's share of the regrown weights: mean
        ``|momentum|`` or mean ``|weight|`` over its active weights, its number of
        non-zero weights, or its size.
    growth : {"momentum", "random"}, default="momentum"
        Where a layer regrows: the zero positions with the largest
        ``|momentum|``, or zero positions drawn at random (torch RNG).

    Attributes
    ----------
    layers_ : list of str
        Names of the masked layers.
    nonzero_ : int
        Number of active weights (constant during training).
    history_ : list of dict
        One record per mask update of the last training call: ``epoch``
        (0-based), ``prune_rate``, ``removed``, ``regrown``, ``nonzero``
        and ``density`` (dict layer -> density).

    See Also
    --------
    SoftThresholdSparsity : Dense-to-sparse training by soft thresholding.
    magnitude_prune : One-shot magnitude pruning.

    Notes
    -----
    The mask is re-applied through an optimizer step hook, so the callback
    works with any optimizer that keeps a momentum (``torch.optim.SGD``
    with ``momentum > 0``, Adam-type optimizers with ``exp_avg``); the
    skorch net's ``optimizer__momentum`` sets SGD's. Random draws (initial
    mask, random growth) use the torch RNG, which the net's
    ``random_state`` seeds.

    References
    ----------
    T. Dettmers and L. Zettlemoyer, "Sparse Networks from Scratch: Faster
    Training without Losing Performance", arXiv:1907.04840, 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import NeuralNetClassifier, SparseMomentum, sparsity_report
    >>> X, y = load_digits(return_X_y=True)
    >>> sparse = SparseMomentum(density=0.1)
    >>> net = NeuralNetClassifier(
    ...     module__hidden_units=(64,), lr=0.05, optimizer__momentum=0.9, max_epochs=5,
    ...     callbacks=[sparse], random_state=0,
    ... ).fit(X / 16, y)
    >>> [record["nonzero"] for record in sparse.history_]
    [474, 474, 474, 474]
    >>> round(float(sparsity_report(net)["density"].iloc[-1]), 3)
    0.1

    In a plain loop, :meth:`attach` re-applies the mask after every
    optimizer step and updates it every ``steps_per_epoch`` steps:

    >>> import torch
    >>> from weightstats.nn import MLP
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(64, 10, hidden_units=(64,))
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    >>> sparse = SparseMomentum(density=0.1).attach(model, optimizer, epochs=2, steps_per_epoch=3)
    >>> Xt, yt = torch.tensor(X[:96] / 16, dtype=torch.float32), torch.tensor(y[:96])
    >>> for epoch in range(2):
    ...     for rows in torch.arange(96).reshape(3, 32):
    ...         optimizer.zero_grad()
    ...         torch.nn.functional.cross_entropy(model(Xt[rows]), yt[rows]).backward()
    ...         optimizer.step()
    >>> _ = sparse.detach()
    >>> len(sparse.history_), int(model.body[0].weight_mask.sum() + model.head.weight_mask.sum())
    (1, 474)
    """

    def __init__(
        self, density=0.05, prune_rate=0.5, decay="cosine", redistribution="momentum", growth="momentum"
    ):
        self.density = density
        self.prune_rate = prune_rate
        self.decay = decay
        self.redistribution = redistribution
        self.growth = growth

    # ------------------------------------------------------------ set-up
    def initialize(self):
        """Check the parameters and reset the records.

        Returns
        -------
        self : object
            The callback.
        """
        check_fraction(self.density, "density", low_open=True, high_open=False)
        check_fraction(self.prune_rate, "prune_rate")
        if self.decay not in ("cosine", "linear"):
            raise ValueError(f"decay must be 'cosine' or 'linear'; got {self.decay!r}.")
        if self.redistribution not in ("momentum", "magnitude", "nonzero", "none"):
            raise ValueError(
                "redistribution must be 'momentum', 'magnitude', 'nonzero' or 'none'; got "
                f"{self.redistribution!r}."
            )
        if self.growth not in ("momentum", "random"):
            raise ValueError(f"growth must be 'momentum' or 'random'; got {self.growth!r}.")
        self.history_ = []
        self._step_hook = None
        return self

    def on_epoch_end(self, net, **kwargs):
        """Prune and regrow (every epoch but the last of the training call).

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes.
        """
        record = self._end_epoch(self._epochs.epoch(net))
        if record is not None:
            net.history.record("prune_rate", record["prune_rate"])

    def attach(self, model, optimizer, epochs, steps_per_epoch):
        """Train ``model`` sparsely in a plain loop driven by ``optimizer``.

        Masks the model (or keeps its masks), re-applies the mask after
        every ``optimizer.step()`` and updates it after every
        ``steps_per_epoch`` steps, except at the end of the last of
        ``epochs`` epochs. Call :meth:`detach` after training.

        Parameters
        ----------
        model : torch.nn.Module
            The model (masked in place).
        optimizer : torch.optim.Optimizer
            The optimizer that trains ``model``'s weights, with a momentum
            when ``growth`` or ``redistribution`` is ``"momentum"``.
        epochs : int
            Number of epochs the loop trains (sets the prune-rate decay).
        steps_per_epoch : int
            Optimizer steps per epoch.

        Returns
        -------
        self : object
            The callback, attached.
        """
        for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}.")
        self.initialize()
        self._start(model, optimizer, n_epochs=int(epochs), steps_per_epoch=int(steps_per_epoch))
        return self

    def detach(self):
        """Stop re-applying the mask; leave :func:`torch.nn.utils.prune.custom_from_mask` masks.

        Returns
        -------
        model : torch.nn.Module or None
            The model, whose masks now block the gradient of the pruned
            weights like any ``torch.nn.utils.prune`` mask (``None`` if the
            callback was never attached).
        """
        return super().detach()

    def _release(self):
        for _, layer in self._layers:
            swap_pruning_method(layer, prune.CustomFromMask)

    def _start(self, model, optimizer, net=None, n_epochs=None, steps_per_epoch=None):
        if net is not None:
            n_epochs = self._epochs.n_epochs
        self._check_optimizer_type(optimizer)
        model = unwrap_module(model)
        layers = prunable_layers(model, type(self).__name__)
        for name, layer in layers:
            check_not_parametrized(layer, name, type(self).__name__)
        masked = [pruning_hook(layer) is not None for _, layer in layers]
        if any(masked) and not all(masked):
            raise ValueError(
                f"{type(self).__name__}: some layers of the model carry pruning masks and others "
                "do not; mask all of them (e.g. magnitude_prune) or none."
            )
        self._check_optimizer(optimizer, layers, already_masked=all(masked))
        with torch.no_grad():
            for _, layer in layers:
                if pruning_hook(layer) is None:
                    weight = layer.weight
                    n_active = max(1, round(self.density * weight.numel()))
                    chosen = torch.randperm(weight.numel())[:n_active].to(weight.device)
                    mask = torch.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
                    mask[chosen] = 1
                    DenseGradientMask.apply(layer, "weight", mask=mask.reshape(weight.shape))
                else:
                    swap_pruning_method(layer, DenseGradientMask)
                layer.weight_orig.mul_(layer.weight_mask)
                set_mask(layer, layer.weight_mask)
        self._model, self._layers = model, layers
        self._n_epochs, self._steps_per_epoch, self._steps = n_epochs, steps_per_epoch, 0
        self.layers_ = [name for name, _ in layers]
        self.nonzero_ = sum(int(layer.weight_mask.sum()) for _, layer in layers)
        self.history_ = []
        self._hook(optimizer)

    def _check_optimizer(self, optimizer, layers, already_masked):
        trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for name, layer in layers:
            param = layer.weight_orig if already_masked else layer.weight
            if id(param) not in trained:
                raise ValueError(
                    f"the optimizer does not train the weight of layer {name!r}; build it from "
                    "model.parameters() of the model passed here."
                )
        uses_momentum = "momentum" in (self.growth, self.redistribution) and self.prune_rate > 0
        if uses_momentum and isinstance(optimizer, torch.optim.SGD):
            if any(group.get("momentum", 0) == 0 for group in optimizer.param_groups):
                raise ValueError(
                    "sparse momentum regrows by the optimizer's momentum, but this SGD has "
                    "momentum=0: pass momentum=0.9 (optimizer__momentum=0.9 on a skorch net) or "
                    "use growth='random' and redistribution='magnitude'."
                )

    # --------------------------------------------------------- training
    def _after_step(self, optimizer, args, kwargs):
        with torch.no_grad():
            # One fused call for all layers (as torch's optimizers do).
            torch._foreach_mul_(
                [layer.weight_orig for _, layer in self._layers], [layer.weight_mask for _, layer in self._layers]
            )
        if self._steps_per_epoch is not None:
            self._steps += 1
            if self._steps % self._steps_per_epoch == 0:
                self._end_epoch(self._steps // self._steps_per_epoch - 1)

    def _rate(self, epoch):
        """The prune rate at the end of 0-based ``epoch``."""
        t = (epoch + 1) / self._n_epochs
        if self.decay == "linear":
            return self.prune_rate * (1 - t)
        return _MIN_PRUNE_RATE + (self.prune_rate - _MIN_PRUNE_RATE) * (1 + math.cos(math.pi * t)) / 2

    def _end_epoch(self, epoch):
        if self.prune_rate == 0 or epoch + 1 >= self._n_epochs:
            return None
        record = self._truncate(self._rate(epoch))
        record = {"epoch": int(epoch), **record}
        self.history_.append(record)
        return record

    def _momentum(self, name, layer):
        state = self._optimizer.state.get(layer.weight_orig, {})
        if state.get("exp_avg") is not None and state.get("exp_avg_sq") is not None:
            return state["exp_avg"] / (torch.sqrt(state["exp_avg_sq"]) + _ADAM_EPS)
        if state.get("momentum_buffer") is not None:
            return state["momentum_buffer"]
        raise ValueError(
            f"the optimizer keeps no momentum for layer {name!r} ({type(self._optimizer).__name__}); "
            "sparse momentum needs SGD with momentum > 0 or an Adam-type optimizer, or "
            "growth='random' and redistribution='magnitude'."
        )

    @torch.no_grad()
    def _truncate(self, rate):
        names = [name for name, _ in self._layers]
        weights = [layer.weight_orig for _, layer in self._layers]
        active = [layer.weight_mask.bool() for _, layer in self._layers]
        uses_momentum = "momentum" in (self.growth, self.redistribution)
        momenta = [self._momentum(name, layer) for name, layer in self._layers] if uses_momentum else None
        nnz = [int(mask.sum()) for mask in active]
        sizes = [mask.numel() for mask in active]

        share = self._shares(weights, active, momenta, nnz, sizes)
        # Layers nearly dense and gaining weights prune at most their sparsity.
        rates = []
        for size, count, layer_share in zip(sizes, nnz, share):
            sparsity = (size - count) / size
            expected = 1.0 / len(sizes)
            rates.append(min(sparsity, rate) if sparsity < _DENSE_LAYER_SPARSITY and layer_share > expected else rate)

        removed = []
        for weight, mask, count, layer_rate in zip(weights, active, nnz, rates):
            n_remove = min(count, math.ceil(layer_rate * count))
            if n_remove:
                score = weight.abs().masked_fill_(~mask, float("inf"))
                mask.view(-1)[extreme_indices(score, n_remove, largest=False)] = False
            removed.append(n_remove)
        total_removed = sum(removed)

        free = [size - int(mask.sum()) for size, mask in zip(sizes, active)]
        grow = _allocate(total_removed, share, free)
        for i, (weight, mask, n_grow) in enumerate(zip(weights, active, grow)):
            if n_grow:
                if self.growth == "momentum":
                    score = momenta[i].abs()
                else:
                    score = torch.rand(mask.shape, device=mask.device)
                new = extreme_indices(score.masked_fill_(mask, -float("inf")), n_grow, largest=True)
                mask.view(-1)[new] = True
                # Regrown weights start at zero.
                weight.view(-1)[new] = 0.0
        for (_, layer), mask in zip(self._layers, active):
            layer.weight_orig.mul_(mask)
            set_mask(layer, mask)
        total = sum(int(mask.sum()) for mask in active)
        return {
            "prune_rate": float(rate),
            "removed": int(total_removed),
            "regrown": int(sum(grow)),
            "nonzero": total,
            "density": {name: int(mask.sum()) / mask.numel() for name, mask in zip(names, active)},
        }

    def _shares(self, weights, active, momenta, nnz, sizes):
        """Each layer's normalised share of the regrown weights."""
        if self.redistribution == "momentum":
            stats = [float(m.abs()[mask].mean()) if count else 0.0 for m, mask, count in zip(momenta, active, nnz)]
        elif self.redistribution == "magnitude":
            stats = [float(w.abs()[mask].mean()) if count else 0.0 for w, mask, count in zip(weights, active, nnz)]
        elif self.redistribution == "nonzero":
            stats = [float(count) for count in nnz]
        else:
            stats = [float(size) for size in sizes]
        total = sum(stats)
        if not total > 0 or not math.isfinite(total):
            stats, total = [float(size) for size in sizes], float(sum(sizes))
        return [stat / total for stat in stats]


def _allocate(total, share, free):
    """Whole numbers adding up to ``total``, in proportion to ``share`` within capacities.

    Each layer may take at most 99 % of its free slots (all of them if the
    total does not fit otherwise); what a capped layer cannot take is spread
    equally over the others, as in the reference's
    ``calc_growth_redistribution``. The fractional parts are then rounded so
    that the sum is exact (largest remainders first).
    """
    caps = [math.floor(_GROWTH_CAP * slots) for slots in free]
    if sum(caps) < total:
        caps = list(free)
    wanted = [s * total for s in share]
    capped = [False] * len(share)
    while True:
        open_layers = [i for i in range(len(share)) if not capped[i]]
        if not open_layers:
            break
        excess = total - sum(caps[i] for i in range(len(share)) if capped[i]) - sum(wanted[i] for i in open_layers)
        extra = excess / len(open_layers)
        newly = [i for i in open_layers if wanted[i] + extra > caps[i]]
        if not newly:
            break
        for i in newly:
            capped[i] = True
    quota = [float(caps[i]) if capped[i] else wanted[i] + extra for i in range(len(share))]
    grow = [min(caps[i], max(0, math.floor(q))) for i, q in enumerate(quota)]
    remainder = total - sum(grow)
    order = sorted(range(len(share)), key=lambda i: quota[i] - math.floor(quota[i]), reverse=True)
    while remainder > 0:
        progressed = False
        for i in order:
            if remainder and grow[i] < caps[i]:
                grow[i] += 1
                remainder -= 1
                progressed = True
        if not progressed:
            break
    return grow
