"""PRESTO: relaxed proportional odds with a fused L1 penalty (Faletto and Bien, 2023).

The model is a cumulative logit with one slope vector per decision boundary,
``P(Y <= k | x) = sigmoid(alpha_k + x'beta_k)``, fitted by minimising

    -(1/N) loglik + alpha * (c_1 ||beta_1||_1 + sum_{k >= 2} ||beta_k - beta_{k-1}||_1)

on standardised predictors (weighted mean 0, weighted population SD 1), with
unpenalised intercepts and ``c_1 = penalize_first``. See
``weightstats.ordinal._solver`` for the solver.
"""

import numbers
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..metrics._ordinal import _brier_codes, _log_loss_codes, _rps_codes
from ..utils import Summary, fill_doc, progress
from ._base import (
    _BaseOrdinalClassifier,
    count_crossings,
    cumulative_to_proba,
    warn_if_separated,
)
from ._solver import OrdinalProblem

__all__ = ["PRESTOClassifier", "PRESTOClassifierCV"]

_SCORERS = {"brier": _brier_codes, "log_loss": _log_loss_codes, "rps": _rps_codes}


def _warn_not_converged(name, paths, tol):
    """One ConvergenceWarning for the penalties of ``paths`` that did not converge."""
    alphas = np.concatenate([p.alphas[~p.converged] for p in paths])
    if alphas.size == 0:
        return
    kkt = np.concatenate([p.kkt[~p.converged] for p in paths])
    n_iter = np.concatenate([p.n_iter[~p.converged] for p in paths])
    worst = int(np.argmax(kkt))
    more = f" (and {alphas.size - 1} more fits)" if alphas.size > 1 else ""
    warnings.warn(
        f"{name} did not converge at alpha={alphas[worst]:.4g}{more}: KKT residual "
        f"{kkt[worst]:.2e} > tol={tol:g} after {n_iter[worst]} Newton iterations. If the classes "
        "are (nearly) separable the unpenalised part of the model (intercepts, and the first "
        "slope vector when penalize_first=False) has no finite maximiser; increase alpha or "
        "max_iter, or use penalize_first=True.",
        ConvergenceWarning,
        stacklevel=3,
    )


class _PRESTOMixin:
    """Summary table shared by the fixed-penalty and cross-validated estimators."""

    def _check_separation(self, problem, converged):
        """Warn if the unpenalised part of the model at ``alpha_`` has no finite fit."""
        if self.alpha_ == 0:
            warn_if_separated(self, problem, "free", converged)
        elif not self.penalize_first:
            warn_if_separated(self, problem, "shared", converged)
        # Otherwise only the intercepts are unpenalised; with every class
        # present they have a finite optimum.

    def _boundary_names(self):
        return [f"Y <= {c}" for c in self.classes_[:-1]]

    def _feature_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def coef_differences(self):
        """Differences of adjacent boundaries' slopes, the penalised terms.

        Returns
        -------
        differences : pandas.DataFrame of shape (n_features, n_classes - 2)
            Column ``k`` is ``coef_[k + 1] - coef_[k]`` (original scale);
            exact zeros are differences fused by the penalty.
        """
        check_is_fitted(self)
        names = self._boundary_names()
        return pd.DataFrame(
            np.diff(self.coef_, axis=0).T,
            index=self._feature_names(),
            columns=[f"({names[k + 1]}) - ({names[k]})" for k in range(len(names) - 1)],
        )

    def summary(self):
        """Coefficients by boundary and the non-zero differences between boundaries.

        Returns
        -------
        summary : weightstats.utils.Summary
            Printable (text) and notebook-friendly (HTML) tables: the
            intercepts and slopes of every boundary on the original scale,
            then the differences of adjacent boundaries' slopes with fused
            (zero) differences shown as ``.``.
        """
        check_is_fitted(self)
        names = self._boundary_names()
        features = self._feature_names()
        coefs = pd.DataFrame(
            np.vstack([self.intercept_, self.coef_.T]),
            index=["intercept", *features],
            columns=names,
        )
        diffs = self.coef_differences()
        n_nonzero = int(np.count_nonzero(diffs.to_numpy()))
        shown = diffs.map(lambda v: "." if v == 0 else f"{v:.4g}")
        info = {
            "classes (low to high)": ", ".join(str(c) for c in self.classes_),
            "alpha": self.alpha_,
            "alpha_max": self.alpha_max_,
            "fit at alpha >= alpha_max": (
                "intercept only" if self.penalize_first else "proportional odds"
            ),
            "penalize_first": self.penalize_first,
            "log-likelihood": self.log_likelihood_,
            "non-zero differences": f"{n_nonzero} of {diffs.size}",
            "training rows with crossing boundaries": self.n_crossings_,
        }
        notes = [
            "Model: P(Y <= k | x) = sigmoid(intercept_k + x @ coef_k); positive coefficients "
            "favour the lower classes (statsmodels/polr: beta = -coef).",
            "Second table: coef_k - coef_(k-1), the L1-penalised differences; '.' marks a "
            "difference fused to zero (both boundaries share that slope).",
        ]
        return Summary(
            f"{type(self).__name__}: relaxed proportional odds",
            info=info,
            tables=[coefs, shown],
            notes=notes,
        )


