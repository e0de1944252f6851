"""Coreset-based data reweighting (CW-ERM; Jafari, Zhang, Zhang and Liu, ICASSP 2024).

"The Power of Few: Accelerating and Enhancing Data Reweighting with Coreset
Selection" learns per-sample weights on a small coreset only and gives every
other sample the weight of its nearest coreset point, so that reweighting costs
a fraction of reweighting all data. Three parts, following the authors' code
(``Mohammadjafari80/CW-ERM``):

1. **Coreset.** "Moderate" selection (Xia et al., ICLR 2023): per class, the
   samples whose Euclidean distance to the class's coordinate-wise median lies
   in the middle of the class's distance distribution (both tails pruned).
   The authors take ``floor(size / n_classes)`` per class; we apportion
   exactly ``size`` points in equal shares (largest remainder, small classes
   whole, see ``_class_allocation``), or use the same rule over all samples
   when ``size < n_classes``. ``"random"`` draws the coreset uniformly (the
   paper's control).
2. **Reweighting on the coreset.** The paper trains Meta-Weight-Net with a
   deep network. Here the learner inside the bilevel problem is a
   differentiable surrogate: L2-penalised multinomial logistic regression on
   standardised features. Each reweighted coreset point ``i`` counts
   ``c_i = m n_i / n`` times, ``n_i`` being the number of samples that will
   take its weight, so that the coreset loss approximates the weighted loss
   over all data (our choice; the paper does not relate the two). With
   ``theta*(w) = argmin sum_i c_i w_i l_i(theta) / m + alpha/2 |theta|^2``,
   the validation loss ``L(theta*(w))`` has the exact implicit-function
   gradient ``dL/dw_i = -c_i grad l_i(theta*)' H^{-1} grad L / m`` (the
   Hessian solve by conjugate gradients on Hessian-vector products). Weights
   are normalised to ``sum_i c_i w_i = m``: the propagated weights average 1.

   * ``reweighting="meta"``: free per-point weights ``w = exp(a)``,
     optimised by L-BFGS, with a penalty on the mean squared ``log w``
     (a small validation set is easy to overfit).
   * ``reweighting="loss"``: weights as a function of each point's
     out-of-fold loss, ``w_i ~ exp(beta * z_i)`` with ``z`` the standardised
     losses; the one parameter ``beta`` is chosen to minimise the validation
     loss. ``beta < 0`` down-weights hard samples (label noise), ``beta > 0``
     up-weights them (imbalance). This is the loss-to-weight map of
     Meta-Weight-Net reduced to one parameter.

   The validation set is ``(X_val, y_val)`` when given, else a random part
   of the coreset (the authors' meta-set size
   ``max(int(0.02 m), min(100, int(0.5 m)), 1)``) that is then not
   reweighted itself.
3. **Propagation.** Each sample takes the weight of its nearest reweighted
   coreset point (``sklearn.neighbors.NearestNeighbors``), ignoring labels as
   in the authors' code, or within its own class (``"nearest_same_class"``).

The final estimator is fitted on all data with the propagated weights.
"""

import numbers
import time
import warnings

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import log_softmax, softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data
from threadpoolctl import threadpool_limits

from .._kernels import n_threads_from_jobs
from ..utils import fill_doc

__all__ = ["CoresetReweighter"]


# -- coreset selection ----------------------------------------------------------


def _middle_band(distances, count):
    """Positions of the ``count`` values in the middle of the sorted distances."""
    order = np.argsort(distances, kind="stable")
    start = (len(order) - count) // 2
    return order[start:start + count]


def _class_allocation(size, class_sizes):
    """Coreset points per class: ``size`` in total, in equal shares where possible.

    The authors' rule is ``floor(size / n_classes)`` per class, which loses the
    remainder (``size=3`` with two classes gave 2 points) and the share a
    small class cannot fill. Here every class gets the equal share ``size /
    n_classes`` apportioned by largest remainder (all remainders are equal,
    so the extra points go to the largest classes first), and a class smaller
    than its share enters whole, its surplus shared among the others the same
    way. The total is exactly ``size`` (at most the number of samples), and
    every class gets a point when ``size >= n_classes``.
    """
    class_sizes = np.asarray(class_sizes)
    alloc = np.zeros(class_sizes.shape[0], dtype=np.intp)
    remaining = int(size)
    # Largest classes first for the indivisible remainder (stable in label order).
    by_size = np.argsort(-class_sizes, kind="stable")
    while remaining > 0:
        room = class_sizes - alloc
        open_ = by_size[room[by_size] > 0]
        share = remaining // open_.size
        if share == 0:
            alloc[open_[:remaining]] += 1
            break
        add = np.minimum(share, room[open_])
        alloc[open_] += add
        remaining -= int(add.sum())
    return alloc


