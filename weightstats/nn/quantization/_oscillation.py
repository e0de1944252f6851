"""Oscillation of quantised weights during quantisation-aware training.

The statistic of nbasyl/OFQ's ``TrackOscillation`` (after Nagel et al.,
ICML 2022), kept for every quantised tensor of the model. After each
optimiser step the integer codes ``w_int`` are compared with those of the
previous step: a weight *switches* when its code changes, and *oscillates*
when it switches in the direction opposite to its previous switch. The
oscillation frequency is the exponential moving average, momentum ``m``, of
the oscillation events: ``f <- m [oscillated] + (1 - m) f``.
"""

import numbers

import torch
from skorch.callbacks import Callback

from ._quantizers import quantized_weights

__all__ = ["TrackOscillation"]


class _Tracker:
    """The reference statistic for one tensor."""

    def __init__(self, codes, momentum):
        self.momentum = momentum
        self.previous = codes
        self.direction = torch.zeros_like(codes)
        self.frequency = torch.zeros_like(codes)
        self.events = 0.0
        self.steps = 0

    def update(self, codes):
        if codes.shape != self.previous.shape:
            raise ValueError(
                f"a quantised tensor changed shape from {tuple(self.previous.shape)} to "
                f"{tuple(codes.shape)} during training."
            )
        change = torch.round(self.previous - codes)
        direction = torch.sign(change)
        switched = change != 0
        oscillated = (self.direction * direction) == -1
        self.frequency = self.momentum * oscillated + (1 - self.momentum) * self.frequency
        self.direction = torch.where(switched, direction, self.direction)
        self.previous = codes
        self.events += float(oscillated.sum())
        self.steps += 1


class TrackOscillation(Callback):
    """Record how often the quantised weights oscillate, per layer.

    A skorch callback for quantisation-aware training (a model prepared by
    :func:`prepare_qat`, or holding :class:`QKReparamAttention`); with a
    plain training loop call :meth:`start` once and :meth:`update` after
    every ``optimizer.step()``.

    At the end of every epoch it records in the net's history:

    * ``oscillation``: the oscillation frequency (EMA of oscillation
      events per step, momentum ``momentum``) averaged over all quantised
      weights, and ``oscillation_<tensor>`` for each quantised tensor
      (e.g. ``oscillation_body.2.weight``);
    * ``oscillation_rate``: the share of weight updates in the epoch that
      were oscillations (no smoothing), and ``oscillation_rate_<tensor>``.

    The statistics carry over ``partial_fit`` calls and restart with ``fit``.

    Parameters
    ----------
    momentum : float in (0, 1], default=0.01
        EMA momentum (the reference value).

    Attributes
    ----------
    frequencies_ : dict of str to torch.Tensor
        The current EMA frequency of every weight, per quantised tensor.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, TrackOscillation, prepare_qat
    >>> _ = torch.manual_seed(0)
    >>> model = prepare_qat(MLP(4, 2, hidden_units=(8, 8)), bits=2)
    >>> tracker = TrackOscillation().start(model)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    >>> X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> for _ in range(20):
    ...     optimizer.zero_grad()
    ...     torch.nn.functional.cross_entropy(model(X), y).backward()
    ...     optimizer.step()
    ...     tracker.update()
    >>> sorted(tracker.summary())
    ['body.2.weight']
    >>> 0.0 <= tracker.summary()["body.2.weight"] < 1.0
    True
    """

    def __init__(self, momentum=0.01):
        self.momentum = momentum

    def initialize(self):
        """Check the parameters and forget earlier statistics.

        Returns
        -------
        self : object
            The callback.
        """
        if (
            isinstance(self.momentum, bool)
            or not isinstance(self.momentum, numbers.Real)
            or not 0 < self.momentum <= 1
        ):
            raise ValueError(f"momentum must be in (0, 1]; got {self.momentum!r}.")
        self._model = None
        self._trackers = {}
        self.frequencies_ = {}
        return self

    # ------------------------------------------------------ plain torch
    def start(self, model):
        """Begin tracking the quantised tensors of ``model`` (their current codes).

        Parameters
        ----------
        model : torch.nn.Module
            A model with quantised weights.

        Returns
        -------
        self : TrackOscillation
            The tracker.
        """
        self.initialize()
        self._attach(model)
        return self

    def _attach(self, model):
        tensors = quantized_weights(model)
        if not tensors:
            raise ValueError(
                "the model has no quantised weights to track; register quantisers with "
                "prepare_qat(model) (or use QKReparamAttention) first."
            )
        self._model = model
        self._tensors = tensors
        self._trackers = {
            tensor.name: _Tracker(tensor.integer_weights(), float(self.momentum))
            for tensor in tensors
        }
        self._sync()

    def update(self):
        """Compare the current integer codes with the previous ones (call after each step)."""
        if getattr(self, "_model", None) is None:
            raise RuntimeError("call start(model) before update().")
        for tensor in self._tensors:
            self._trackers[tensor.name].update(tensor.integer_weights())
        self._sync()

    def _sync(self):
        self.frequencies_ = {name: tracker.frequency for name, tracker in self._trackers.items()}

    def summary(self):
        """The mean EMA oscillation frequency of each quantised tensor.

        Returns
        -------
        frequencies : dict of str to float
            Per tensor, the frequency averaged over its weights.
        """
        return {name: float(freq.float().mean()) for name, freq in self.frequencies_.items()}

    def overall(self):
        """The EMA oscillation frequency averaged over all quantised weights.

        Returns
        -------
        frequency : float
            The weighted average of :meth:`summary`.
        """
        total = sum(freq.numel() for freq in self.frequencies_.values())
        return float(sum(freq.float().sum() for freq in self.frequencies_.values()) / max(total, 1))

    def rates(self, reset=True):
        """The share of weight updates that were oscillations, since the last reset.

        Unlike the EMA frequency this has no memory: it is the oscillation
        rate of the steps in between (an epoch, for the callback).

        Parameters
        ----------
        reset : bool, default=True
            Start counting afresh.

        Returns
        -------
        rates : dict of str to float
            Per quantised tensor.
        overall : float
            Over all quantised weights.
        """
        rates, events, updates = {}, 0.0, 0
        for name, tracker in self._trackers.items():
            n = tracker.previous.numel() * tracker.steps
            rates[name] = tracker.events / n if n else 0.0
            events += tracker.events
            updates += n
            if reset:
                tracker.events, tracker.steps = 0.0, 0
        return rates, (events / updates if updates else 0.0)

    def __getstate__(self):
        # The link to the model is run-time state (rebuilt when training
        # resumes); the frequencies stay.
        state = dict(self.__dict__)
        for key in ("_model", "_tensors", "_trackers"):
            state.pop(key, None)
        return state

    # ------------------------------------------------------------ skorch
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Attach to the net's module (keeping the statistics of an earlier partial_fit).

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X, y : data, default=None
            Training data (unused).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if getattr(self, "_model", None) is not net.module_:
            self._attach(net.module_)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Update the statistics after each training step.

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
        if training:
            self.update()

    def on_epoch_end(self, net, **kwargs):
        """Record the oscillation statistics of the epoch in the history.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes.
        """
        rates, overall_rate = self.rates()
        net.history.record("oscillation", self.overall())
        net.history.record("oscillation_rate", overall_rate)
        for name, value in self.summary().items():
            net.history.record(f"oscillation_{name}", value)
            net.history.record(f"oscillation_rate_{name}", rates[name])
