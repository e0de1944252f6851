"""Dynamic data pruning by EL2N ("NLU on Data Diets", Attendu & Corbeil 2023).

EL2N of a sample is ``||softmax(f(x)) - onehot(y)||_2`` under the current
model. Training runs ``warmup_epochs`` on all data; then at the start of
every ``period``-th epoch the whole training set is re-scored and training
continues on the ``keep`` fraction with the largest scores (the hardest);
samples dropped earlier can come back.

skorch builds the training DataLoader once per ``fit``, before the first
epoch, so the subset is changed through a mutable sampler
(:class:`ActiveSubsetSampler`, passed as ``iterator_train__sampler``) that
the callback (:class:`DynamicDataPruning`) updates at epoch start; the
DataLoader re-iterates its sampler every epoch.

The "random" score is the control the paper's gains must be compared with:
the same schedule and subset size, with a random subset drawn at each
re-scoring.
"""

import numbers

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_numpy

from .._core import EpochsSinceFit, SeededSampler, attach_sampler

__all__ = ["ActiveSubsetSampler", "DynamicDataPruning", "el2n_scores"]

# Probability rows from float32 (or half-precision) softmax sum to 1 only
# approximately.
_PROBA_TOL = 1e-3


def el2n_scores(proba, y):
    """EL2N scores ``||p - onehot(y)||_2`` of predicted probabilities.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (finite, non-negative, rows summing
        to one within 1e-3).
    y : array-like of shape (n_samples,)
        True classes as column indices ``0 .. n_classes - 1``.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Scores in ``[0, sqrt(2)]``; larger means harder.

    Examples
    --------
    >>> from weightstats.nn import el2n_scores
    >>> el2n_scores([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]], [0, 0, 0]).round(4)
    array([0.7071, 0.    , 1.4142])
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-d (n_samples, n_classes); got shape {proba.shape}.")
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba contains NaN or infinity.")
    bad = (np.abs(proba.sum(axis=1) - 1.0) > _PROBA_TOL) | np.any(proba < -_PROBA_TOL, axis=1)
    if np.any(bad):
        raise ValueError(
            f"the rows of proba must be probabilities (non-negative, sum to 1 within "
            f"{_PROBA_TOL:g}); row {int(np.argmax(bad))} is {proba[np.argmax(bad)].tolist()[:6]}. "
            "Pass predict_proba or softmax outputs, not logits."
        )
    if y.shape != (proba.shape[0],):
        raise ValueError(
            f"y has shape {y.shape} but proba has {proba.shape[0]} rows; pass one class index "
            "per row."
        )
    if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= proba.shape[1]):
        raise ValueError(
            f"y must hold integer class indices in [0, {proba.shape[1] - 1}]; encode labels first."
        )
    residual = proba.copy()
    residual[np.arange(y.shape[0]), y] -= 1.0
    return np.linalg.norm(residual, axis=1)


class ActiveSubsetSampler(SeededSampler):
    """A sampler over a subset of the rows that can change between epochs.

    Pass it as ``iterator_train__sampler`` together with a callback that
    updates it (:class:`DynamicDataPruning`). Each epoch it yields the
    active indices, shuffled.

    Parameters
    ----------
    shuffle : bool, default=True
        Whether to shuffle the active indices every epoch.

    Attributes
    ----------
    indices_ : ndarray of int or None
        The active row indices; ``None`` until the callback sets them.

    Examples
    --------
    >>> from weightstats.nn import ActiveSubsetSampler
    >>> sampler = ActiveSubsetSampler(shuffle=False)
    >>> sampler.set_active([4, 1, 7])
    >>> list(sampler), len(sampler)
    ([4, 1, 7], 3)
    """

    def __init__(self, shuffle=True):
        super().__init__()
        self.shuffle = shuffle
        self.indices_ = None

    def set_active(self, indices):
        """Set the rows used from the next epoch on.

        Parameters
        ----------
        indices : array-like of int
            Row indices into the training dataset.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            raise ValueError("the active subset is empty; keep at least one row.")
        self.indices_ = indices

    def __iter__(self):
        if self.indices_ is None:
            raise RuntimeError(
                "ActiveSubsetSampler has no active rows; pair it with DynamicDataPruning "
                "(callbacks=[...]) or call set_active()."
            )
        order = self._rng.permutation(self.indices_) if self.shuffle else self.indices_
        return iter(order.tolist())

    def __len__(self):
        return 0 if self.indices_ is None else int(self.indices_.shape[0])


