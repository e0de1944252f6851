"""Task mixtures for imbalanced multi-task training ("Order Matters",
Choi et al., NeurIPS 2023).

Static baseline: sample task ``i`` with probability ``p_i`` throughout, the
usual temperature family ``p_i = n_i^(1/T) / sum_j n_j^(1/T)`` (``T = 1``
proportional, ``T -> inf`` uniform). The paper's proposal: first train on
the high-resource task(s) only, then switch to the mixture ("pre-train,
then fine-tune on the mixture"), with the same total number of steps.

Rows are drawn with replacement by :class:`TaskMixtureSampler` with
per-row probability ``p_task / n_task``; the :class:`PretrainThenMix`
callback sets ``p`` at the start of every epoch, so the phase switch
happens at an epoch boundary (every epoch has the same number of steps, so
a fraction of epochs is a fraction of steps). With ``pretrain_fraction=0``
it is the static baseline.
"""

import numbers
from collections.abc import Mapping

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.utils import to_numpy

from .._core import EpochsSinceFit, SeededSampler, attach_sampler, dataset_column

__all__ = ["PretrainThenMix", "TaskMixtureSampler", "temperature_task_probs"]


def temperature_task_probs(task_sizes, temperature=1.0):
    """Temperature sampling probabilities ``p_i ∝ n_i ** (1 / T)``.

    Parameters
    ----------
    task_sizes : array-like of shape (n_tasks,)
        Number of training rows of each task (non-negative).
    temperature : float, default=1.0
        ``T >= 1`` flattens the distribution (``T = 1`` is proportional
        sampling, ``np.inf`` is uniform over non-empty tasks); ``T < 1``
        sharpens it.

    Returns
    -------
    probs : ndarray of shape (n_tasks,)
        Task sampling probabilities (0 for empty tasks).

    Examples
    --------
    >>> from weightstats.nn import temperature_task_probs
    >>> temperature_task_probs([900, 100])
    array([0.9, 0.1])
    >>> temperature_task_probs([900, 100], temperature=2.0)  # sqrt: 30 : 10
    array([0.75, 0.25])
    """
    sizes = np.asarray(task_sizes, dtype=np.float64).reshape(-1)
    if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise ValueError(f"task_sizes must be finite and non-negative; got {sizes.tolist()}.")
    if not np.any(sizes > 0):
        raise ValueError("every task is empty; at least one task needs rows.")
    if not (isinstance(temperature, numbers.Real) and temperature > 0):
        raise ValueError(f"temperature must be positive; got {temperature!r}.")
    if np.isinf(temperature):
        powered = (sizes > 0).astype(np.float64)
    else:
        # n^(1/T) through logs keeps huge task sizes finite.
        with np.errstate(divide="ignore"):
            log_power = np.where(sizes > 0, np.log(sizes) / temperature, -np.inf)
        powered = np.exp(log_power - log_power.max())
    return powered / powered.sum()