@fill_doc
class PRESTOClassifier(_PRESTOMixin, _BaseOrdinalClassifier):
    r"""PRESTO: ordinal classifier shrinking towards proportional odds.

    A cumulative logit with a separate slope vector for each decision boundary,
    ``P(Y <= k | x) = sigmoid(intercept_k + x @ coef_k)``, fitted with an L1
    penalty on the differences of adjacent slope vectors (Faletto and Bien,
    2023). Rare outcomes that are the last step of a sequence of common ones
    borrow strength from the common boundaries while keeping the slopes that
    really differ.

    The objective, on standardised predictors, is

    .. math::

        -\frac{1}{N}\sum_i w_i \log P(y_i \mid x_i)
        + \alpha \Big(c_1 \lVert\beta_1\rVert_1
        + \sum_{k \ge 2} \lVert\beta_k - \beta_{k-1}\rVert_1\Big),

    with unpenalised intercepts, ``N = sum(w)`` and ``c_1 = 1`` if
    ``penalize_first`` else 0. Solved by proximal Newton with coordinate
    descent, stopping on the KKT residual.

    Read more in the :ref:`User Guide <ordinal>`.

    Parameters
    ----------
    alpha : float, default=0.01
        Penalty strength (the ``lambda`` of the paper and of ordinalNet) on
        the scale of the mean log-likelihood with standardised predictors.
        ``alpha=0`` is the unpenalised non-parallel cumulative logit MLE;
        ``alpha >= alpha_max_`` gives exactly the proportional-odds fit
        (``penalize_first=False``) or the intercept-only fit
        (``penalize_first=True``).
    penalize_first : bool, default=False
        Penalise the first slope vector too. ``False`` (our default) shrinks
        towards proportional odds, which is the limit as ``alpha`` grows.
        ``True`` reproduces the current reference code, whose limit is the
        intercept-only model.
    standardize : bool, default=True
        Penalise the slopes of standardised predictors (weighted population
        SD). Coefficients are always returned on the original scale.
        Predictors are always centred (the intercepts absorb it).
    classes : array-like of shape (n_classes,), default=None
        The class labels from lowest to highest. ``None``: the categories of a
        pandas ordered Categorical ``y``, or sorted numeric labels; string
        labels without an order raise.
    tol : float, default=1e-8
        Stop when the KKT residual (max-norm of the minimum-norm subgradient
        of the objective) is at most ``tol``.
    max_iter : int, default=100
        Maximum number of proximal Newton iterations.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The ordered class labels, lowest first.
    coef_ : ndarray of shape (n_classes - 1, n_features)
        Slopes of each boundary on the original scale (row ``k``: log-odds of
        ``Y <= classes_[k]``). Constant columns get 0.
    intercept_ : ndarray of shape (n_classes - 1,)
        Intercepts of each boundary on the original scale.
    alpha_ : float
        The penalty used (``alpha``).
    alpha_max_ : float
        The smallest penalty giving the proportional-odds fit
        (``penalize_first=False``) or the intercept-only fit (``True``).
    log_likelihood_ : float
        Weighted log-likelihood of the fit on the training data.
    n_crossings_ : int
        Training rows at which the fitted boundaries cross (some
        ``P(Y <= k) > P(Y <= k + 1)``); see :class:`CrossingWarning`.
    n_iter_ : int
        Proximal Newton iterations (including those of the
        proportional-odds or intercept-only start).
    kkt_residual_ : float
        Final KKT residual.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    PRESTOClassifierCV : Chooses ``alpha`` by cross-validation.
    ProportionalOddsClassifier : The ``alpha -> infinity`` limit.

    Notes
    -----
    The solver works in the difference parametrisation ``psi_1 = beta_1``,
    ``psi_k = beta_k - beta_{k-1}`` (a plain lasso on ``psi``). Intercepts are
    un-standardised with the cumulative ``beta_k`` of their own boundary (the
    published code uses ``psi_k``, which breaks every intercept after the
    first when the predictor means are not zero).

    Fitted boundaries are not constrained to be ordered; the likelihood only
    needs each observed class to have positive probability. Off the training
    sample (and occasionally on it) boundaries can cross: ``predict_proba``
    then projects the cumulative probabilities onto ordered ones and issues a
    :class:`CrossingWarning`.

    References
    ----------
    G. Faletto and J. Bien. Predicting rare events by shrinking towards
    proportional odds. ICML 2023, PMLR 202:9547-9602.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.ordinal import PRESTOClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(500, 3))
    >>> latent = X @ [1.0, -1.0, 0.5] + rng.logistic(size=500)
    >>> y = np.digitize(latent, [-0.5, 0.5, 2.0])
    >>> clf = PRESTOClassifier(alpha=0.01).fit(X, y)
    >>> clf.classes_
    array([0, 1, 2, 3])
    >>> clf.coef_.round(2)  # log-odds of Y <= k: signs opposite to the latent slopes
    array([[-1.  ,  1.13, -0.37],
           [-1.  ,  1.13, -0.37],
           [-1.04,  0.81, -0.37]])
    >>> clf.predict_proba(X[:2]).round(3)
    array([[0.345, 0.198, 0.311, 0.146],
           [0.765, 0.115, 0.084, 0.036]])
    """

    _parameter_constraints = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "penalize_first": ["boolean"],
        "standardize": ["boolean"],
        "classes": ["array-like", None],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        alpha=0.01,
        *,
        penalize_first=False,
        standardize=True,
        classes=None,
        tol=1e-8,
        max_iter=100,
    ):
        self.alpha = alpha
        self.penalize_first = penalize_first
        self.standardize = standardize
        self.classes = classes
        self.tol = tol
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc
    def fit(self, X, y, sample_weight=None):
        """Fit the model at penalty ``alpha``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Ordinal labels (at least three classes); see ``classes``.
        {sample_weight}

        Returns
        -------
        self : PRESTOClassifier
            The fitted estimator.
        """
        X, codes, sample_weight = self._validate_fit_data(X, y, sample_weight)
        problem = OrdinalProblem(
            X, codes, sample_weight, self.classes_.shape[0], standardize=self.standardize
        )
        base = problem.base_fit(self.penalize_first, tol=self.tol, max_iter=self.max_iter)
        path = problem.path(
            [self.alpha], self.penalize_first, tol=self.tol, max_iter=self.max_iter, base=base
        )
        theta = path.thetas[0]
        self.coef_, self.intercept_ = problem.to_original(theta)
        self.alpha_ = float(self.alpha)
        self.alpha_max_ = path.alpha_max
        self.n_iter_ = int(path.n_iter[0] + (base.n_iter if self.alpha < path.alpha_max else 0))
        self.kkt_residual_ = float(path.kkt[0])
        self.log_likelihood_ = -problem.weight_sum * problem.loss(problem.eta(theta))
        self.n_crossings_ = count_crossings(X @ self.coef_.T + self.intercept_)
        _warn_not_converged(type(self).__name__, [path], self.tol)
        self._check_separation(problem, bool(path.converged[0]))
        return self


