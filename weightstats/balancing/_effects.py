"""Treatment-effect estimates from balancing weights, with standard errors.

Generic: everything here works from a weight vector, the treatment and the
estimand, whatever method produced the weights.

Point estimates are Hajek (self-normalised) weighted differences of means,
optionally augmented by an outcome model (the doubly robust form, with
cross-fitting for flexible models). Standard errors (``se=``):

* ``"residual"``: the linearisation (influence-function) variance of the
  weighted means on the residuals of a cross-fitted outcome model, with the
  weights held fixed. Balancing weights make the weighted mean of every
  function they balance match its target, so what the outcome model explains
  cancels from the error and only the residuals remain (the variance of the
  doubly robust estimator, reported around the plain estimate);
* ``"m-estimation"``: the stacked estimating equations of the weight model
  (logistic propensity score, entropy-balancing dual) and the weighted means,
  a sandwich that includes the estimation of the weights (as R's WeightIt);
* ``"sandwich"``: the raw-outcome linearisation with the weights *treated as
  fixed*, ignoring both the covariates and the estimation of the weights
  (conservative for balancing weights, often by far);
* ``"bootstrap"``: the treated and control groups are resampled separately,
  the weights re-estimated on every resample, and the standard deviation of
  the replicates is the standard error (percentile intervals are available
  too).
"""

import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ..utils import (
    EstimateResults,
    check_binary_treatment,
    check_finite_vector,
    check_sample_weight,
    progress,
)
from ._diagnostics import _kish

__all__ = ["EffectResults", "bootstrap_replicates", "weighted_effect"]


_ESTIMANDS = ("ATT", "ATC", "ATE", "ATO")
_SE_METHODS = ("auto", "residual", "m-estimation", "sandwich", "bootstrap")
#: Folds of the cross-fitted outcome model behind ``se="residual"``.
RESIDUAL_FOLDS = 5


class EffectResults(EstimateResults):
    """A treatment-effect estimate with its standard error and intervals.

    Returned by ``estimate_effect`` of every balancer (and by
    :func:`weighted_effect`); a :class:`~weightstats.utils.EstimateResults`
    with one parameter named after the estimand, plus the potential-outcome
    means and the weighting diagnostics in :meth:`summary`.

    Parameters
    ----------
    effect : float
        The point estimate.
    se : float
        Its standard error.
    estimand : {"ATT", "ATC", "ATE", "ATO"}, default="ATT"
        What is estimated; names the parameter.
    method : str, default="weighting"
        How the weights were made (shown in the summary).
    se_method : {"residual", "m-estimation", "sandwich", "bootstrap"}, default="sandwich"
        How ``se`` was computed (shown in the summary, with what it assumes).
    mean_treated, mean_control : float, default=None
        Estimated mean outcomes of the two arms for the estimand's population.
    n_treated, n_control : int, default=None
        Group sizes.
    ess : dict, default=None
        Effective sample sizes ``{"treated": ..., "control": ...}``.
    augment : str, default=None
        Description of the outcome model, if any.
    bootstrap_estimates : array-like of shape (n_resamples,), default=None
        Bootstrap replicates of the effect.
    info : dict, default=None
        Extra key-value pairs for the summary.
    notes : list of str, default=None
        Extra notes for the summary.

    Attributes
    ----------
    effect : float
        The point estimate (same as ``estimate``).
    se : float
        Standard error.
    mean_treated, mean_control : float or None
        Potential-outcome means.

    Examples
    --------
    >>> from weightstats.balancing import EffectResults
    >>> res = EffectResults(1500.0, 600.0, estimand="ATT", method="MMD balancing")
    >>> res.effect, res.se
    (1500.0, 600.0)
    >>> res.conf_int(0.05).round(1)
    array([ 324., 2676.])
    >>> res.summary_frame().round(2).loc["ATT", ["estimate", "se", "pvalue"]].tolist()
    [1500.0, 600.0, 0.01]
    """

    def __init__(self, effect, se, *, estimand="ATT", method="weighting", se_method="sandwich",
                 mean_treated=None, mean_control=None, n_treated=None, n_control=None, ess=None,
                 augment=None, bootstrap_estimates=None, info=None, notes=None):
        if estimand not in _ESTIMANDS:
            raise ValueError(f"estimand must be one of {_ESTIMANDS}; got {estimand!r}.")
        summary_info = {"estimand": estimand, "method": method}
        if augment is not None:
            summary_info["outcome model"] = augment
        summary_info["standard errors"] = se_method
        if n_treated is not None:
            summary_info["treated / control"] = f"{n_treated} / {n_control}"
        if ess is not None:
            summary_info["ESS treated / control"] = f"{ess['treated']:.1f} / {ess['control']:.1f}"
        if mean_treated is not None:
            summary_info["mean outcome treated"] = float(mean_treated)
            summary_info["mean outcome control"] = float(mean_control)
        summary_info.update(info or {})
        all_notes = []
        if se_method == "sandwich":
            all_notes.append(
                "Sandwich standard errors treat the weights as fixed (not estimated) and use the "
                "raw outcome, ignoring what the covariates explain (se='residual' accounts for "
                "it); use se='bootstrap' to include the uncertainty of the weights."
            )
        elif se_method == "residual":
            all_notes.append(
                "Standard errors from the residuals of a cross-fitted outcome model, with the "
                "weights treated as fixed."
            )
        elif se_method == "m-estimation":
            all_notes.append(
                "M-estimation standard errors: the estimating equations of the weights and of "
                "the weighted means are stacked, so the estimation of the weights is included."
            )
        elif se_method == "bootstrap" and bootstrap_estimates is not None:
            all_notes.append(
                f"Bootstrap standard error from {len(bootstrap_estimates)} resamples, "
                "re-estimating the weights every time."
            )
        all_notes += list(notes or [])
        super().__init__(
            effect, se, names=[estimand], bootstrap_estimates=bootstrap_estimates,
            title=f"Treatment effect ({estimand})", info=summary_info, notes=all_notes,
        )
        self.estimand = estimand
        self.method = method
        self.se_method = se_method
        self.mean_treated = None if mean_treated is None else float(mean_treated)
        self.mean_control = None if mean_control is None else float(mean_control)
        self.n_treated = n_treated
        self.n_control = n_control
        self.ess = ess

    @property
    def effect(self):
        """The point estimate of the treatment effect."""
        return self.estimate


