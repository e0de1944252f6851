"""Confidence-guided annealing (CGA; Liu, Liu & Cheng, ICML 2023).

After quantisation-aware training, a few more epochs with a decaying
learning rate in which every quantised weight that is *confident* (its
pre-rounding value ``b`` lies farther than ``boundary_range`` from every
rounding boundary between the levels in use) is frozen: its gradient is
set to zero before the optimiser step and its value is restored after it
(so momentum and weight decay cannot move it either). Only the weights
within ``boundary_range`` of a boundary, the ones that oscillate, keep
learning. The rule of nbasyl/OFQ ``cga.py`` (``freeze_outside_boundary_weight_idx``
and the training step around it): boundary ``i + 1/2`` counts for integer
``i`` from the smallest to below the largest code of the tensor, and
``b - i`` in ``[0.5 - BR, 0.5 + BR]`` (inclusive) is "near".

The query-key products of :class:`QKReparamAttention` are not parameters:
there the gradient of the confident entries of the product is set to zero
in the forward pass (the reference intends this, but its straight-through
form lets the gradient through unchanged), so ``W_q`` and ``W_k`` learn
from the entries near a boundary only.
"""

import numbers

import torch
from skorch.callbacks import Callback

from .._core import EpochsSinceFit
from ._quantizers import quantized_weights

__all__ = ["ConfidenceGuidedAnnealing", "confident_weights"]


def _check_boundary_range(br):
    if isinstance(br, bool) or not isinstance(br, numbers.Real) or not 0 < br < 0.5:
        raise ValueError(f"boundary_range must be in (0, 0.5); got {br!r}.")
    return float(br)


def confident_weights(pre_round, boundary_range=0.005):
    """Which weights are confident: farther than ``boundary_range`` from every boundary.

    Parameters
    ----------
    pre_round : torch.Tensor
        Pre-rounding values of a tensor (its codes are ``round(pre_round)``,
        boundaries at half-integers).
    boundary_range : float in (0, 0.5), default=0.005
        Half-width BR of the band around each boundary.

    Returns
    -------
    confident : torch.Tensor of bool
        True where the weight is frozen by CGA.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import confident_weights
    >>> b = torch.tensor([-1.0, -0.502, 0.0, 0.497, 0.6, 1.0])  # codes -1 .. 1
    >>> confident_weights(b, 0.005)
    tensor([ True, False,  True, False,  True,  True])
    """
    _check_boundary_range(boundary_range)
    with torch.no_grad():
        codes = torch.round(pre_round)
        lowest, highest = codes.min(), codes.max()
        below = torch.floor(pre_round)
        offset = pre_round - below
        near = (
            (offset >= 0.5 - boundary_range)
            & (offset <= 0.5 + boundary_range)
            & (below >= lowest)
            & (below < highest)
        )
        return ~near