def _moderate_coreset(X, y, size):
    """Moderate-DS: per class, the middle distance band around the class median."""
    classes, class_sizes = np.unique(y, return_counts=True)
    if size < len(classes):
        # Not one point per class: the authors' rule over all samples at once.
        distances = np.linalg.norm(X - np.median(X, axis=0), axis=1)
        return np.sort(_middle_band(distances, size))
    chosen = []
    for label, count in zip(classes, _class_allocation(size, class_sizes), strict=True):
        members = np.flatnonzero(y == label)
        distances = np.linalg.norm(X[members] - np.median(X[members], axis=0), axis=1)
        chosen.append(members[_middle_band(distances, count)])
    return np.sort(np.concatenate(chosen))


# -- the logistic surrogate -----------------------------------------------------


class _LogisticSurrogate:
    """L2-penalised multinomial logistic regression with implicit gradients.

    Objective: ``sum_i w_i l_i(theta) / total + alpha / 2 * |theta|^2`` with
    ``theta`` of shape (n_classes, n_features + 1) (intercepts are penalised
    too, which makes the Hessian positive definite) and ``total`` the sum of
    the weights the caller keeps fixed.
    """

    def __init__(self, X, Y, alpha, n_classes, total):
        self.X = np.column_stack([X, np.ones(X.shape[0])])
        self.Y = Y  # one-hot, (n_rows, n_classes)
        self.alpha = alpha
        self.total = total
        self.shape = (n_classes, self.X.shape[1])
        self.theta = np.zeros(self.shape)

    @staticmethod
    def losses(theta, Xt, Y):
        log_p = log_softmax(Xt @ theta.T, axis=1)
        return -np.sum(Y * log_p, axis=1)

    def fit(self, w):
        total = self.total
        cache = {}

        def probabilities(flat):
            key = flat.tobytes()
            if key not in cache:
                cache.clear()
                cache[key] = log_softmax(self.X @ flat.reshape(self.shape).T, axis=1)
            return cache[key]

        def objective(flat):
            log_p = probabilities(flat)
            loss = -np.sum(w * np.sum(self.Y * log_p, axis=1)) / total
            grad = ((np.exp(log_p) - self.Y) * w[:, None]).T @ self.X / total
            return (loss + 0.5 * self.alpha * np.sum(flat**2),
                    grad.ravel() + self.alpha * flat)

        def hessp(flat, vector):
            return self._hessian_product(np.exp(probabilities(flat)), w, vector)

        # Newton steps with the exact Hessian-vector product: the implicit
        # gradient needs theta*(w) to high accuracy, which quasi-Newton
        # methods warm-started near the optimum stop short of.
        result = minimize(objective, self.theta.ravel(), jac=True, hessp=hessp,
                          method="trust-ncg", options={"gtol": 1e-9, "maxiter": 200})
        self.theta = result.x.reshape(self.shape)
        self.w = w
        return self

    def _hessian_product(self, P, w, vector):
        V = vector.reshape(self.shape)
        Zv = self.X @ V.T
        M = P * Zv - P * np.sum(P * Zv, axis=1, keepdims=True)
        return ((M * (w / self.total)[:, None]).T @ self.X + self.alpha * V).ravel()

    def hessian_operator(self):
        P = softmax(self.X @ self.theta.T, axis=1)
        size = self.shape[0] * self.shape[1]
        return LinearOperator((size, size), dtype=float,
                              matvec=lambda v: self._hessian_product(P, self.w, v))

    def validation(self, Xv, Yv):
        """Mean validation loss and its gradient in theta."""
        Xt = np.column_stack([Xv, np.ones(Xv.shape[0])])
        log_p = log_softmax(Xt @ self.theta.T, axis=1)
        loss = -np.mean(np.sum(Yv * log_p, axis=1))
        grad = (np.exp(log_p) - Yv).T @ Xt / Xv.shape[0]
        return loss, grad

    def weight_gradient(self, Xv, Yv):
        """Validation loss and its gradient in the sample weights w."""
        loss, grad = self.validation(Xv, Yv)
        # H is positive definite (alpha > 0), so conjugate gradients converge.
        v, _ = cg(self.hessian_operator(), grad.ravel(), rtol=1e-8, maxiter=2000)
        V = v.reshape(self.shape)
        P = softmax(self.X @ self.theta.T, axis=1)
        # d theta*/d w_i = -H^{-1} grad l_i / total, with grad l_i = (p_i - y_i) x_i'.
        per_sample = np.sum((P - self.Y) * (self.X @ V.T), axis=1)
        return loss, -per_sample / self.total