def _fit_fold(X, codes, weights, train, test, n_classes, alphas, params, score, keep_coefs):
    problem = OrdinalProblem(
        X[train], codes[train], weights[train], n_classes, standardize=params["standardize"]
    )
    path = problem.path(
        alphas, params["penalize_first"], tol=params["tol"], max_iter=params["max_iter"]
    )
    scores = np.empty(alphas.shape[0])
    coefs = []
    for t in range(alphas.shape[0]):
        coef, intercept = problem.to_original(path.thetas[t])
        proba, _ = cumulative_to_proba(X[test] @ coef.T + intercept)
        scores[t] = score(codes[test], proba, weights[test])
        if keep_coefs:
            coefs.append((coef, intercept))
    return scores, coefs, path


@fill_doc
class PRESTOClassifierCV(_PRESTOMixin, _BaseOrdinalClassifier):
    """PRESTO with the penalty chosen by cross-validation along a path.

    Fits a log-spaced path of penalties from ``alpha_max`` (where the fit is
    exactly proportional odds, or intercept-only with ``penalize_first=True``)
    down to ``alpha_min_ratio * alpha_max`` on each training fold, warm-starting
    each penalty from the previous one (as glmnet and ordinalNet do), scores
    the held-out folds, and picks the **largest** penalty attaining the minimum
    mean score, as the reference implementation does.

    Read more in the :ref:`User Guide <ordinal>`.

    Parameters
    ----------
    alphas : int or array-like of shape (n_alphas,), default=20
        Number of penalties on the automatic grid, or the penalties themselves
        (non-negative).
    alpha_min_ratio : float, default=0.01
        Smallest penalty of the automatic grid as a fraction of ``alpha_max``.
    cv : int, cross-validation generator or iterable, default=5
        Folds, as in scikit-learn; an int gives ``StratifiedKFold`` (every
        class must be present in every training fold, else a ValueError says
        how to fix it).
    scoring : {"brier", "log_loss", "rps"} or callable, default="brier"
        Held-out loss (lower is better): the multi-class Brier score (summed
        over classes), the log loss, or the ranked probability score. A
        callable is called as ``scoring(y_true, proba, sample_weight=w)`` with
        labels from ``classes_`` and must return a loss.
    selection : {"min", "1se"}, default="min"
        ``"min"``: the largest penalty with the minimum mean loss (the
        reference's rule). ``"1se"``: the largest penalty whose mean loss is
        within one standard error of the minimum (glmnet's ``lambda.1se``).
    refit : bool, default=True
        Refit on all data at the chosen penalty (along the full path). If
        ``False``, the coefficients are the average of the fold fits at the
        chosen penalty, as in scikit-learn's ``LogisticRegressionCV``.
    penalize_first : bool, default=False
        See :class:`PRESTOClassifier`.
    standardize : bool, default=True
        See :class:`PRESTOClassifier`.
    classes : array-like of shape (n_classes,), default=None
        See :class:`PRESTOClassifier`.
    tol : float, default=1e-8
        KKT tolerance of each fit.
    max_iter : int, default=100
        Maximum proximal Newton iterations per penalty.
    {n_jobs}
    {verbose}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The ordered class labels, lowest first.
    alphas_ : ndarray of shape (n_alphas,)
        The penalties, largest first.
    alpha_ : float
        The chosen penalty.
    best_index_ : int
        Index of ``alpha_`` in ``alphas_``.
    alpha_max_ : float
        ``alpha_max`` on all the data (the first penalty of the automatic grid).
    cv_scores_ : ndarray of shape (n_alphas, n_folds)
        Held-out loss of every penalty on every fold.
    coef_ : ndarray of shape (n_classes - 1, n_features)
        Slopes at ``alpha_`` on the original scale.
    intercept_ : ndarray of shape (n_classes - 1,)
        Intercepts at ``alpha_``.
    coef_path_ : ndarray of shape (n_alphas, n_classes - 1, n_features)
        Slopes along the path fitted on all data (``refit=True`` only).
    intercept_path_ : ndarray of shape (n_alphas, n_classes - 1)
        Intercepts along the path (``refit=True`` only).
    log_likelihood_ : float
        Weighted training log-likelihood at ``alpha_`` (with ``refit=False``:
        of the predicted probabilities of the averaged coefficients).
    n_crossings_ : int
        Training rows at which the fitted boundaries cross.
    n_iter_ : ndarray of shape (n_alphas,)
        Proximal Newton iterations per penalty along the path on all data
        (with ``refit=False``: summed over the folds).
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    PRESTOClassifier : Fixed penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.ordinal import PRESTOClassifierCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(600, 3))
    >>> latent = X @ [1.0, -1.0, 0.5] + rng.logistic(size=600)
    >>> y = np.digitize(latent, [-0.5, 0.5, 2.0])
    >>> clf = PRESTOClassifierCV(alphas=10, cv=3).fit(X, y)
    >>> clf.cv_scores_.shape
    (10, 3)
    >>> bool(clf.alpha_ in clf.alphas_)
    True
    """

    _parameter_constraints = {
        "alphas": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "alpha_min_ratio": [Interval(numbers.Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(_SCORERS)), callable],
        "selection": [StrOptions({"min", "1se"})],
        "refit": ["boolean"],
        "penalize_first": ["boolean"],
        "standardize": ["boolean"],
        "classes": ["array-like", None],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        alphas=20,
        *,
        alpha_min_ratio=0.01,
        cv=5,
        scoring="brier",
        selection="min",
        refit=True,
        penalize_first=False,
        standardize=True,
        classes=None,
        tol=1e-8,
        max_iter=100,
        n_jobs=None,
        verbose=0,
    ):
        self.alphas = alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.refit = refit
        self.penalize_first = penalize_first
        self.standardize = standardize
        self.classes = classes
        self.tol = tol
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _scorer(self):
        if callable(self.scoring):
            classes = self.classes_

            def score(codes, proba, weights):
                return float(self.scoring(classes[codes], proba, sample_weight=weights))

            return score
        return _SCORERS[self.scoring]

    def _alpha_grid(self, alpha_max):
        if isinstance(self.alphas, numbers.Integral):
            if alpha_max <= 0:
                return np.zeros(1)
            return alpha_max * np.geomspace(1.0, self.alpha_min_ratio, self.alphas)
        alphas = np.asarray(self.alphas, dtype=np.float64)
        if alphas.ndim != 1 or alphas.size == 0:
            raise ValueError("alphas must be a positive int or a non-empty 1-d list of penalties.")
        if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"alphas must be finite and non-negative; got {alphas}.")
        return np.sort(alphas)[::-1]

    def _splits(self, X, codes):
        cv = check_cv(self.cv, codes, classifier=True)
        splits = list(cv.split(X, codes))
        n_classes = self.classes_.shape[0]
        counts = np.bincount(codes, minlength=n_classes)
        for train, _ in splits:
            missing = np.bincount(codes[train], minlength=n_classes) == 0
            if np.any(missing):
                rare = self.classes_[missing]
                sizes = dict(zip(self.classes_.tolist(), counts.tolist(), strict=True))
                fix = (
                    f"use a stratified splitter with fewer folds (cv <= {int(counts.min())} with "
                    "StratifiedKFold) or merge rare classes"
                    if counts.min() >= 2
                    else "a class with a single sample cannot be in every training fold: merge "
                    "it with a neighbouring class"
                )
                raise ValueError(
                    f"class(es) {list(rare)} are absent from a training fold (class sizes "
                    f"{sizes}); every fold must contain every class: {fix}."
                )
        return splits

    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc
    def fit(self, X, y, sample_weight=None):
        """Cross-validate the penalty and fit at the chosen one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Ordinal labels (at least three classes).
        {sample_weight}

        Returns
        -------
        self : PRESTOClassifierCV
            The fitted estimator.
        """
        X, codes, sample_weight = self._validate_fit_data(X, y, sample_weight)
        n_classes = self.classes_.shape[0]
        problem = OrdinalProblem(X, codes, sample_weight, n_classes, standardize=self.standardize)
        base = problem.base_fit(self.penalize_first, tol=self.tol, max_iter=self.max_iter)
        alphas = self._alpha_grid(base.alpha_max)
        splits = self._splits(X, codes)
        params = {
            "standardize": self.standardize,
            "penalize_first": self.penalize_first,
            "tol": self.tol,
            "max_iter": self.max_iter,
        }
        score = self._scorer()
        results = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(_fit_fold)(
                X, codes, sample_weight, train, test, n_classes, alphas, params, score,
                not self.refit,
            )
            for train, test in progress(splits, verbose=self.verbose, desc="PRESTO CV folds")
        )
        self.alphas_ = alphas
        self.cv_scores_ = np.column_stack([r[0] for r in results])
        self.alpha_max_ = base.alpha_max
        mean = self.cv_scores_.mean(axis=1)
        best = float(np.min(mean))
        if self.selection == "1se" and self.cv_scores_.shape[1] > 1:
            se = self.cv_scores_.std(axis=1, ddof=1) / np.sqrt(self.cv_scores_.shape[1])
            limit = best + se[int(np.argmin(mean))]
        else:
            limit = best + 1e-12 * abs(best)  # exact ties (identical fits), up to rounding
        self.best_index_ = int(np.flatnonzero(mean <= limit)[0])  # alphas are decreasing
        self.alpha_ = float(alphas[self.best_index_])
        paths = [r[2] for r in results]
        if self.refit:
            path = problem.path(
                alphas, self.penalize_first, tol=self.tol, max_iter=self.max_iter, base=base
            )
            originals = [problem.to_original(t) for t in path.thetas]
            self.coef_path_ = np.stack([c for c, _ in originals])
            self.intercept_path_ = np.stack([i for _, i in originals])
            self.coef_ = self.coef_path_[self.best_index_].copy()
            self.intercept_ = self.intercept_path_[self.best_index_].copy()
            self.n_iter_ = path.n_iter
            theta = path.thetas[self.best_index_]
            self.log_likelihood_ = -problem.weight_sum * problem.loss(problem.eta(theta))
            paths.append(path)
        else:
            fold_fits = [r[1][self.best_index_] for r in results]
            self.coef_ = np.mean([c for c, _ in fold_fits], axis=0)
            self.intercept_ = np.mean([i for _, i in fold_fits], axis=0)
            self.n_iter_ = np.sum([p.n_iter for p in paths], axis=0)
            proba, _ = cumulative_to_proba(X @ self.coef_.T + self.intercept_)
            p_obs = np.maximum(proba[np.arange(codes.shape[0]), codes], 1e-300)
            self.log_likelihood_ = float(sample_weight @ np.log(p_obs))
        _warn_not_converged(type(self).__name__, paths, self.tol)
        self._check_separation(
            problem, all(bool(p.converged[self.best_index_]) for p in paths)
        )
        self.n_crossings_ = count_crossings(X @ self.coef_.T + self.intercept_)
        return self

    def plot_cv(self, ax=None):
        """Plot the mean held-out loss (with one standard error) against the penalty.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when ``None``.

        Returns
        -------
        ax : matplotlib Axes
            The axes drawn on.
        """
        from ..plotting._base import get_axes

        check_is_fitted(self)
        _, ax = get_axes(ax, caller="PRESTOClassifierCV.plot_cv")
        mean = self.cv_scores_.mean(axis=1)
        n_folds = self.cv_scores_.shape[1]
        se = (
            self.cv_scores_.std(axis=1, ddof=1) / np.sqrt(n_folds)
            if n_folds > 1
            else np.zeros_like(mean)
        )
        positive = self.alphas_ > 0
        ax.errorbar(self.alphas_[positive], mean[positive], yerr=se[positive], marker="o",
                    ms=3, capsize=2)
        ax.axvline(self.alpha_, color="k", ls="--", lw=1, label=f"alpha_ = {self.alpha_:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("alpha (penalty)")
        name = self.scoring if isinstance(self.scoring, str) else "loss"
        ax.set_ylabel(f"mean held-out {name}")
        ax.legend()
        return ax

    def plot_path(self, ax=None, *, boundary=-1):
        """Plot one boundary's slopes (original scale) along the penalty path.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when ``None``.
        boundary : int, default=-1
            Which boundary: row of ``coef_path_[:, boundary]``; the default is
            the last (rare-class) boundary.

        Returns
        -------
        ax : matplotlib Axes
            The axes drawn on.
        """
        from ..plotting._base import get_axes

        check_is_fitted(self)
        if not hasattr(self, "coef_path_"):
            raise AttributeError("plot_path needs the path on all data: fit with refit=True.")
        _, ax = get_axes(ax, caller="PRESTOClassifierCV.plot_path")
        positive = self.alphas_ > 0
        names = self._feature_names()
        paths = self.coef_path_[positive, boundary, :]
        for j in range(paths.shape[1]):
            ax.plot(self.alphas_[positive], paths[:, j], label=names[j])
        ax.axvline(self.alpha_, color="k", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("alpha (penalty)")
        ax.set_ylabel(f"coefficient of {self._boundary_names()[boundary]}")
        if paths.shape[1] <= 12:
            ax.legend(fontsize="small", ncol=2)
        return ax
