"""Inverse probability weighting: the classic propensity-score baseline.

The default propensity model is an unpenalised maximum-likelihood logistic
regression fitted by iteratively reweighted least squares (Newton's method
with step halving), the algorithm of R's ``glm``: it is invariant to the
scale of the covariates, so it converges on raw covariates (earnings in
dollars next to binary indicators) where gradient-based solvers stall.
"""

import numbers
import warnings

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils import check_sample_weight
from ._base import BaseBalancer, fill_balancer_doc

__all__ = ["PropensityBalancer"]


class _LogitMLE(ClassifierMixin, BaseEstimator):
    """Unpenalised logistic regression by IRLS (R's ``glm(family=binomial)``).

    Stops when the relative change in deviance is below ``tol`` (R's
    ``epsilon``); warns with ``ConvergenceWarning`` otherwise, e.g. under
    complete separation, where the maximum-likelihood estimate does not exist.
    """

    def __init__(self, tol=1e-10, max_iter=50):
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] != 2:
            raise ValueError("the propensity model needs exactly two classes.")
        s = check_sample_weight(sample_weight, X)
        Z = np.column_stack([np.ones(X.shape[0]), X])
        beta = np.zeros(Z.shape[1])
        # Start from the intercept-only fit, as glm's starting values do.
        p0 = np.clip(np.average(y01, weights=s), 1e-10, 1 - 1e-10)
        beta[0] = np.log(p0 / (1 - p0))
        dev = _deviance(Z @ beta, y01, s)
        converged = False
        it = 0
        for it in range(1, self.max_iter + 1):
            eta = Z @ beta
            p = expit(eta)
            v = np.maximum(p * (1 - p), 1e-12) * s
            grad = Z.T @ (s * (y01 - p))
            H = (Z * v[:, None]).T @ Z
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
            t = 1.0
            while True:
                new_dev = _deviance(Z @ (beta + t * step), y01, s)
                if new_dev <= dev + 1e-12 * abs(dev) or t < 1e-10:
                    break
                t *= 0.5
            beta = beta + t * step
            change = abs(new_dev - dev) / (abs(new_dev) + 0.1)
            dev = new_dev
            if change < self.tol:
                converged = True
                break
        if not converged:
            warnings.warn(
                f"the logistic propensity model did not converge in {it} iterations (relative "
                f"deviance change {change:.2g}); the groups may be perfectly separated.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.intercept_ = np.array([beta[0]])
        self.coef_ = beta[1:].reshape(1, -1)
        self.n_iter_ = it
        return self

    def decision_function(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def _deviance(eta, y, s):
    # -2 log-likelihood, stable for large |eta|: log(1 + exp(eta)) - y * eta.
    return 2.0 * float(s @ (np.logaddexp(0.0, eta) - y * eta))


@fill_balancer_doc
class PropensityBalancer(BaseBalancer):
    """Inverse probability weighting with a propensity-score model.

    Fits ``e(x) = P(treated | x)`` and weights units by the inverse
    probability of the group they are in, towards the estimand's population:
    ATE ``1/e`` (treated) and ``1/(1-e)`` (controls); ATT 1 and ``e/(1-e)``;
    ATC ``(1-e)/e`` and 1. The default model is an unpenalised
    maximum-likelihood logistic regression fitted by IRLS (as R's ``glm``),
    which converges on unscaled covariates. Read more in the :ref:`User Guide
    <balancing>`.

    Parameters
    ----------
    estimator : classifier, default=None
        Any scikit-learn classifier with ``predict_proba`` (cloned). ``None``
        uses the maximum-likelihood logistic regression.
    estimand : {"ATT", "ATC", "ATE"}, default="ATE"
        The target population of the weights.
    stabilize : bool, default=True
        Normalise the weights within each reweighted arm so that
        ``sum(sample_weight * weights_)`` equals the target's size (the
        Hajek form). ``False`` keeps the raw inverse-probability weights.
        Effect estimates are self-normalised either way.
    clip : float or tuple of (float, float), default=None
        Clip the propensity scores to ``[clip, 1 - clip]`` (or to
        ``[low, high]``) before weighting; ``None`` does not clip.
    {pos_label}
    {n_jobs}
    {random_state}
    {verbose}

    Attributes
    ----------
    {fitted_attributes}
    propensity_ : ndarray of shape (n_samples,)
        Fitted propensity scores (after clipping).
    estimator_ : classifier
        The fitted propensity model.
    solver_info_ : dict
        ``n_clipped`` and the range of the propensity scores.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    EntropyBalancer : Exact covariate-mean balance without a propensity model.
    IPMBalancer : Distributional balance by minimising an integral
        probability metric.

    Examples
    --------
    >>> from weightstats.balancing import PropensityBalancer
    >>> from weightstats.datasets import load_lalonde
    >>> data = load_lalonde(controls="cps")
    >>> ipw = PropensityBalancer(estimand="ATT").fit(data.data, data.treatment)
    >>> res = ipw.estimate_effect(data.target)
    >>> round(res.effect)
    1180
    >>> round(ipw.ess_["control"])
    417
    """

    _parameter_constraints = {
        **BaseBalancer._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "stabilize": ["boolean"],
        "clip": [Interval(numbers.Real, 0, 0.5, closed="neither"), tuple, None],
    }

    def __init__(self, estimator=None, *, estimand="ATE", stabilize=True, clip=None,
                 pos_label=None, n_jobs=None, random_state=None, verbose=0):
        super().__init__(estimand=estimand, pos_label=pos_label, n_jobs=n_jobs,
                         random_state=random_state, verbose=verbose)
        self.estimator = estimator
        self.stabilize = stabilize
        self.clip = clip

    def _clip_bounds(self):
        if self.clip is None:
            return None
        if isinstance(self.clip, tuple):
            if len(self.clip) != 2 or not 0 <= self.clip[0] < self.clip[1] <= 1:
                raise ValueError(f"clip must be (low, high) with 0 <= low < high <= 1; got "
                                 f"{self.clip!r}.")
            return self.clip
        return self.clip, 1.0 - self.clip

    def _fit_weights(self, X, treated, sample_weight, rng):
        bounds = self._clip_bounds()
        model = _LogitMLE() if self.estimator is None else clone(self.estimator)
        labels = treated.astype(np.int64)
        try:
            model.fit(X, labels, sample_weight=sample_weight)
        except TypeError:
            model.fit(X, labels)
        classes = list(getattr(model, "classes_", [0, 1]))
        e = np.asarray(model.predict_proba(X), dtype=float)[:, classes.index(1)]
        n_clipped = 0
        if bounds is not None:
            n_clipped = int(np.sum((e < bounds[0]) | (e > bounds[1])))
            e = np.clip(e, *bounds)
        if np.any((e <= 0) | (e >= 1)):
            raise ValueError(
                "the propensity model predicts probabilities of exactly 0 or 1 (no overlap); "
                "pass clip= to bound them or use IPMBalancer."
            )
        if self.estimand == "ATE":
            w = np.where(treated, 1.0 / e, 1.0 / (1.0 - e))
        elif self.estimand == "ATT":
            w = np.where(treated, 1.0, e / (1.0 - e))
        else:
            w = np.where(treated, (1.0 - e) / e, 1.0)
        if self.stabilize:
            total = sample_weight.sum()
            for mask, reweighted in ((treated, self.estimand in ("ATC", "ATE")),
                                     (~treated, self.estimand in ("ATT", "ATE"))):
                if reweighted:
                    target = {"ATE": total, "ATT": sample_weight[treated].sum(),
                              "ATC": sample_weight[~treated].sum()}[self.estimand]
                    w[mask] *= target / (sample_weight[mask] @ w[mask])
        self.estimator_ = model
        self.propensity_ = e
        info = {
            "solver": ("logistic regression (maximum likelihood, IRLS)" if self.estimator is None
                       else f"{type(model).__name__} propensity model"),
            "n_clipped": n_clipped,
            "propensity_min": float(e.min()),
            "propensity_max": float(e.max()),
            "converged": True,
        }
        if hasattr(model, "n_iter_"):
            info["iterations"] = int(np.max(model.n_iter_))
        return w, info

    def _method_name(self):
        return "inverse probability weighting"
