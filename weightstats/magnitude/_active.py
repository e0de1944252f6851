"""Active learning with weighting vectors: which unlabelled points to label next."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels import kernel_matrix
from ..utils import fill_doc
from ._base import MagnitudeMixin
from ._classifier import MagnitudeClassifier
from ._scale import select_scale
from ._solvers import (
    DistinctPoints,
    blas_threads,
    check_metric,
    check_points,
    check_scale,
    solve_cholesky,
)
from ._space import S_MIN, schur_terms

__all__ = ["MagnitudeActiveLearner", "query_by_weight"]


def _check_n_queries(n_queries, n_pool):
    if (
        not isinstance(n_queries, numbers.Integral)
        or isinstance(n_queries, bool)
        or not 1 <= n_queries <= n_pool
    ):
        raise ValueError(
            f"n_queries must be an integer between 1 and the pool size {n_pool}; "
            f"got {n_queries!r}."
        )


def query_by_weight(X_pool, X_labeled, n_queries=1, *, t=None, metric="euclidean", n_jobs=None):
    """Greedily pick the pool points that add the most magnitude to the labelled set.

    At each step the pool point ``x`` with the largest magnitude increase
    ``Mag(L + {x}) - Mag(L) = (1 - c'w)^2 / (1 - c' Z^-1 c)`` is chosen and
    added to ``L`` (``c`` its similarities to ``L``, ``w`` the weighting
    vector of ``L``). The increase is the squared weight ``x`` would get
    times its Schur complement: it is large for points far from everything
    labelled so far, so the queries spread over unexplored regions
    (diversity sampling). Exact, with the Cholesky factor of ``L`` extended
    by one row per query: O(m (l + q)^2) for ``m`` pool points, ``l``
    labelled points and ``q`` queries.

    Parameters
    ----------
    X_pool : array-like of shape (n_pool, n_features)
        Unlabelled candidates.
    X_labeled : array-like of shape (n_labeled, n_features)
        Points already labelled (at least one).
    n_queries : int, default=1
        Number of points to pick; at most ``n_pool``.
    t : float, default=None
        The scale; ``None`` means ``select_scale`` (``8 / median(d)``) on the
        pool and labelled points together.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    n_jobs : int, default=None
        Threads for the kernels.

    Returns
    -------
    indices : ndarray of int of shape (n_queries,)
        Rows of ``X_pool`` in the order chosen. Once every pool point
        coincides with a labelled or chosen one the increase is 0 and ties
        go to the lowest index.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import query_by_weight
    >>> labeled = np.array([[0.0, 0.0]])
    >>> pool = np.array([[0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [-5.0, 5.0]])
    >>> query_by_weight(pool, labeled, n_queries=2, t=1.0).tolist()  # one per far cluster
    [2, 3]
    """
    X_pool = check_points(X_pool, name="X_pool", min_points=1)
    X_labeled = check_points(X_labeled, name="X_labeled", min_points=1)
    if X_pool.shape[1] != X_labeled.shape[1]:
        raise ValueError(
            f"X_pool has {X_pool.shape[1]} features but X_labeled has {X_labeled.shape[1]}."
        )
    check_metric(metric)
    _check_n_queries(n_queries, X_pool.shape[0])
    if t is None:
        t = select_scale(np.vstack([X_pool, X_labeled]), metric=metric)
    t = check_scale(t)
    with blas_threads(n_jobs):
        return _greedy_queries(X_pool, X_labeled, n_queries, t, metric, n_jobs)


def _greedy_queries(X_pool, X_labeled, n_queries, t, metric, n_jobs):
    labeled = DistinctPoints(X_labeled).points
    if labeled.shape[0] == 1:
        w, R = np.ones(1), np.ones((1, 1))
    else:
        w, _, R = solve_cholesky(labeled, t, metric, n_jobs)
    n_pool, n_labeled = X_pool.shape[0], labeled.shape[0]
    # Rows of U: R'^-1 c for each pool point, one more row per query; a = 1 - c'w.
    U = np.empty((n_labeled + n_queries, n_pool))
    C = kernel_matrix(X_pool, labeled, kernel="laplacian", scale=t, metric=metric, n_jobs=n_jobs)
    U[:n_labeled], a, s = schur_terms(R, C, w)
    v = np.empty(n_queries)  # the entries of R'^-1 1 for the added rows
    chosen = []
    for step in range(n_queries):
        rows = n_labeled + step
        gain = np.where(s > S_MIN, a * a / np.maximum(s, S_MIN), 0.0)
        gain[chosen] = -np.inf
        q = int(np.argmax(gain))
        chosen.append(q)
        if step == n_queries - 1:
            break
        pivot = np.sqrt(max(s[q], S_MIN))
        k_q = kernel_matrix(X_pool, X_pool[q : q + 1], kernel="laplacian", scale=t,
                            metric=metric)[:, 0]
        e = (k_q - U[:rows].T @ U[:rows, q]) / pivot
        v[step] = a[q] / pivot
        U[rows] = e
        s -= e * e
        a -= e * v[step]
    return np.array(chosen, dtype=np.int64)


@fill_doc
class MagnitudeActiveLearner(MagnitudeMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier plus a rule for choosing the next points to label.

    ``fit`` trains ``estimator`` on the labelled data; ``query(X_pool, n)``
    returns the rows of an unlabelled pool to label next. Label them, append
    them to the training data and ``fit`` again.

    The papers list active learning among the applications of weighting
    vectors; their exact rule is not public (a second-hand summary says
    points of minimum and maximum weight are queried). Two documented rules
    are offered:

    * ``strategy="weight"``: :func:`query_by_weight` on standardised data,
      greedily the pool points that add the most magnitude to the labelled
      set (large weights: unexplored regions). Needs no model.
    * ``strategy="margin"``: the pool points whose two most probable classes
      under ``estimator`` are closest (margin uncertainty sampling); with the
      default :class:`MagnitudeClassifier` these are the points about
      equally interior to two classes, i.e. near the class boundaries.

    Parameters
    ----------
    estimator : classifier, default=None
        The model; ``None`` means ``MagnitudeClassifier()``. ``"margin"``
        needs ``predict_proba``.
    strategy : {"weight", "margin"}, default="weight"
        The query rule, see above.
    scale : "auto" or float, default="auto"
        Scale ``t`` of ``"weight"``; ``"auto"`` is ``8 / median(d)`` on the
        standardised labelled points.
    standardize : bool, default=True
        Standardise (with the labelled data's means and deviations) before
        the ``"weight"`` rule.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance of ``"weight"``.
    {n_jobs}

    Attributes
    ----------
    estimator_ : classifier
        The fitted model.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    scale_ : float
        The scale of ``"weight"``.
    X_labeled_ : ndarray of shape (n_samples, n_features)
        The standardised training data.
    mean_ : ndarray of shape (n_features,)
        Feature means used for standardisation.
    std_ : ndarray of shape (n_features,)
        Feature standard deviations used.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    query_by_weight : The ``"weight"`` rule as a function.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from weightstats.magnitude import MagnitudeActiveLearner
    >>> X, y = load_iris(return_X_y=True)
    >>> labeled = np.array([0, 50, 100])
    >>> learner = MagnitudeActiveLearner().fit(X[labeled], y[labeled])
    >>> pool = np.setdiff1d(np.arange(150), labeled)
    >>> picked = pool[learner.query(X[pool], n_queries=5)]
    >>> learner = learner.fit(X[np.r_[labeled, picked]], y[np.r_[labeled, picked]])
    >>> float(round(learner.score(X, y), 2))
    0.9
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "strategy": [StrOptions({"weight", "margin"})],
        "scale": MagnitudeMixin._parameter_constraints["scale"],
        "standardize": ["boolean"],
        "metric": MagnitudeMixin._parameter_constraints["metric"],
        "n_jobs": MagnitudeMixin._parameter_constraints["n_jobs"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        strategy="weight",
        scale="auto",
        standardize=True,
        metric="euclidean",
        n_jobs=None,
    ):
        self.estimator = estimator
        self.strategy = strategy
        self.scale = scale
        self.standardize = standardize
        self.metric = metric
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit the model on the labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled data.
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params : dict
            Passed to ``estimator.fit``.

        Returns
        -------
        self : MagnitudeActiveLearner
            The fitted learner.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        estimator = MagnitudeClassifier() if self.estimator is None else self.estimator
        self.estimator_ = clone(estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        self.X_labeled_ = self._standardise_fit(X)
        distinct = DistinctPoints(self.X_labeled_)
        self.scale_ = (
            self._fit_scale(distinct.points) if distinct.n_distinct > 1 else 1.0
        ) if self.scale == "auto" else float(self.scale)
        return self

    def query(self, X_pool, n_queries=1):
        """Rows of ``X_pool`` to label next.

        Parameters
        ----------
        X_pool : array-like of shape (n_pool, n_features)
            Unlabelled candidates.
        n_queries : int, default=1
            How many to pick.

        Returns
        -------
        indices : ndarray of int of shape (n_queries,)
            Rows of ``X_pool``, most informative first.
        """
        check_is_fitted(self)
        X_pool = validate_data(self, X_pool, dtype=np.float64, reset=False)
        _check_n_queries(n_queries, X_pool.shape[0])
        if self.strategy == "weight":
            return query_by_weight(
                self._standardise(X_pool), self.X_labeled_, n_queries, t=self.scale_,
                metric=self.metric, n_jobs=self.n_jobs,
            )
        if not hasattr(self.estimator_, "predict_proba"):
            raise ValueError("strategy='margin' needs an estimator with predict_proba.")
        proba = np.sort(self.estimator_.predict_proba(X_pool), axis=1)
        margin = proba[:, -1] - proba[:, -2] if proba.shape[1] > 1 else proba[:, -1]
        return np.argsort(margin, kind="stable")[:n_queries]

    def predict(self, X):
        """Predict with the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.estimator_.predict(X)

    def _estimator_has(attribute):
        def check(self):
            if hasattr(self, "estimator_"):
                return hasattr(self.estimator_, attribute)
            estimator = MagnitudeClassifier() if self.estimator is None else self.estimator
            return hasattr(estimator, attribute)

        return check

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Confidence scores from the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            As the model's ``decision_function``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