def _outcome_model(augment):
    """An unfitted outcome model from ``augment`` ("ols" or a regressor)."""
    if isinstance(augment, str):
        if augment != "ols":
            raise ValueError(
                f"augment must be None, 'ols' or a scikit-learn regressor; got {augment!r}."
            )
        from sklearn.linear_model import LinearRegression

        return LinearRegression()
    if hasattr(augment, "fit") and hasattr(augment, "predict"):
        return clone(augment)
    raise ValueError(f"augment must be None, 'ols' or a scikit-learn regressor; got {augment!r}.")


def _fit_outcome_model(augment, X, y, sample_weight):
    model = _outcome_model(augment)
    try:
        model.fit(X, y, sample_weight=sample_weight)
    except TypeError:  # regressors without sample_weight support
        model.fit(X, y)
    return model


def _check_cross_fit(cross_fit):
    if cross_fit is None:
        return None
    if not isinstance(cross_fit, numbers.Integral) or isinstance(cross_fit, bool) or (
            cross_fit < 2):
        raise ValueError(f"cross_fit must be None or an integer >= 2 (folds); got {cross_fit!r}.")
    return int(cross_fit)


def outcome_predictions(augment, X, y, source, sample_weight, *, cross_fit=None,
                        random_state=None):
    """Outcome-model predictions for every row, fitted on the rows in ``source``.

    With ``cross_fit=K`` the rows are split into K folds (within the source
    and the other rows separately, so every fold holds source rows) and each
    row is predicted by the model fitted on the source rows of the other
    folds, so no residual comes from a model that saw that row.

    Parameters
    ----------
    augment : "ols" or regressor
        The outcome model (cloned).
    X : ndarray of shape (n_samples, n_features)
        Covariates.
    y : ndarray of shape (n_samples,)
        Outcomes.
    source : ndarray of bool of shape (n_samples,)
        Rows to fit on.
    sample_weight : ndarray of shape (n_samples,)
        Frequency weights (rows with zero weight are not fitted on).
    cross_fit : int, default=None
        Number of folds; ``None`` fits once on all source rows.
    random_state : int, RandomState instance or None, default=None
        Seeds a random fold assignment. ``None`` assigns the folds from the
        data themselves (rows ordered by a hash of their covariates, outcome
        and weight), so the predictions are reproducible and do not depend
        on the order of the rows.

    Returns
    -------
    predictions : ndarray of shape (n_samples,)
    """
    folds_k = _check_cross_fit(cross_fit)
    fit_rows = source & (sample_weight > 0)
    if folds_k is None:
        model = _fit_outcome_model(augment, X[fit_rows], y[fit_rows], sample_weight[fit_rows])
        return np.asarray(model.predict(X), dtype=float)
    if fit_rows.sum() < 2 * folds_k:
        raise ValueError(
            f"cross_fit={folds_k} needs at least {2 * folds_k} units in the arm the outcome "
            f"model is fitted on; it has {int(fit_rows.sum())}."
        )
    order = _row_order(X, y, sample_weight, random_state)
    folds = np.empty(y.shape[0], dtype=np.intp)
    for mask in (fit_rows, ~fit_rows):
        idx = order[mask[order]]
        folds[idx] = np.arange(idx.size) % folds_k
    predictions = np.empty(y.shape[0])
    for k in range(folds_k):
        train = fit_rows & (folds != k)
        model = _fit_outcome_model(augment, X[train], y[train], sample_weight[train])
        rows = folds == k
        predictions[rows] = model.predict(X[rows])
    return predictions


