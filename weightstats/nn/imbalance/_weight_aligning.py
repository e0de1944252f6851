"""Weight Aligning for class-incremental learning (Zhao et al., CVPR 2020).

After learning new classes with ``(1 - lambda) CE + lambda KD`` (KD on the
old classes' logits against the model before the task, temperature 2,
``lambda = n_old / n_total``), the classifier rows of the new classes are
rescaled by ``gamma = mean ||w_old|| / mean ||w_new||`` so that old and new
classes compete on equal norms; biases are left alone. Reference: PyCIL
(``models/wa.py``, ``utils/inc_net.py: weight_align``); PyCIL's KD is the
soft-target cross-entropy without the ``T^2`` factor, and the current PyCIL
uses ``CE + 2 KD``, the paper-era code ``(1 - lambda) CE + lambda KD``
(``kd_weight`` chooses). The paper also clips the classifier weights to be
non-negative after every step (``clip_nonnegative``); PyCIL does not.

WA only helps when the new classes' norms exceed the old ones (gamma < 1);
in small networks that bias appears with weight decay and/or the
non-negative clipping, otherwise gamma > 1 and aligning hurts (see the user
guide).
"""

import copy
import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.utils import to_numpy, to_tensor

from .._core import NeuralNetClassifier, batch_features, fill_net_doc, first_output
from ..layers import MLP, get_head

__all__ = ["WeightAligningClassifier", "weight_aligning"]


def weight_aligning(weight, new_rows, old_rows=None):
    """Rescale the new classes' rows to the old classes' mean norm.

    ``gamma = mean_{c old} ||w_c|| / mean_{c new} ||w_c||`` and
    ``w_c <- gamma w_c`` for the new classes; other rows are unchanged.

    Parameters
    ----------
    weight : ndarray or torch.Tensor of shape (n_classes, n_features)
        Classifier weight, one row per class.
    new_rows : array-like of int or bool
        Rows (indices or a mask) of the new classes.
    old_rows : array-like of int or bool or None, default=None
        Rows of the old classes; ``None`` means all other rows.

    Returns
    -------
    aligned : ndarray or torch.Tensor
        A rescaled copy of ``weight`` (same type, dtype and device).
    gamma : float
        The scale applied to the new rows.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import weight_aligning
    >>> W = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 20.0]])  # norms 5, 1, 20
    >>> aligned, gamma = weight_aligning(W, new_rows=[2])
    >>> gamma  # mean(5, 1) / 20
    0.15
    >>> aligned[2]
    array([0., 3.])
    """
    is_tensor = isinstance(weight, torch.Tensor)
    values = to_numpy(weight).astype(np.float64) if is_tensor else np.asarray(weight, np.float64)
    if values.ndim != 2:
        raise ValueError(f"weight must be 2-d (classes x features); got shape {values.shape}.")
    n_rows = values.shape[0]
    new = _row_mask(new_rows, n_rows, "new_rows")
    old = ~new if old_rows is None else _row_mask(old_rows, n_rows, "old_rows")
    if np.any(new & old):
        raise ValueError("new_rows and old_rows overlap.")
    if not new.any() or not old.any():
        raise ValueError("weight aligning needs at least one old and one new class.")
    norms = np.linalg.norm(values, axis=1)
    mean_new = norms[new].mean()
    if mean_new == 0:
        raise ValueError("the new classes' rows are all zero; there is nothing to align.")
    gamma = float(norms[old].mean() / mean_new)
    if is_tensor:
        aligned = weight.detach().clone()
        aligned[torch.as_tensor(new, device=weight.device)] *= gamma
    else:
        aligned = np.array(weight, copy=True)
        aligned[new] = aligned[new] * gamma
    return aligned, gamma


def _row_mask(rows, n_rows, name):
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n_rows,):
            raise ValueError(f"{name} as a mask needs {n_rows} entries; got {rows.shape}.")
        return rows.copy()
    rows = rows.astype(np.int64).reshape(-1)
    if rows.size and (rows.min() < -n_rows or rows.max() >= n_rows):
        raise ValueError(f"{name} has indices outside [0, {n_rows - 1}].")
    mask = np.zeros(n_rows, dtype=bool)
    mask[rows] = True
    return mask