class TaskMixtureSampler(SeededSampler):
    """Draws rows with replacement so that task ``i`` has probability ``p_i``.

    Row ``r`` of task ``t`` is drawn with probability ``p_t / n_t``. Pass it
    as ``iterator_train__sampler``; :class:`PretrainThenMix` gives it the
    task ids and changes ``p`` between epochs. It can also be used alone
    after :meth:`set_tasks` and :meth:`set_task_probs`.

    Parameters
    ----------
    num_samples : int or None, default=None
        Rows per epoch; ``None`` uses the number of training rows.

    Attributes
    ----------
    tasks_ : ndarray of int or None
        Task id of every training row.
    task_probs_ : ndarray of float or None
        Current task probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import TaskMixtureSampler
    >>> sampler = TaskMixtureSampler(num_samples=1000)
    >>> sampler.set_tasks([0] * 90 + [1] * 10)
    >>> sampler.set_task_probs([0.5, 0.5])
    >>> sampler.seed(0)
    >>> rows = np.array(list(sampler))
    >>> round(float(np.mean(rows >= 90)), 2)  # about half the draws from the small task
    0.53
    """

    def __init__(self, num_samples=None):
        super().__init__()
        self.num_samples = num_samples
        self.tasks_ = None
        self.task_probs_ = None

    def set_tasks(self, tasks):
        """Set the task id (0, 1, ...) of every training row.

        Parameters
        ----------
        tasks : array-like of int of shape (n_rows,)
            Task ids.
        """
        tasks = np.asarray(to_numpy(tasks) if isinstance(tasks, torch.Tensor) else tasks)
        tasks = tasks.reshape(-1)
        if tasks.size == 0 or tasks.dtype.kind not in "iu" or tasks.min() < 0:
            raise ValueError("tasks must be non-negative integer task ids, one per row.")
        self.tasks_ = tasks.astype(np.int64)

    def set_task_probs(self, probs):
        """Set the task probabilities used from the next epoch on.

        Parameters
        ----------
        probs : array-like of shape (n_tasks,)
            Non-negative, summing to a positive number (normalised here).
        """
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
            raise ValueError(f"task probabilities must be non-negative; got {probs.tolist()}.")
        self.task_probs_ = probs / probs.sum()

    def row_probs(self):
        """Probability of drawing each row.

        Returns
        -------
        probs : ndarray of shape (n_rows,)
            ``p_task / n_task`` of each row.
        """
        if self.tasks_ is None or self.task_probs_ is None:
            raise RuntimeError(
                "TaskMixtureSampler needs task ids and probabilities; pair it with "
                "PretrainThenMix (callbacks=[...]) or call set_tasks() and set_task_probs()."
            )
        counts = np.bincount(self.tasks_, minlength=self.task_probs_.size)
        if counts.size > self.task_probs_.size:
            raise ValueError(
                f"rows have task ids up to {counts.size - 1} but only "
                f"{self.task_probs_.size} task probabilities were given."
            )
        empty = (counts == 0) & (self.task_probs_ > 0)
        if np.any(empty):
            empty = np.flatnonzero(empty).tolist()
            raise ValueError(f"tasks {empty} have probability but no rows.")
        per_row = self.task_probs_ / np.maximum(counts, 1)
        return per_row[self.tasks_]

    def __iter__(self):
        probs = self.row_probs()
        rows = self._rng.choice(probs.size, size=len(self), replace=True, p=probs)
        return iter(rows.tolist())

    def __len__(self):
        if self.num_samples is not None:
            return int(self.num_samples)
        return 0 if self.tasks_ is None else int(self.tasks_.size)