def _row_order(X, y, sample_weight, random_state):
    """A permutation of the rows: seeded, or (``None``) fixed by the data.

    The data-fixed order sorts rows by a hash of their values, so the same
    data in any row order give the same folds: a default standard error must
    not change from run to run or with the order of the rows. Identical rows
    may swap places, which changes nothing.
    """
    if random_state is not None:
        return check_random_state(random_state).permutation(y.shape[0])
    import pandas as pd

    rows = pd.DataFrame(np.column_stack([X, y, sample_weight]))
    return np.argsort(pd.util.hash_pandas_object(rows, index=False).to_numpy(), kind="stable")


def _arm_mean(y, source, target, w, s, pred=None, adjust=True):
    """Estimated mean of the arm ``source`` over the population ``target``.

    Returns the mean and its influence values (one per unit, zero elsewhere)
    with the weights held fixed. With predictions ``pred`` of an outcome
    model the influence values use its residuals; the mean is then the
    doubly robust one (``adjust=True``) or the plain weighted mean.
    """
    n = y.shape[0]
    psi = np.zeros(n)
    ws = w[source] * s[source]
    W = ws.sum()
    mean = float(ws @ y[source]) / W
    if pred is None:
        psi[source] = w[source] * (y[source] - mean) / W
        return mean, psi
    resid = y[source] - pred[source]
    resid_mean = float(ws @ resid) / W
    st = s[target]
    N = st.sum()
    fitted_mean = float(st @ pred[target]) / N
    psi[source] += w[source] * (resid - resid_mean) / W
    psi[target] += (pred[target] - fitted_mean) / N
    return (fitted_mean + resid_mean if adjust else mean), psi


def _effect_arms(treated, estimand):
    """``(source, target, reweighted)`` for the treated and the control mean."""
    everyone = np.ones_like(treated)
    if estimand == "ATT":
        return (treated, treated, False), (~treated, treated, True)
    if estimand == "ATC":
        return (treated, ~treated, True), (~treated, ~treated, False)
    return (treated, everyone, True), (~treated, everyone, True)


def _effect_and_influence(y, X, treated, w, s, estimand, augment, *, cross_fit=None,
                          random_state=None, adjust=True):
    """Point estimate, influence values and the two potential-outcome means.

    ``augment`` is the outcome model of each reweighted arm (None: none);
    ``adjust=False`` keeps the plain weighted means and uses the model only
    for the influence values (the residual standard error).
    """
    n = y.shape[0]
    means, psis = [], []
    for source, target, reweighted in _effect_arms(treated, estimand):
        if reweighted and augment is not None:
            pred = outcome_predictions(augment, X, y, source, s, cross_fit=cross_fit,
                                       random_state=random_state)
            mean, psi = _arm_mean(y, source, target, w, s, pred, adjust)
        else:
            mean, psi = _arm_mean(y, source, target, w if reweighted else np.ones(n), s)
        means.append(mean)
        psis.append(psi)
    return means[0] - means[1], psis[0] - psis[1], means[0], means[1]


# ----------------------------------------------------------------------------- M-estimation