def _one_hot(y_encoded, n_classes):
    Y = np.zeros((y_encoded.shape[0], n_classes))
    Y[np.arange(y_encoded.shape[0]), y_encoded] = 1.0
    return Y


class _CoresetProblem:
    """The surrogate fit on the coreset as a function of the point weights.

    Rows are the distinct (coreset point, label) pairs of the samples
    assigned to each point, with ``count = m * occurrences / n``; a point's
    weight multiplies all its rows.
    """

    def __init__(self, X_points, y_points, nearest, y, n_classes, alpha):
        m, n = X_points.shape[0], y.shape[0]
        pairs, occurrences = np.unique(nearest * n_classes + y, return_counts=True)
        self.owner, labels = pairs // n_classes, pairs % n_classes
        self.row_counts = occurrences * m / n
        self.point_counts = np.bincount(self.owner, weights=self.row_counts, minlength=m)
        self.n_points = m
        self.X_points = np.column_stack([X_points, np.ones(m)])
        self.Y_points = _one_hot(y_points, n_classes)
        # The weights are normalised so that the row weights sum to m.
        self.surrogate = _LogisticSurrogate(X_points[self.owner], _one_hot(labels, n_classes),
                                            alpha, n_classes, total=float(m))

    def normalised(self, a):
        """``w = m exp(a) / sum(point_counts exp(a))``: propagated weights average 1."""
        e = np.exp(a - a.max())
        return self.n_points * e / np.dot(self.point_counts, e)

    def fit(self, w):
        self.surrogate.fit(self.row_counts * w[self.owner])
        return self

    def fit_subset(self, points):
        """Parameters of the surrogate fitted with unit weights on some points only."""
        keep = np.isin(self.owner, points)
        part = _LogisticSurrogate(self.surrogate.X[keep, :-1], self.surrogate.Y[keep],
                                  self.surrogate.alpha, self.surrogate.shape[0],
                                  total=float(self.row_counts[keep].sum()))
        return part.fit(self.row_counts[keep]).theta

    def validation_loss(self, Xv, Yv):
        return self.surrogate.validation(Xv, Yv)[0]

    def validation_gradient(self, Xv, Yv):
        """Validation loss and its gradient in the point weights."""
        loss, grad_rows = self.surrogate.weight_gradient(Xv, Yv)
        grad = np.bincount(self.owner, weights=self.row_counts * grad_rows,
                           minlength=self.n_points)
        return loss, grad


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator if self.estimator is not None else LogisticRegression(),
                       attr)

    return check