class PretrainThenMix(Callback):
    """Phase 1 on the high-resource task(s), then the task mixture.

    Needs ``iterator_train__sampler=TaskMixtureSampler()`` and task ids in
    the training input, passed as a dict ``X = {"X": features, "task": ids}``
    (skorch hands dict entries to ``forward`` as keyword arguments, e.g.
    :class:`MultiHeadMLP`).

    Parameters
    ----------
    pretrain_tasks : int or sequence of int, default=0
        The high-resource task(s) trained alone first.
    pretrain_fraction : float in [0, 1), default=0.5
        Fraction of the epochs of each ``fit`` / ``partial_fit`` call spent
        in phase 1 (rounded to whole epochs; ``partial_fit(..., epochs=6)``
        counts 6 whatever ``max_epochs``); 0 gives the static mixture
        baseline.
    mixture : array-like of shape (n_tasks,) or None, default=None
        Phase-2 task probabilities; ``None`` uses
        :func:`temperature_task_probs` of the task sizes.
    temperature : float, default=1.0
        Temperature when ``mixture`` is None.
    task_key : str, default="task"
        Key of the task ids in the input dict.

    Attributes
    ----------
    phase_probs_ : dict
        ``{"pretrain": p1, "mixture": p2}``, the probabilities of both
        phases (phase 1 is the mixture restricted to ``pretrain_tasks``).
    switch_epoch_ : int
        First epoch (0-based, within the last ``fit`` / ``partial_fit``
        call) of phase 2.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import (MultiHeadMLP, NeuralNetClassifier, PretrainThenMix,
    ...                             TaskMixtureSampler)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((220, 4)).astype("float32")
    >>> task = np.repeat([0, 1], [200, 20])
    >>> y = (X[:, 0] > 0).astype(int)
    >>> schedule = PretrainThenMix(pretrain_tasks=0, pretrain_fraction=0.5, mixture=[0.7, 0.3])
    >>> net = NeuralNetClassifier(
    ...     MultiHeadMLP, module__n_tasks=2, module__hidden_units=8, max_epochs=4,
    ...     iterator_train__sampler=TaskMixtureSampler(), callbacks=[schedule], random_state=0,
    ... ).fit({"X": X, "task": task}, y)
    >>> net.history[:, "task_probs"]
    [[1.0, 0.0], [1.0, 0.0], [0.7, 0.3], [0.7, 0.3]]
    """

    def __init__(
        self,
        pretrain_tasks=0,
        pretrain_fraction=0.5,
        mixture=None,
        temperature=1.0,
        task_key="task",
    ):
        self.pretrain_tasks = pretrain_tasks
        self.pretrain_fraction = pretrain_fraction
        self.mixture = mixture
        self.temperature = temperature
        self.task_key = task_key

    def initialize(self):
        """Check the parameters.

        Returns
        -------
        self : object
            The callback.
        """
        fraction = self.pretrain_fraction
        if not (isinstance(fraction, numbers.Real) and 0 <= fraction < 1):
            raise ValueError(
                f"pretrain_fraction must be in [0, 1); got {self.pretrain_fraction!r}."
            )
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Find the sampler and fix the switch epoch of this training call.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X : dict, default=None
            Training inputs, with the task ids under ``task_key``.
        y : target data, default=None
            Training targets.
        **kwargs : dict
            Other arguments skorch passes.
        """
        self._sampler, _ = attach_sampler(net, TaskMixtureSampler, self)
        if not isinstance(X, Mapping) or self.task_key not in X:
            raise ValueError(
                f"PretrainThenMix needs the task ids in the input: fit on a dict "
                f"{{'X': features, {self.task_key!r}: task ids}}."
            )
        self._epochs = EpochsSinceFit(net)
        self.switch_epoch_ = int(round(self.pretrain_fraction * self._epochs.n_epochs))
        self._tasks_set = False

    def _set_phases(self, dataset_train):
        # The task ids of the rows the training loader draws from: with a
        # validation split, those of the training part only.
        self._sampler.set_tasks(dataset_column(dataset_train, self.task_key))
        sizes = np.bincount(self._sampler.tasks_)
        if self.mixture is None:
            mixture = temperature_task_probs(sizes, self.temperature)
        else:
            mixture = np.asarray(self.mixture, dtype=np.float64).reshape(-1)
            if mixture.size < sizes.size or np.any(mixture < 0) or mixture.sum() <= 0:
                raise ValueError(
                    f"mixture must give a non-negative probability to each of the {sizes.size} "
                    f"tasks; got {self.mixture!r}."
                )
            mixture = mixture / mixture.sum()
        pretrain = np.atleast_1d(np.asarray(self.pretrain_tasks, dtype=np.int64))
        if pretrain.size == 0 or pretrain.min() < 0 or pretrain.max() >= mixture.size:
            raise ValueError(f"pretrain_tasks must be task ids below {mixture.size}.")
        phase1 = np.zeros_like(mixture)
        phase1[pretrain] = np.where(mixture[pretrain] > 0, mixture[pretrain], 1.0)
        self.phase_probs_ = {"pretrain": phase1 / phase1.sum(), "mixture": mixture}
        self._tasks_set = True

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        """Set the probabilities of the current phase.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        dataset_train : torch Dataset, default=None
            The training data of this call (after any validation split).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if not self._tasks_set:
            self._set_phases(dataset_train)
        epoch = self._epochs.epoch(net)
        phase = "pretrain" if epoch < self.switch_epoch_ else "mixture"
        probs = self.phase_probs_[phase]
        self._sampler.set_task_probs(probs)
        net.history.record("task_probs", [round(float(p), 12) for p in probs])