class WeightEquations:
    """Estimating equations of a weight model, for M-estimation standard errors.

    The interface between a balancer and :func:`m_estimation_influence`: the
    weights ``w(gamma)`` solve ``sum_i s_i g_i(gamma) = 0`` for parameters
    ``gamma`` (propensity coefficients, entropy-balancing multipliers and the
    target moments, ...). Everything is evaluated at the fitted ``gamma``.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, k)
        ``g_i(gamma)``, one row per unit (zero for units a part does not use).
    jacobian : ndarray of shape (k, k)
        ``sum_i s_i d g_i / d gamma``.
    weights : ndarray of shape (n_samples,)
        The weights (any positive scale within an arm; 1 for units that are
        not reweighted).
    weight_gradient : ndarray of shape (n_samples, k)
        ``d w_i / d gamma`` (on the same scale as ``weights``).
    name : str
        Description for the summary (e.g. "logistic propensity score").

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing._effects import WeightEquations
    >>> eq = WeightEquations(np.zeros((4, 1)), np.eye(1), np.ones(4), np.zeros((4, 1)), "none")
    >>> eq.scores.shape
    (4, 1)
    """

    def __init__(self, scores, jacobian, weights, weight_gradient, name):
        self.scores = np.asarray(scores, dtype=float)
        self.jacobian = np.asarray(jacobian, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.weight_gradient = np.asarray(weight_gradient, dtype=float)
        self.name = name


def m_estimation_influence(equations, y, treated, s):
    """Influence values of ``mean_1 - mean_0`` from stacked estimating equations.

    Stacks the weight model's equations with those of the two Hajek means,
    ``sum_i s_i a_i w_i (y_i - mu_a) = 0`` (``a_i``: unit ``i`` in arm ``a``),
    and linearises: ``theta_hat - theta ~= -A^-1 sum_i s_i psi_i`` with
    ``A = sum_i s_i d psi_i / d theta``. The influence value of the effect
    is ``-c' A^-1 psi_i`` with ``c`` picking ``mu_1 - mu_0``; its variance
    estimate ``sum_i s_i IF_i^2`` is the HC0 sandwich ``c' A^-1 B A^-T c``.

    Parameters
    ----------
    equations : WeightEquations
        The weight model's equations.
    y : ndarray of shape (n_samples,)
        Outcomes.
    treated : ndarray of bool of shape (n_samples,)
        Group membership.
    s : ndarray of shape (n_samples,)
        Sample (frequency) weights.

    Returns
    -------
    effect : float
        ``mu_1 - mu_0``.
    influence : ndarray of shape (n_samples,)
        Influence values (``sum(s * influence**2)`` is the variance).
    means : tuple of float
        ``(mu_1, mu_0)``.
    """
    G, J, w, D = (equations.scores, equations.jacobian, equations.weights,
                  equations.weight_gradient)
    k = G.shape[1]
    arms = (treated, ~treated)
    mus, psis, rows = [], [], []
    for a in arms:
        wa = np.where(a, w, 0.0)
        mu = float((s * wa) @ y) / float(s @ wa)
        mus.append(mu)
        psis.append(wa * (y - mu))
        rows.append(((s * np.where(a, y - mu, 0.0)) @ D, -float(s @ wa)))
    A = np.zeros((k + 2, k + 2))
    A[:k, :k] = J
    for j, (cross, diag) in enumerate(rows):
        A[k + j, :k] = cross
        A[k + j, k + j] = diag
    c = np.zeros(k + 2)
    c[k], c[k + 1] = 1.0, -1.0
    # Least squares: redundant balance functions make the weight block singular.
    v = np.linalg.lstsq(A.T, c, rcond=1e-12)[0]
    Psi = np.column_stack([G, psis[0], psis[1]])
    return mus[0] - mus[1], -(Psi @ v), (mus[0], mus[1])


def logistic_weight_equations(X, treated, propensity, weights, estimand, sample_weight):
    """:class:`WeightEquations` of inverse probability weights from a logistic model.

    For a propensity score ``e = expit([1, X] gamma)`` fitted by maximum
    likelihood (score ``[1, x_i] (T_i - e_i)``, Jacobian
    ``-sum s e (1 - e) [1, x][1, x]'``) and weights that are functions of ``e``:
    ATE ``1/e``, ``1/(1-e)``; ATT 1, ``e/(1-e)``; ATC ``(1-e)/e``, 1; ATO
    ``1-e``, ``e``. Any normalisation of the weights within an arm leaves
    the Hajek means, and so these equations, unchanged. The equations do not
    depend on how the model is parametrised (any affine recoding of ``X``
    gives the same standard error).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The covariates of the propensity model (an intercept is added).
    treated : ndarray of bool of shape (n_samples,)
        Group membership.
    propensity : ndarray of shape (n_samples,)
        Fitted propensity scores (maximum likelihood, not clipped).
    weights : ndarray of shape (n_samples,)
        The balancing weights (any normalisation within each arm).
    estimand : {"ATT", "ATC", "ATE", "ATO"}
        Which weights.
    sample_weight : ndarray of shape (n_samples,)
        The sample weights of the fit.

    Returns
    -------
    equations : WeightEquations
    """
    design = np.column_stack([np.ones(X.shape[0]), X])
    e = np.asarray(propensity, dtype=float)
    t = np.asarray(treated, dtype=bool)
    G = design * (t.astype(float) - e)[:, None]
    J = -(design * (sample_weight * e * (1.0 - e))[:, None]).T @ design
    # d w / d eta (eta the linear predictor) = w * dlog(w)/d eta.
    if estimand == "ATE":
        dlog = np.where(t, -(1.0 - e), e)
    elif estimand == "ATT":
        dlog = np.where(t, 0.0, 1.0)
    elif estimand == "ATC":
        dlog = np.where(t, -1.0, 0.0)
    elif estimand == "ATO":
        dlog = np.where(t, -e, 1.0 - e)
    else:
        raise ValueError(f"estimand must be ATT, ATC, ATE or ATO; got {estimand!r}.")
    D = design * (weights * dlog)[:, None]
    return WeightEquations(G, J, weights, D, "logistic propensity score")


def _check_effect_inputs(y, treatment, weights, X, sample_weight, estimand, augment, pos_label):
    if estimand not in _ESTIMANDS:
        raise ValueError(f"estimand must be one of {_ESTIMANDS}; got {estimand!r}.")
    y = check_finite_vector(y, "y")
    n = y.shape[0]
    treated, _ = check_binary_treatment(treatment, pos_label=pos_label, n_samples=n)
    w = check_finite_vector(weights, "weights", n_samples=n)
    if np.any(w < 0):
        raise ValueError("weights must be non-negative.")
    s = check_sample_weight(sample_weight, y.reshape(-1, 1))
    for name, mask in (("treated", treated), ("control", ~treated)):
        if not np.any((w * s)[mask] > 0):
            raise ValueError(f"the {name} group has no unit with positive weight.")
    if augment is not None:
        if estimand == "ATO":
            raise ValueError(
                "augment is not available for estimand='ATO': the outcome model's predictions "
                "would have to be averaged over the overlap population; use augment=None."
            )
        if X is None:
            raise ValueError("augment needs the covariates X.")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"X must have shape (n_samples, n_features) with {n} rows.")
    return y, treated, w, s, X


