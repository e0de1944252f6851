"""The proportional-odds (ordered logit) model: PRESTO's ``alpha -> infinity`` limit."""

import numbers
import warnings

import numpy as np
import scipy.linalg
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..utils import EstimateResults, fill_doc
from ._base import _BaseOrdinalClassifier, warn_if_separated
from ._solver import OrdinalProblem, dense_hessian

__all__ = ["ProportionalOddsClassifier"]


@fill_doc
class ProportionalOddsClassifier(_BaseOrdinalClassifier):
    """Proportional-odds cumulative logit (ordered logit) by maximum likelihood.

    ``P(Y <= k | x) = sigmoid(intercept_[k] + x @ coef_)``: one slope vector
    shared by all boundaries. This is the limit of :class:`PRESTOClassifier`
    as ``alpha`` grows (with ``penalize_first=False``), fitted by the same
    Newton solver, and the model of statsmodels' ``OrderedModel`` and R's
    ``MASS::polr`` with the opposite sign of the slopes (they write
    ``F(threshold_k - x @ beta)``, so ``beta = -coef_`` and
    ``threshold = intercept_``).

    Read more in the :ref:`User Guide <ordinal>`.

    Parameters
    ----------
    classes : array-like of shape (n_classes,), default=None
        The class labels from lowest to highest. ``None``: the categories of a
        pandas ordered Categorical ``y``, or sorted numeric labels; string
        labels without an order raise.
    tol : float, default=1e-8
        Stop when the largest gradient entry of the mean negative
        log-likelihood (standardised predictors) is at most ``tol``.
    max_iter : int, default=100
        Maximum number of Newton iterations.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The ordered class labels, lowest first.
    coef_ : ndarray of shape (n_features,)
        The common slopes (log-odds of ``Y <= k`` per unit of each feature).
        Constant columns get 0.
    intercept_ : ndarray of shape (n_classes - 1,)
        The intercepts (thresholds) of the boundaries, increasing.
    covariance_ : ndarray of shape (n_features + n_classes - 1,) * 2
        Inverse observed information of ``(coef_, intercept_)`` (in that
        order), with sample weights as frequency weights. Rows and columns of
        constant features are NaN (not estimated).
    log_likelihood_ : float
        Weighted log-likelihood at the fit.
    n_iter_ : int
        Newton iterations.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    PRESTOClassifier : Boundary-specific slopes shrunk towards this model.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.ordinal import ProportionalOddsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> y = np.digitize(X @ [1.0, -0.5] + rng.logistic(size=2000), [-1.0, 1.0])
    >>> po = ProportionalOddsClassifier().fit(X, y)
    >>> po.coef_.round(2)  # about -[1, -0.5]: positive slopes favour lower classes
    array([-1.05,  0.49])
    >>> po.intercept_.round(2)  # about the cut points [-1, 1]
    array([-1.01,  0.94])
    """

    _parameter_constraints = {
        "classes": ["array-like", None],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, *, classes=None, tol=1e-8, max_iter=100):
        self.classes = classes
        self.tol = tol
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc
    def fit(self, X, y, sample_weight=None):
        """Fit the proportional-odds model by maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Ordinal labels (at least three classes); see ``classes``.
        {sample_weight}

        Returns
        -------
        self : ProportionalOddsClassifier
            The fitted estimator.
        """
        X, codes, sample_weight = self._validate_fit_data(X, y, sample_weight)
        problem = OrdinalProblem(X, codes, sample_weight, self.classes_.shape[0])
        base = problem.base_fit(False, tol=self.tol, max_iter=self.max_iter)
        theta, n_iter, kkt, converged = base.theta, base.n_iter, base.kkt, base.converged
        coef, intercept = problem.to_original(theta)
        self.coef_ = coef[0]
        self.intercept_ = intercept
        self.n_iter_ = int(n_iter)
        self.log_likelihood_ = -problem.weight_sum * problem.loss(problem.eta(theta))
        self.covariance_ = self._covariance(problem, theta)
        warn_if_separated(self, problem, "shared", converged)
        if not converged:
            warnings.warn(
                f"ProportionalOddsClassifier did not converge: largest gradient entry {kkt:.2e} > "
                f"tol={self.tol:g} after {n_iter} Newton iterations. The classes may be "
                "(nearly) separable, in which case the maximum-likelihood estimate does not "
                "exist; check the data or use PRESTOClassifier(penalize_first=True).",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _covariance(self, problem, theta):
        """Inverse observed information, mapped to ``(coef_, intercept_)``."""
        _, _, A, S = problem.derivatives(theta)
        free = problem.base_free(False).ravel()
        info = problem.weight_sum * dense_hessian(A, S)[np.ix_(free, free)]
        K1, P1 = problem.shape
        p = problem.n_features
        kept = np.flatnonzero(problem.kept)
        cov = np.full((p + K1, p + K1), np.nan)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
                cov_free = scipy.linalg.inv(info, check_finite=True)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
            warnings.warn(
                "the observed information is singular or ill-conditioned (are the classes "
                "separable?): standard errors are not available (covariance_ is NaN).",
                RuntimeWarning,
                stacklevel=3,
            )
            return cov
        # Free coordinates in theta's row-major order: block 0 = (gamma_0, psi),
        # then gamma_1 .. gamma_{K-2}. Original parameters are linear in them:
        # coef_j = psi_j / s_j and intercept_k = sum_{m<=k} gamma_m - sum_j coef_j mean_j.
        n_free = cov_free.shape[0]
        L = np.zeros((kept.size + K1, n_free))
        for idx, j in enumerate(kept):
            L[idx, 1 + idx] = 1.0 / problem.scale[j]
        for k in range(K1):
            L[kept.size + k, 0] = 1.0
            L[kept.size + k, P1 : P1 + k] = 1.0
            L[kept.size + k, 1:P1] = -problem.mean[kept] / problem.scale[kept]
        mapped = L @ cov_free @ L.T
        rows = np.concatenate([kept, p + np.arange(K1)])
        cov[np.ix_(rows, rows)] = mapped
        return cov

    def summary(self, alpha=0.05):
        """Coefficient table with Wald standard errors, tests and intervals.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level of the intervals.

        Returns
        -------
        summary : weightstats.utils.Summary
            A statsmodels-style table of the slopes and intercepts.
        """
        check_is_fitted(self)
        p = self.coef_.shape[0]
        names = (
            [str(n) for n in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{j}" for j in range(p)]
        )
        names += [f"intercept (Y <= {c})" for c in self.classes_[:-1]]
        estimate = np.concatenate([self.coef_, self.intercept_])
        se = np.sqrt(np.diag(self.covariance_))
        keep = np.isfinite(se)
        notes = [
            "Model: P(Y <= k | x) = sigmoid(intercept_k + x @ coef); positive coefficients "
            "favour the lower classes (statsmodels/polr: beta = -coef, thresholds = intercepts).",
            "Standard errors: inverse observed information (sample weights as frequency weights).",
        ]
        if not keep.all():
            dropped = [n for n, k in zip(names, keep, strict=True) if not k]
            notes.append(f"Not estimated (constant columns or singular information): {dropped}.")
        results = EstimateResults(
            estimate[keep],
            se[keep],
            names=[n for n, k in zip(names, keep, strict=True) if k],
            title="Proportional-odds cumulative logit",
            info={
                "classes (low to high)": ", ".join(str(c) for c in self.classes_),
                "log-likelihood": self.log_likelihood_,
                "Newton iterations": self.n_iter_,
            },
            notes=notes,
        )
        return results.summary(alpha)