@fill_doc
class CoresetReweighter(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Learn sample weights on a coreset, spread them by nearest neighbour, refit.

    CW-ERM (Jafari et al., 2024) for scikit-learn classifiers: select a small
    "moderate" coreset, learn per-sample weights on it that minimise a
    validation loss (a bilevel problem solved exactly for a logistic-regression
    surrogate), give every sample the weight of its nearest coreset point, and
    fit ``estimator`` on all data with those weights. See
    :ref:`coreset_reweighting` for what is implemented and how it differs from
    the paper's deep-network version.

    Parameters
    ----------
    estimator : classifier, default=None
        Fitted on all data with the propagated weights; must accept
        ``sample_weight``. ``None`` means ``LogisticRegression()``.
    coreset_size : float or int, default=0.05
        A fraction of the samples in (0, 1], or a number of samples.
    selection : {"moderate", "random"}, default="moderate"
        Moderate-DS (per class, the middle band of distances to the class
        median) or a uniform random coreset.
    reweighting : {"meta", "loss"}, default="meta"
        Free per-sample weights learned through the surrogate's implicit
        gradient, or weights ``softmax(beta * loss)`` with one learned
        ``beta`` (see the module notes).
    propagate : {"nearest", "nearest_same_class"}, default="nearest"
        Each sample takes the weight of its nearest reweighted coreset point,
        of any class (as in the paper) or of its own class (falling back to
        any class when its class has no reweighted coreset point).
    alpha : float, default=0.01
        L2 penalty of the logistic surrogate (on standardised features).
    weight_penalty : float, default=0.1
        For ``reweighting="meta"``: adds ``weight_penalty / 2`` times the
        mean squared log-weight over the training data to the validation
        loss, shrinking the weights towards equal (a small validation set is
        otherwise easy to overfit).
    max_iter : int, default=30
        L-BFGS iterations of the ``"meta"`` weight optimisation (function
        evaluations of the bounded search for ``"loss"``).
    {random_state}
    {n_jobs}

    Attributes
    ----------
    estimator_ : classifier
        The estimator fitted with ``sample_weights_``.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    sample_weights_ : ndarray of shape (n_samples,)
        The propagated weights of the training samples.
    coreset_indices_ : ndarray of shape (n_coreset,)
        Rows of ``X`` in the coreset.
    validation_indices_ : ndarray of shape (n_val,)
        Rows of the coreset used as the validation set (empty when
        ``X_val`` was given); they are not reweighted themselves.
    validation_loss_ : dict
        The surrogate's validation log-loss with unit weights (``"before"``)
        and with the learned coreset weights (``"after"``).
    beta_ : float
        The learned loss exponent (``reweighting="loss"`` only).
    n_iter_ : int
        Iterations of the weight optimisation.
    fit_time_ : dict
        Seconds spent on ``"selection"``, ``"reweighting"``, ``"propagation"``
        and the final ``"fit"``.
    {n_features_in_}
    {feature_names_in_}

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from weightstats.reweighting import CoresetReweighter
    >>> X, y = make_classification(600, n_features=5, weights=[0.9, 0.1], random_state=0)
    >>> model = CoresetReweighter(coreset_size=0.1, random_state=0).fit(X, y)
    >>> model.coreset_indices_.shape, model.sample_weights_.shape
    ((60,), (600,))
    >>> bool(model.validation_loss_["after"] <= model.validation_loss_["before"])
    True
    >>> model.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "coreset_size": [
            Interval(numbers.Real, 0, 1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "selection": [StrOptions({"moderate", "random"})],
        "reweighting": [StrOptions({"meta", "loss"})],
        "propagate": [StrOptions({"nearest", "nearest_same_class"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        coreset_size=0.05,
        selection="moderate",
        reweighting="meta",
        propagate="nearest",
        alpha=0.01,
        weight_penalty=0.1,
        max_iter=30,
        random_state=None,
        n_jobs=None,
    ):
        self.estimator = estimator
        self.coreset_size = coreset_size
        self.selection = selection
        self.reweighting = reweighting
        self.propagate = propagate
        self.alpha = alpha
        self.weight_penalty = weight_penalty
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, X_val=None, y_val=None):
        """Select the coreset, learn and propagate weights, fit the estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the feature space of the coreset and of the
            nearest-neighbour search: scale or embed it first).
        y : array-like of shape (n_samples,)
            Class labels.
        X_val : array-like of shape (n_val, n_features), default=None
            A small trusted validation set; ``None`` holds out part of the
            coreset.
        y_val : array-like of shape (n_val,), default=None
            Its labels (each one of the classes in ``y``).

        Returns
        -------
        self : CoresetReweighter
            The fitted meta-estimator.
        """
        estimator = LogisticRegression() if self.estimator is None else self.estimator
        if not is_classifier(estimator):
            raise TypeError(
                f"estimator must be a classifier; got {type(estimator).__name__}. "
                "CoresetReweighter selects its coreset per class."
            )
        if not has_fit_parameter(estimator, "sample_weight"):
            raise TypeError(
                f"{type(estimator).__name__}.fit does not accept sample_weight, so it cannot "
                "use the learned weights; pick an estimator that does."
            )
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has samples of only one class ({self.classes_[0]!r}); a classifier needs "
                "at least 2 classes."
            )
        y_enc = encoder.transform(y)
        n_samples, n_classes = X.shape[0], len(self.classes_)
        size = self._coreset_count(n_samples)
        rng = check_random_state(self.random_state)
        timer = {}

        start = time.perf_counter()
        if self.selection == "moderate":
            core = _moderate_coreset(X, y_enc, size)
        else:
            core = np.sort(rng.choice(n_samples, size, replace=False))
        timer["selection"] = time.perf_counter() - start

        start = time.perf_counter()
        # The surrogate sees standardised features (a fixed transform of X).
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        if X_val is None and y_val is None:
            n_meta = max(int(0.02 * len(core)), min(100, int(0.5 * len(core))), 1)
            if len(core) - n_meta < 1:
                raise ValueError(
                    f"the coreset has {len(core)} sample(s): too few to hold out a validation "
                    "set; raise coreset_size or pass X_val and y_val."
                )
            held_out = np.sort(rng.choice(len(core), n_meta, replace=False))
            train = np.setdiff1d(np.arange(len(core)), held_out)
            Xv, yv = X[core[held_out]], y_enc[core[held_out]]
            self.validation_indices_ = core[held_out]
            reweighted = core[train]
        else:
            Xv, yv = self._check_validation(X_val, y_val, encoder)
            self.validation_indices_ = np.empty(0, dtype=np.intp)
            reweighted = core
        self._warn_if_too_small(len(reweighted), n_classes, len(core))
        # Each sample will take the weight of its nearest reweighted coreset
        # point. The surrogate gets one row per (coreset point, label) pair
        # among the samples in that point's cell, counted as often as the pair
        # occurs: fitting it with the point weights approximates the weighted
        # fit on all data (samples moved onto their coreset point).
        X_std = (X - mean) / scale
        nearest = self._nearest(X, y_enc, X[reweighted], y_enc[reweighted])
        problem = _CoresetProblem(X_std[reweighted], y_enc[reweighted], nearest, y_enc,
                                  n_classes, self.alpha)
        # The surrogate's matrices are small: BLAS threads only add overhead
        # (and contention), so they follow n_jobs (None: one thread).
        with threadpool_limits(limits=n_threads_from_jobs(self.n_jobs), user_api="blas"):
            weights = self._learn_weights(problem, (Xv - mean) / scale,
                                          _one_hot(yv, n_classes), rng)
        timer["reweighting"] = time.perf_counter() - start

        start = time.perf_counter()
        self.sample_weights_ = weights[nearest]
        timer["propagation"] = time.perf_counter() - start

        start = time.perf_counter()
        self.estimator_ = clone(estimator).fit(X, y, sample_weight=self.sample_weights_)
        timer["fit"] = time.perf_counter() - start
        self.coreset_indices_ = core
        self.fit_time_ = timer
        return self

    def _warn_if_too_small(self, n_points, n_classes, n_core):
        """Warn when the reweighted points cannot express class-level weights."""
        if n_points >= n_classes and n_points >= 2:
            return
        effect = (
            "every sample gets the same weight, so the final fit equals the unweighted one"
            if n_points < 2
            else "the propagated weights take at most that many values, fewer than the classes"
        )
        warnings.warn(
            f"CoresetReweighter: only {n_points} reweighted coreset point(s) for {n_classes} "
            f"classes (coreset of {n_core}, "
            f"{len(self.validation_indices_)} held out for validation): {effect}. Raise "
            "coreset_size (at least one reweighted point per class) or pass X_val and y_val.",
            UserWarning,
            stacklevel=4,  # fit runs inside scikit-learn's _fit_context
        )

    def _coreset_count(self, n_samples):
        size = self.coreset_size
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            if size > n_samples:
                raise ValueError(
                    f"coreset_size={size} is larger than the data ({n_samples} samples); "
                    "pass at most n_samples or a fraction in (0, 1]."
                )
            return int(size)
        count = int(round(size * n_samples))
        if count < 1:
            raise ValueError(
                f"coreset_size={size} selects no sample out of {n_samples}; raise it to at "
                f"least {1 / n_samples:.3g}."
            )
        return count

    def _check_validation(self, X_val, y_val, encoder):
        if X_val is None or y_val is None:
            raise ValueError("pass both X_val and y_val, or neither.")
        Xv = validate_data(self, X_val, reset=False, dtype=np.float64)
        yv = np.asarray(y_val)
        if yv.ndim != 1 or yv.shape[0] != Xv.shape[0]:
            raise ValueError(
                f"y_val must be 1-d with one label per row of X_val ({Xv.shape[0]}); got shape "
                f"{yv.shape}."
            )
        unknown = np.setdiff1d(yv, self.classes_)
        if unknown.size:
            raise ValueError(f"y_val has labels not seen in y: {unknown[:5].tolist()}.")
        return Xv, encoder.transform(yv)

    def _learn_weights(self, problem, Xv, Yv, rng):
        """Point weights ``w`` (normalised so that the propagated weights average
        one) that minimise the surrogate's validation loss."""
        ones = np.ones(problem.n_points)
        before = problem.fit(ones).validation_loss(Xv, Yv)
        if self.reweighting == "meta":
            weights, self.n_iter_ = self._meta_weights(problem, Xv, Yv)
        else:
            weights, self.beta_, self.n_iter_ = self._loss_weights(problem, Xv, Yv, rng)
        after = problem.fit(weights).validation_loss(Xv, Yv)
        if after > before:  # never return weights worse than none
            weights, after = ones, before
        self.validation_loss_ = {"before": float(before), "after": float(after)}
        return weights

    def _meta_weights(self, problem, Xv, Yv):
        counts, m = problem.point_counts, problem.n_points
        penalty = self.weight_penalty

        def objective(a):
            w = problem.normalised(a)
            loss, grad_w = problem.fit(w).validation_gradient(Xv, Yv)
            # Shrink towards equal weights: penalty/2 * the mean squared log
            # weight over the training data.
            log_w = np.log(w)
            loss += 0.5 * penalty * np.dot(counts, log_w**2) / m
            grad_w = grad_w + penalty * counts * log_w / (m * w)
            # w = m exp(a) / sum(counts exp(a)): dw_i/da_k = w_i delta_ik - w_i counts_k w_k / m.
            return loss, w * grad_w - counts * w * np.dot(grad_w, w) / m

        result = minimize(objective, np.zeros(m), jac=True, method="L-BFGS-B",
                          options={"maxiter": self.max_iter})
        return problem.normalised(result.x), int(result.nit)

    def _loss_weights(self, problem, Xv, Yv, rng):
        m = problem.n_points
        if m < 2:
            return np.ones(m), 0.0, 0
        # Out-of-fold loss of each coreset point with its own label.
        losses = np.empty(m)
        folds = KFold(min(5, m), shuffle=True, random_state=rng.randint(2**31 - 1))
        for fit_points, held in folds.split(problem.X_points):
            theta = problem.fit_subset(fit_points)
            losses[held] = _LogisticSurrogate.losses(
                theta, problem.X_points[held], problem.Y_points[held])
        spread = losses.std()
        z = (losses - losses.mean()) / spread if spread > 0 else np.zeros(m)

        def validation_loss(beta):
            return problem.fit(problem.normalised(beta * z)).validation_loss(Xv, Yv)

        result = minimize_scalar(validation_loss, bounds=(-5.0, 5.0), method="bounded",
                                 options={"maxiter": self.max_iter, "xatol": 1e-3})
        beta = float(result.x)
        return problem.normalised(beta * z), beta, int(result.nfev)

    def _nearest(self, X, y, X_core, y_core):
        """Index of each sample's nearest reweighted coreset point."""
        everyone = NearestNeighbors(n_neighbors=1, n_jobs=self.n_jobs).fit(X_core)
        if self.propagate == "nearest":
            return everyone.kneighbors(X, return_distance=False)[:, 0]
        out = np.empty(X.shape[0], dtype=np.intp)
        for label in np.unique(y):
            rows = np.flatnonzero(y == label)
            members = np.flatnonzero(y_core == label)
            if members.size == 0:
                out[rows] = everyone.kneighbors(X[rows], return_distance=False)[:, 0]
                continue
            nn = NearestNeighbors(n_neighbors=1, n_jobs=self.n_jobs).fit(X_core[members])
            out[rows] = members[nn.kneighbors(X[rows], return_distance=False)[:, 0]]
        return out

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the reweighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted class labels.
        """
        return self._delegate("predict", X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the reweighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return self._delegate("predict_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the reweighted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Decision scores.
        """
        return self._delegate("decision_function", X)

    def _delegate(self, method, X):
        check_is_fitted(self)
        return getattr(self.estimator_, method)(
            validate_data(self, X, reset=False, dtype=np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = LogisticRegression() if self.estimator is None else self.estimator
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_class = get_tags(inner).classifier_tags.multi_class
        return tags