def weighted_effect(y, treatment, weights, *, estimand="ATT", X=None, augment=None,
                    cross_fit=None, sample_weight=None, pos_label=None, method="weighting",
                    random_state=None):
    """Weighted treatment-effect estimate with a sandwich standard error.

    The Hajek (self-normalised) weighted difference of the two arms' mean
    outcomes, for weights from any method. With ``augment``, an outcome model
    is fitted (with the sample weights) on each reweighted arm and the
    estimate becomes the doubly robust ``mean over the target of the model's
    predictions + weighted mean of the arm's residuals``.

    The standard error is the linearisation (influence-function, HC0)
    standard error with the weights **treated as fixed**: it ignores that the
    weights were estimated from the same data. Bootstrap the whole procedure
    (``estimate_effect(..., se="bootstrap")`` of a balancer) to include it.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes.
    treatment : array-like of shape (n_samples,)
        Binary treatment.
    weights : array-like of shape (n_samples,)
        Non-negative balancing weights (1 for units that are not reweighted).
    estimand : {"ATT", "ATC", "ATE", "ATO"}, default="ATT"
        ATT: the treated arm's plain mean minus the weighted control mean;
        ATC: the weighted treated mean minus the control mean; ATE and ATO
        (overlap weights): both weighted.
    X : array-like of shape (n_samples, n_features), default=None
        Covariates, needed for ``augment``.
    augment : None, "ols" or regressor, default=None
        Outcome model of the doubly robust estimate: ``"ols"`` (linear
        regression) or any scikit-learn regressor (cloned and fitted on each
        reweighted arm).
    cross_fit : int, default=None
        Cross-fit the outcome model over this many folds (each unit's
        prediction comes from a model fitted without it), as flexible
        (machine-learning) outcome models need for valid standard errors;
        ``None`` fits it once on the whole arm.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights multiplying the balancing weights.
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.
    method : str, default="weighting"
        Name of the weighting method, for the summary.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds of ``cross_fit``.

    Returns
    -------
    results : EffectResults
        ``effect``, ``se``, ``conf_int()``, ``summary()``, ...

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import weighted_effect
    >>> y = np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    >>> t = np.array([0, 0, 0, 1, 1, 1])
    >>> res = weighted_effect(y, t, weights=np.ones(6))
    >>> res.effect, round(res.se, 4)
    (4.0, 0.6667)
    """
    y, treated, w, s, X = _check_effect_inputs(
        y, treatment, weights, X, sample_weight, estimand, augment, pos_label
    )
    effect, psi, mean1, mean0 = _effect_and_influence(
        y, X, treated, w, s, estimand, augment, cross_fit=cross_fit, random_state=random_state)
    se = float(np.sqrt(np.sum(s * psi**2)))
    ess = {
        "treated": _kish(w[treated] * s[treated]),
        "control": _kish(w[~treated] * s[~treated]),
    }
    return EffectResults(
        effect, se, estimand=estimand, method=method,
        se_method="sandwich" if augment is None else "residual",
        mean_treated=mean1, mean_control=mean0, n_treated=int(treated.sum()),
        n_control=int((~treated).sum()), ess=ess, augment=_describe(augment, cross_fit),
    )