@fill_net_doc
class WeightAligningClassifier(NeuralNetClassifier):
    """Class-incremental learning with knowledge distillation and Weight Aligning.

    ``fit`` learns the first task. Each later :meth:`partial_fit` call with
    new classes is one incremental task: the model before the call becomes
    a frozen teacher, the new classes' rows of ``module_.head`` are
    re-initialised, the optimizer restarts (as in PyCIL), training minimises
    ``(1 - lambda) CE + lambda KD`` with ``lambda = n_old / n_total``, and
    afterwards the new rows are rescaled by :func:`weight_aligning`.
    Classes not learned yet get probability 0. Pass exemplars of the old
    classes (a small memory) together with the new data, as in the paper.

    All classes must be known up front: give them as ``classes=`` (to the
    constructor, or to the first ``partial_fit``).

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network; its classifier layer must be ``module.head``.
    kd_temperature : float, default=2.0
        Distillation temperature ``T``.
    kd_weight : "auto" or float in [0, 1], default="auto"
        ``lambda``; "auto" is ``n_old / n_total`` (classes).
    align : bool, default=True
        Whether to rescale the new rows after each incremental task.
    clip_nonnegative : bool, default=False
        Clip ``module_.head.weight`` at 0 after every optimizer step (the
        paper's setting).
    **kwargs : dict
        Every parameter of :class:`NeuralNetClassifier` (``classes``,
        ``lr``, ``max_epochs``, ``optimizer__weight_decay``, ...).

    Attributes
    ----------
    {net_attributes}
    classes_ : ndarray of shape (n_classes,)
        All class labels.
    learned_classes_ : ndarray
        Labels learned so far, in the order they arrived.
    task_classes_ : list of ndarray
        Labels first learned in each task.
    gammas_ : list of float
        The aligning factor of each incremental task (empty until the
        second task).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import WeightAligningClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> old, new = y < 5, y >= 5
    >>> net = WeightAligningClassifier(
    ...     classes=np.arange(10), module__hidden_units=(64,), max_epochs=5, lr=0.1,
    ...     optimizer__weight_decay=5e-3, random_state=0,
    ... ).fit(X[old], y[old])
    >>> net.learned_classes_
    array([0, 1, 2, 3, 4])
    >>> memory = np.flatnonzero(old)[::50]  # a few exemplars of the old classes
    >>> net = net.partial_fit(np.vstack([X[new], X[memory]]), np.concatenate([y[new], y[memory]]))
    >>> net.task_classes_[1], len(net.gammas_)
    (array([5, 6, 7, 8, 9]), 1)
    """

    _extra_constraints = {
        **NeuralNetClassifier._extra_constraints,
        "kd_temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "kd_weight": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="both")],
        "align": ["boolean"],
        "clip_nonnegative": ["boolean"],
    }

    def __init__(
        self,
        module=MLP,
        *,
        kd_temperature=2.0,
        kd_weight="auto",
        align=True,
        clip_nonnegative=False,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.kd_temperature = kd_temperature
        self.kd_weight = kd_weight
        self.align = align
        self.clip_nonnegative = clip_nonnegative

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Learn the first task from scratch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs of the first task.
        y : array-like of shape (n_samples,)
            Labels (a subset of ``classes``).
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights in the loss.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The trained net.
        """
        self.__dict__.pop("learned_classes_", None)
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Learn an incremental task (or continue the current one).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            New-task data plus exemplars of old classes.
        y : array-like of shape (n_samples,)
            Labels.
        classes : array-like or None, default=None
            All classes, on the first call only.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights in the loss.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The trained net.
        """
        if not self.initialized_:
            self.__dict__.pop("learned_classes_", None)
        return super().partial_fit(
            X, y, classes=classes, sample_weight=sample_weight, **fit_params
        )

    def _train(self, X, y, **fit_params):
        if y is None:
            raise ValueError(f"{type(self).__name__} needs y to know which classes are new.")
        present = np.unique(np.asarray(to_numpy(y)).reshape(-1))
        n_classes = len(self.classes_)
        first = not hasattr(self, "learned_classes_")
        seen = np.zeros(n_classes, dtype=bool)
        if not first:
            seen[self._encode_target(self.learned_classes_)] = True
        new = np.zeros(n_classes, dtype=bool)
        new[present] = True
        new &= ~seen
        incremental = not first and new.any()
        if first:
            self.learned_classes_ = self.classes_[present]
            self.task_classes_ = [self.classes_[present]]
            self.gammas_ = []
            self._seen_ = new
        elif new.any():
            self.learned_classes_ = np.concatenate([self.learned_classes_, self.classes_[new]])
            self.task_classes_.append(self.classes_[new])
            self._seen_ = seen | new

        if not incremental:
            self._kd_ = None
            super()._train(X, y, **fit_params)
            return

        teacher = copy.deepcopy(self.module_).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        n_old, n_new = int(seen.sum()), int(new.sum())
        lam = n_old / (n_old + n_new) if self.kd_weight == "auto" else float(self.kd_weight)
        head = get_head(self.module_)
        self._reset_rows(head, new)
        self._initialize_optimizer()
        # In a plain dict so that skorch does not register the teacher.
        self._kd_ = {"teacher": teacher, "old": torch.as_tensor(seen), "lambda": lam}
        try:
            super()._train(X, y, **fit_params)
        finally:
            self._kd_ = None
        if self.align:
            with torch.no_grad():
                aligned, gamma = weight_aligning(head.weight, new_rows=new, old_rows=seen)
                head.weight.copy_(aligned)
            self.gammas_.append(gamma)

    @staticmethod
    def _reset_rows(head, rows):
        # nn.Linear's default initialisation, for the new classes only.
        with torch.no_grad():
            fan_in = head.weight[0].numel()
            bound = 1.0 / np.sqrt(fan_in)
            index = torch.as_tensor(np.flatnonzero(rows), device=head.weight.device)
            head.weight[index] = torch.empty_like(head.weight[index]).uniform_(-bound, bound)
            if getattr(head, "bias", None) is not None:
                head.bias[index] = torch.empty_like(head.bias[index]).uniform_(-bound, bound)

    def _mask(self, logits):
        seen = getattr(self, "_seen_", None)
        if seen is None:
            return logits
        unseen = torch.as_tensor(~seen, device=logits.device)
        return logits.masked_fill(unseen, float("-inf"))

    def get_sample_losses(self, y_pred, y_true, X=None, training=False):
        """``(1 - lambda) CE + lambda KD`` on the classes learned so far.

        Parameters
        ----------
        y_pred : tensor or tuple of tensors
            Module output.
        y_true : tensor
            Encoded labels.
        X : tensor or dict, default=None
            The batch inputs (the teacher sees them too).
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        losses : tensor of shape (batch_size,)
            Per-row losses.
        """
        logits = self._mask(first_output(y_pred))
        ce = super().get_sample_losses(logits, y_true, X=X, training=training)
        kd_state = getattr(self, "_kd_", None)
        if kd_state is None or X is None:
            return ce
        inputs = to_tensor(batch_features(X), device=self.device)
        teacher = kd_state["teacher"]
        with torch.no_grad():
            teacher_out = teacher(**inputs) if isinstance(inputs, dict) else teacher(inputs)
        old = kd_state["old"].to(logits.device)
        T = self.kd_temperature
        soft = torch.softmax(first_output(teacher_out)[:, old] / T, dim=1)
        kd = -(soft * torch.log_softmax(logits[:, old] / T, dim=1)).sum(dim=1)
        lam = kd_state["lambda"]
        return (1.0 - lam) * ce + lam * kd

    def train_step(self, batch, **fit_params):
        """One optimizer step, then the optional non-negative clipping.

        Parameters
        ----------
        batch : tuple
            A batch from the training loader.
        **fit_params : dict
            Passed to ``forward``.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": y_pred}``.
        """
        step = super().train_step(batch, **fit_params)
        if self.clip_nonnegative:
            with torch.no_grad():
                get_head(self.module_).weight.clamp_(min=0.0)
        return step

    def adjust_logits(self, logits):
        """Classes not learned yet get logit ``-inf`` (probability 0).

        Parameters
        ----------
        logits : tensor of shape (n_samples, n_classes)
            Module output.

        Returns
        -------
        logits : tensor of shape (n_samples, n_classes)
            Masked logits.
        """
        return self._mask(logits)

    def head_norms(self):
        """L2 norm of each class's classifier row.

        Returns
        -------
        norms : ndarray of shape (n_classes,)
            Row norms of ``module_.head.weight``, in the order of
            ``classes_``.
        """
        check_is_fitted(self)
        return to_numpy(get_head(self.module_).weight.detach().norm(dim=1)).astype(np.float64)