class DynamicDataPruning(Callback):
    """Train on the hardest ``keep`` fraction, re-scored every ``period`` epochs.

    Needs ``iterator_train__sampler=ActiveSubsetSampler()`` on the same net.
    Epochs are counted from the start of each ``fit`` (or ``partial_fit``)
    call.

    Parameters
    ----------
    keep : float in (0, 1], default=0.5
        Fraction of the training rows kept after the warm-up. The measured
        default: on digits keeping 50 % matches full-data accuracy and
        beats a random 50 %, while keeping 30 % of the hardest rows falls
        below random (see the user guide); use a learning-rate decay.
    warmup_epochs : int, default=3
        Epochs on all rows before the first scoring.
    period : int, default=3
        Re-score every ``period`` epochs after the warm-up.
    score : {"el2n", "random"} or callable, default="el2n"
        ``"el2n"`` keeps the largest EL2N; ``"random"`` keeps a random
        subset of the same size (the control); a callable
        ``score(net, dataset_train) -> ndarray`` returns scores (larger is
        kept).

    Attributes
    ----------
    active_fractions_ : list of float
        Fraction of rows trained on in each epoch of the last fit.
    rescored_epochs_ : list of int
        Epochs (0-based, within the last fit) that started with a
        re-scoring.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import ActiveSubsetSampler, DynamicDataPruning, NeuralNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> pruning = DynamicDataPruning(keep=0.5, warmup_epochs=1, period=2)
    >>> net = NeuralNetClassifier(
    ...     module__hidden_units=(32,), max_epochs=4, lr=0.1, random_state=0,
    ...     iterator_train__sampler=ActiveSubsetSampler(), callbacks=[pruning],
    ... ).fit(X / 16, y)
    >>> pruning.active_fractions_
    [1.0, 0.5, 0.5, 0.5]
    >>> net.history[:, "active_fraction"]
    [1.0, 0.5, 0.5, 0.5]
    """

    def __init__(self, keep=0.5, warmup_epochs=3, period=3, score="el2n"):
        self.keep = keep
        self.warmup_epochs = warmup_epochs
        self.period = period
        self.score = score

    def initialize(self):
        """Check the parameters and reset the records.

        Returns
        -------
        self : object
            The callback.
        """
        if not (isinstance(self.keep, numbers.Real) and 0 < self.keep <= 1):
            raise ValueError(f"keep must be a fraction in (0, 1]; got {self.keep!r}.")
        if not (isinstance(self.warmup_epochs, numbers.Integral) and self.warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be an int >= 0; got {self.warmup_epochs!r}.")
        if not (isinstance(self.period, numbers.Integral) and self.period >= 1):
            raise ValueError(f"period must be an int >= 1; got {self.period!r}.")
        if not (callable(self.score) or self.score in ("el2n", "random")):
            raise ValueError(f"score must be 'el2n', 'random' or a callable; got {self.score!r}.")
        self.active_fractions_ = []
        self.rescored_epochs_ = []
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Find the sampler and seed it from the (seeded) torch RNG.

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
        self.sampler_, seed = attach_sampler(net, ActiveSubsetSampler, self)
        self._rng = np.random.default_rng(seed + 1)
        self._epochs = EpochsSinceFit(net)
        self.active_fractions_ = []
        self.rescored_epochs_ = []

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        """Re-score and update the sampler when the schedule says so.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        dataset_train : torch Dataset, default=None
            The training data of this fit.
        **kwargs : dict
            Other arguments skorch passes.
        """
        n_rows = len(dataset_train)
        epoch = self._epochs.epoch(net)
        if epoch < self.warmup_epochs:
            self.sampler_.set_active(np.arange(n_rows))
        elif (epoch - self.warmup_epochs) % self.period == 0:
            n_keep = max(1, int(self.keep * n_rows))
            if self.score == "random":
                active = np.sort(self._rng.choice(n_rows, size=n_keep, replace=False))
            else:
                scores = np.asarray(self._scores(net, dataset_train), dtype=np.float64)
                if scores.shape != (n_rows,) or not np.all(np.isfinite(scores)):
                    raise ValueError(
                        f"the score must give {n_rows} finite values; got shape {scores.shape}."
                    )
                active = np.sort(np.argsort(-scores, kind="stable")[:n_keep])
            self.sampler_.set_active(active)
            self.rescored_epochs_.append(epoch)
        fraction = len(self.sampler_) / n_rows
        self.active_fractions_.append(fraction)
        net.history.record("active_fraction", fraction)

    def _scores(self, net, dataset):
        if callable(self.score):
            return self.score(net, dataset)
        scores = []
        with torch.no_grad():
            for batch in net.get_iterator(dataset, training=False):
                _, yi = unpack_data(batch)
                logits = net.evaluation_step(batch, training=False)
                logits = logits[0] if isinstance(logits, (tuple, list)) else logits
                proba = to_numpy(torch.softmax(logits.float(), dim=1))
                scores.append(el2n_scores(proba, to_numpy(yi).astype(np.int64).reshape(-1)))
        return np.concatenate(scores)