def _describe(augment, cross_fit=None):
    if augment is None:
        return None
    if isinstance(augment, str):
        name = "OLS" if augment == "ols" else augment
    else:
        name = type(augment).__name__
    folds = _check_cross_fit(cross_fit)
    return name if folds is None else f"{name}, {folds}-fold cross-fitted"


def stratified_resample(treated, rng):
    """Row indices of one bootstrap resample that keeps both group sizes."""
    idx1 = np.flatnonzero(treated)
    idx0 = np.flatnonzero(~treated)
    return np.concatenate([rng.choice(idx1, idx1.size), rng.choice(idx0, idx0.size)])


def bootstrap_replicates(statistic, treated, *, n_resamples=200, random_state=None, n_jobs=None,
                         verbose=0, desc="bootstrap"):
    """Evaluate ``statistic`` on stratified bootstrap resamples.

    Treated and control units are resampled separately (with replacement),
    so every resample keeps both group sizes. Replicates whose statistic
    raises ``ValueError`` (e.g. a resample on which exact balance is
    infeasible) are dropped and counted; replicates that did not converge are
    kept and counted: ``statistic`` may return ``(value, converged)``, else
    a ``ConvergenceWarning`` raised during the call counts.

    Parameters
    ----------
    statistic : callable
        ``indices -> float`` or ``indices -> (float, converged)``; must be
        picklable for ``n_jobs > 1``.
    treated : ndarray of bool of shape (n_samples,)
        Group membership.
    n_resamples : int, default=200
        Number of resamples.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling.
    n_jobs : int, default=None
        Parallel workers (joblib processes).
    verbose : int, default=0
        Progress bar when positive.
    desc : str, default="bootstrap"
        Label of the progress bar.

    Returns
    -------
    replicates : ndarray of shape (n_successful,)
        The statistic on each successful resample.
    n_failed : int
        Resamples dropped because the statistic raised ``ValueError``.
    n_unconverged : int
        Kept resamples whose fit did not converge.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import bootstrap_replicates
    >>> y = np.arange(10.0)
    >>> treated = y >= 5
    >>> reps, failed, unconverged = bootstrap_replicates(
    ...     lambda idx: y[idx].mean(), treated, n_resamples=50, random_state=0)
    >>> reps.shape, failed
    ((50,), 0)
    """
    if not isinstance(n_resamples, numbers.Integral) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2; got {n_resamples!r}.")
    rng = check_random_state(random_state)
    seeds = rng.randint(0, 2**31 - 1, size=n_resamples)
    tasks = (delayed(_one_replicate)(statistic, treated, seed) for seed in seeds)
    if n_jobs in (None, 1):
        results = [_one_replicate(statistic, treated, seed) for seed in
                   progress(seeds, verbose=verbose, desc=desc)]
    else:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
        results = list(progress(parallel(tasks), verbose=verbose, desc=desc, total=n_resamples))
    values = np.array([r[0] for r in results if r[0] is not None], dtype=float)
    n_failed = sum(r[0] is None for r in results)
    n_unconverged = sum(r[1] for r in results)
    return values, n_failed, n_unconverged