class ConfidenceGuidedAnnealing(Callback):
    """Freeze the confident quantised weights while the learning rate anneals.

    A skorch callback for the end of quantisation-aware training. It acts in
    the last ``epochs`` epochs of each training call (all of a
    ``partial_fit(X, y, epochs=...)`` that is shorter): before every
    optimiser step the gradients of the confident weights (see
    :func:`confident_weights`) are zeroed, after it their values are
    restored, and with ``anneal_lr`` the learning rate follows a cosine from
    its current value towards 0 over those epochs (torch's
    ``CosineAnnealingLR``, stepped per epoch). It records ``cga_frozen``,
    the share of quantised weights frozen, in the history.

    With a plain training loop, call :meth:`step` instead of
    ``optimizer.step()`` during the annealing epochs (and schedule the
    learning rate yourself).

    Parameters
    ----------
    boundary_range : float in (0, 0.5), default=0.005
        Half-width BR of the band around each rounding boundary in which
        weights keep learning (the reference default; 0.005 or 0.007 work
        best on ImageNet).
    epochs : int >= 1, default=15
        Annealing epochs (the reference fine-tunes 15).
    anneal_lr : bool, default=True
        Cosine-anneal the learning rate over the annealing epochs; False
        leaves it to the optimiser or another scheduler.

    Attributes
    ----------
    frozen_fraction_ : float
        Share of quantised weights frozen at the last step.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, ConfidenceGuidedAnnealing, prepare_qat
    >>> _ = torch.manual_seed(0)
    >>> model = prepare_qat(MLP(4, 2, hidden_units=(8, 8)), bits=2)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> cga = ConfidenceGuidedAnnealing(boundary_range=0.005)
    >>> X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> before = model.body[2].parametrizations.weight.original.detach().clone()
    >>> optimizer.zero_grad()
    >>> torch.nn.functional.cross_entropy(model(X), y).backward()
    >>> cga.step(model, optimizer)
    >>> after = model.body[2].parametrizations.weight.original.detach()
    >>> changed = (after != before).float().mean().item()
    >>> changed <= 1 - cga.frozen_fraction_
    True
    """

    def __init__(self, boundary_range=0.005, epochs=15, anneal_lr=True):
        self.boundary_range = boundary_range
        self.epochs = epochs
        self.anneal_lr = anneal_lr

    def _check_params(self):
        _check_boundary_range(self.boundary_range)
        epochs = self.epochs
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1; got {self.epochs!r}.")

    def initialize(self):
        """Check the parameters.

        Returns
        -------
        self : object
            The callback.
        """
        self._check_params()
        self.frozen_fraction_ = 0.0
        return self

    # ------------------------------------------------------ plain torch
    def begin(self, model):
        """Start annealing ``model``: mask the confident query-key product entries.

        Called by :meth:`step` (and by the callback) when annealing starts.

        Parameters
        ----------
        model : torch.nn.Module
            A model with quantised weights.

        Returns
        -------
        tensors : list of QuantizedTensor
            The quantised tensors of the model.
        """
        self._check_params()
        tensors = quantized_weights(model)
        if not tensors:
            raise ValueError(
                "the model has no quantised weights to anneal; register quantisers with "
                "prepare_qat(model) (or use QKReparamAttention) first."
            )
        for tensor in tensors:
            if tensor.parameter is None and hasattr(tensor.owner, "cga_boundary_range"):
                tensor.owner.cga_boundary_range = float(self.boundary_range)
        self._model, self._tensors = model, tensors
        return tensors

    def end(self, model):
        """Stop masking the query-key products of ``model``.

        Parameters
        ----------
        model : torch.nn.Module
            The annealed model.
        """
        for module in model.modules():
            if hasattr(module, "cga_boundary_range"):
                module.cga_boundary_range = None
        self._model = None

    def freeze(self, model=None):
        """Zero the gradients of the confident weights; return what :meth:`restore` needs.

        Parameters
        ----------
        model : torch.nn.Module or None, default=None
            The model (None: the one of the last :meth:`begin`).

        Returns
        -------
        frozen : list of (parameter, mask, value)
            The frozen entries of every quantised weight and their values.
        """
        if model is not None and getattr(self, "_model", None) is not model:
            self.begin(model)
        elif getattr(self, "_model", None) is None:
            raise RuntimeError("call begin(model) or pass the model.")
        frozen, n_frozen, n_total = [], 0, 0
        for tensor in self._tensors:
            mask = confident_weights(tensor.pre_round(), float(self.boundary_range))
            n_frozen += int(mask.sum())
            n_total += mask.numel()
            param = tensor.parameter
            if param is None:
                continue
            if param.grad is not None:
                param.grad.masked_fill_(mask, 0.0)
            frozen.append((param, mask, param.detach().clone()))
        self.frozen_fraction_ = n_frozen / max(n_total, 1)
        return frozen

    @staticmethod
    def restore(frozen):
        """Put the frozen weights back to their values before the step.

        Parameters
        ----------
        frozen : list
            What :meth:`freeze` returned.
        """
        with torch.no_grad():
            for param, mask, value in frozen:
                param.copy_(torch.where(mask, value, param))

    def step(self, model, optimizer):
        """One annealing step: freeze, ``optimizer.step()``, restore.

        Call after ``loss.backward()`` in place of ``optimizer.step()``.

        Parameters
        ----------
        model : torch.nn.Module
            The model being trained.
        optimizer : torch.optim.Optimizer
            Its optimiser.
        """
        frozen = self.freeze(model)
        optimizer.step()
        self.restore(frozen)

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("_model", "_tensors", "_frozen", "_scheduler", "_epochs"):
            state.pop(key, None)
        return state

    # ------------------------------------------------------------ skorch
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Find the annealing epochs of this training call.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X, y : data, default=None
            Training data (unused).
        **kwargs : dict
            Other arguments skorch passes.
        """
        self._check_params()
        self._epochs = EpochsSinceFit(net)
        self._first = max(0, self._epochs.n_epochs - int(self.epochs))
        self._active = False
        self._frozen = None
        self._scheduler = None
        self._base_lrs = [group["lr"] for group in net.optimizer_.param_groups]
        self._fractions = []

    def on_epoch_begin(self, net, **kwargs):
        """Start annealing at the first annealing epoch.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if not self._active and self._epochs.epoch(net) >= self._first:
            self._active = True
            self.begin(net.module_)
            if self.anneal_lr:
                self._scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                    net.optimizer_, T_max=self._epochs.n_epochs - self._first
                )
        self._fractions = []

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        """Zero the gradients of the confident weights.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        named_parameters : iterable
            The parameters (unused; the quantised weights are found in the module).
        batch : tuple, default=None
            The batch.
        training : bool, default=False
            Whether it is a training step.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._active and training:
            self._frozen = self.freeze()
            self._fractions.append(self.frozen_fraction_)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Restore the frozen weights after the optimiser step.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        batch : tuple, default=None
            The batch.
        training : bool, default=False
            Whether it was a training batch.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._active and training and self._frozen is not None:
            self.restore(self._frozen)
            self._frozen = None

    def on_epoch_end(self, net, **kwargs):
        """Record the frozen share and step the learning-rate schedule.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes.
        """
        fraction = sum(self._fractions) / len(self._fractions) if self._fractions else 0.0
        net.history.record("cga_frozen", fraction if self._active else 0.0)
        if self._scheduler is not None:
            self._scheduler.step()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Stop masking and give the optimiser its learning rates back.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X, y : data, default=None
            Training data (unused).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._active:
            self.end(net.module_)
        for group, lr in zip(net.optimizer_.param_groups, self._base_lrs, strict=True):
            group["lr"] = lr
            group.pop("initial_lr", None)
        self._active = False
        self._scheduler = None