def _one_replicate(statistic, treated, seed):
    idx = stratified_resample(treated, np.random.default_rng(seed))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            value = statistic(idx)
        except ValueError:
            return None, False
    if isinstance(value, tuple):
        # (estimate, converged): the statistic knows its fit's status.
        value, converged = value
        return float(value), not converged
    unconverged = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(value), unconverged


# ----------------------------------------------------------------------------- balancers


def _weight_equations(balancer):
    """The balancer's :class:`WeightEquations`, or None when it has none.

    Balancers provide them by a ``_weight_equations()`` method; inverse
    probability weights from the default (maximum-likelihood logistic)
    propensity model, unclipped, get them from :func:`logistic_weight_equations`.
    """
    method = getattr(balancer, "_weight_equations", None)
    if method is not None:
        return method()
    if hasattr(balancer, "propensity_") and getattr(balancer, "estimator", True) is None:
        if balancer.solver_info_.get("n_clipped", 0):
            return None
        model = balancer.estimator_
        X = balancer._X_fit
        # The model's own design (kept, standardised columns) when it exposes it:
        # the equations do not depend on the parametrisation, but dropped
        # (constant or aliased) columns would make them singular.
        design = model.design(X)[:, 1:] if hasattr(model, "design") else X
        return logistic_weight_equations(design, balancer.treated_, balancer.propensity_,
                                         balancer.weights_, balancer.estimand,
                                         balancer._sample_weight_fit)
    return None


def _auto_se(balancer):
    preferred = getattr(balancer, "_default_se", None)
    if preferred is not None:
        return preferred()
    if hasattr(balancer, "propensity_"):
        return "m-estimation" if _weight_equations(balancer) is not None else "sandwich"
    return "residual"


def _residual_model(balancer):
    model = getattr(balancer, "_residual_outcome_model", None)
    if model is not None:
        return model()
    from ._outcome import KernelRidgeOutcome

    return KernelRidgeOutcome()


def _describe_model(model):
    bandwidth = getattr(model, "bandwidth", None)
    if bandwidth is not None:
        shown = bandwidth if isinstance(bandwidth, str) else f"{bandwidth:.3g}"
        return f"kernel ridge (Gaussian, bandwidth {shown}, + linear)"
    return _describe(model)


def estimate_balancer_effect(balancer, y, *, augment=None, se="auto", n_bootstrap=200,
                             cross_fit=None):
    """``estimate_effect`` of a fitted balancer (see :meth:`BaseBalancer.estimate_effect`)."""
    X, treated, s = balancer._X_fit, balancer.treated_, balancer._sample_weight_fit
    if se not in _SE_METHODS:
        raise ValueError(f"se must be one of {_SE_METHODS}; got {se!r}.")
    n = X.shape[0]
    y = check_finite_vector(y, "y")
    if y.shape[0] != n:
        raise ValueError(
            f"the outcome y has {y.shape[0]} entries but the balancer was fitted on {n} rows; "
            "pass the outcomes of the rows given to fit, in the same order."
        )
    estimand = balancer.estimand
    y, treated, w, s, _ = _check_effect_inputs(y, treated, balancer.weights_, X, s, estimand,
                                               augment, None)
    folds = _check_cross_fit(cross_fit)
    method = se
    if se == "auto":
        method = "residual" if augment is not None else _auto_se(balancer)
    if augment is not None and method in ("sandwich", "residual"):
        method = "residual"  # the doubly robust estimate's own influence values
    info = dict(balancer._summary_info())
    common = dict(
        estimand=estimand, method=balancer._method_name(), n_treated=int(treated.sum()),
        n_control=int((~treated).sum()), ess=balancer.ess_,
        augment=_describe(augment, folds),
    )
    rs = balancer.random_state
    if method == "m-estimation":
        if augment is not None:
            raise ValueError("se='m-estimation' estimates the plain weighted difference; use "
                             "augment=None, or se='residual' / 'bootstrap' with augment.")
        equations = _weight_equations(balancer)
        if equations is None:
            raise ValueError(
                "se='m-estimation' needs the estimating equations of the weights: available "
                "for EntropyBalancer and for PropensityBalancer with its default logistic "
                "model and no clipping; use se='residual' or se='bootstrap'."
            )
        effect, psi, (mean1, mean0) = m_estimation_influence(equations, y, treated, s)
        info["weight model (SE)"] = equations.name
        return EffectResults(effect, float(np.sqrt(np.sum(s * psi**2))), se_method=method,
                             mean_treated=mean1, mean_control=mean0, info=info, **common)
    if method == "residual":
        if estimand == "ATO":
            raise ValueError(
                "se='residual' is not available for estimand='ATO' (the outcome model would "
                "have to be averaged over the overlap population); use se='m-estimation'."
            )
        model = augment if augment is not None else _residual_model(balancer)
        k = folds if augment is not None else (folds or RESIDUAL_FOLDS)
        effect, psi, mean1, mean0 = _effect_and_influence(
            y, X, treated, w, s, estimand, model, cross_fit=k, random_state=rs,
            adjust=augment is not None)
        if augment is None:
            info["outcome model (SE)"] = f"{_describe_model(model)}, {k}-fold cross-fitted"
        return EffectResults(effect, float(np.sqrt(np.sum(s * psi**2))), se_method=method,
                             mean_treated=mean1, mean_control=mean0, info=info, **common)
    effect, psi, mean1, mean0 = _effect_and_influence(y, X, treated, w, s, estimand, None)
    common.update(mean_treated=mean1, mean_control=mean0, info=info)
    if method == "sandwich":
        return EffectResults(effect, float(np.sqrt(np.sum(s * psi**2))), se_method="sandwich",
                             **common)
    if augment is not None:
        effect, _, mean1, mean0 = _effect_and_influence(
            y, X, treated, w, s, estimand, augment, cross_fit=folds, random_state=rs)
        common.update(mean_treated=mean1, mean_control=mean0)
    statistic = _BootstrapEffect(balancer, X, treated, s, y, augment, folds)
    reps, n_failed, n_unconverged = bootstrap_replicates(
        statistic, treated, n_resamples=n_bootstrap, random_state=rs,
        n_jobs=balancer.n_jobs, verbose=balancer.verbose,
    )
    notes = []
    if n_failed:
        notes.append(f"{n_failed} of {n_bootstrap} resamples failed and were dropped.")
        if n_failed > 0.1 * n_bootstrap:
            warnings.warn(
                f"{n_failed} of {n_bootstrap} bootstrap resamples failed; the bootstrap "
                "standard error may be unreliable.", UserWarning, stacklevel=3,
            )
    if n_unconverged:
        notes.append(f"the weights did not converge on {n_unconverged} of the "
                     f"{len(reps)} resamples used.")
    common["info"] = dict(info, **{"resamples with unconverged weights":
                                   f"{n_unconverged} of {len(reps)}"})
    if reps.shape[0] < 2:
        raise ValueError("fewer than 2 bootstrap resamples succeeded; no standard error.")
    return EffectResults(effect, float(np.std(reps, ddof=1)), se_method="bootstrap",
                         bootstrap_estimates=reps, notes=notes, **common)


class _BootstrapEffect:
    """The effect re-estimated on a resample (picklable for joblib).

    Returns ``(effect, converged)``: the refit's own convergence status (the
    refits run without warnings), so the bootstrap reports it.
    """

    def __init__(self, balancer, X, treated, sample_weight, y, augment, cross_fit=None):
        # Replicates run in parallel themselves: one thread each, 0/1 labels.
        self.balancer = clone(balancer).set_params(n_jobs=None, pos_label=None, verbose=0)
        self.X, self.treated, self.s, self.y, self.augment = X, treated, sample_weight, y, augment
        self.cross_fit = cross_fit

    def __call__(self, idx):
        from ._base import _blas_threads

        est = clone(self.balancer)
        est._in_bootstrap = True
        X, treated, s = self.X[idx], self.treated[idx], self.s[idx]
        # The data were validated by the original fit: go straight to the weights.
        with _blas_threads(1):
            weights, info = est._fit_weights(X, treated, s, check_random_state(est.random_state))
        effect, _, _, _ = _effect_and_influence(self.y[idx], X, treated, weights, s,
                                                est.estimand, self.augment,
                                                cross_fit=self.cross_fit, random_state=0)
        return effect, bool(info.get("converged", True))
