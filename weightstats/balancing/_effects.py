"""Treatment-effect estimates from balancing weights, with standard errors.

Generic: everything here works from a weight vector, the treatment and the
estimand, whatever method produced the weights.

Point estimates are Hajek (self-normalised) weighted differences of means,
optionally augmented by an outcome model (the doubly robust form). Standard
errors are either

* ``"sandwich"``: the linearisation (influence-function) variance with the
  weights *treated as fixed*, i.e. ignoring that they were estimated; or
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

__all__ = ["EffectResults", "bootstrap_replicates", "weighted_effect"]

_ESTIMANDS = ("ATT", "ATC", "ATE", "ATO")


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
    se_method : {"sandwich", "bootstrap"}, default="sandwich"
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
                "Sandwich standard errors treat the weights as fixed (not estimated); use "
                "se='bootstrap' to include the uncertainty of the weights."
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


def _fit_outcome_model(augment, X, y, sample_weight):
    if isinstance(augment, str):
        if augment != "ols":
            raise ValueError(
                f"augment must be None, 'ols' or a scikit-learn regressor; got {augment!r}."
            )
        from sklearn.linear_model import LinearRegression

        model = LinearRegression()
    elif hasattr(augment, "fit") and hasattr(augment, "predict"):
        model = clone(augment)
    else:
        raise ValueError(
            f"augment must be None, 'ols' or a scikit-learn regressor; got {augment!r}."
        )
    try:
        model.fit(X, y, sample_weight=sample_weight)
    except TypeError:  # regressors without sample_weight support
        model.fit(X, y)
    return model


def _arm_mean(y, X, source, target, w, s, augment):
    """Estimated mean of the arm ``source`` over the population ``target``.

    Returns the mean and its influence values (one per unit, zero elsewhere)
    with the weights and the outcome model held fixed.
    """
    n = y.shape[0]
    psi = np.zeros(n)
    ws = w[source] * s[source]
    W = ws.sum()
    if augment is None:
        mean = float(ws @ y[source]) / W
        psi[source] = w[source] * (y[source] - mean) / W
        return mean, psi
    model = _fit_outcome_model(augment, X[source], y[source], s[source])
    pred = np.asarray(model.predict(X), dtype=float)
    resid = y[source] - pred[source]
    resid_mean = float(ws @ resid) / W
    st = s[target]
    N = st.sum()
    fitted_mean = float(st @ pred[target]) / N
    psi[source] += w[source] * (resid - resid_mean) / W
    psi[target] += (pred[target] - fitted_mean) / N
    return fitted_mean + resid_mean, psi


def _effect_and_influence(y, X, treated, w, s, estimand, augment):
    """Point estimate, influence values and the two potential-outcome means."""
    everyone = np.ones_like(treated)
    n = y.shape[0]
    if estimand == "ATT":
        target = treated
        mean1, psi1 = _arm_mean(y, X, treated, target, np.ones(n), s, None)
        mean0, psi0 = _arm_mean(y, X, ~treated, target, w, s, augment)
    elif estimand == "ATC":
        target = ~treated
        mean1, psi1 = _arm_mean(y, X, treated, target, w, s, augment)
        mean0, psi0 = _arm_mean(y, X, ~treated, target, np.ones(n), s, None)
    else:
        mean1, psi1 = _arm_mean(y, X, treated, everyone, w, s, augment)
        mean0, psi0 = _arm_mean(y, X, ~treated, everyone, w, s, augment)
    return mean1 - mean0, psi1 - psi0, mean1, mean0


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
                    sample_weight=None, pos_label=None, method="weighting"):
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
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights multiplying the balancing weights.
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.
    method : str, default="weighting"
        Name of the weighting method, for the summary.

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
    effect, psi, mean1, mean0 = _effect_and_influence(y, X, treated, w, s, estimand, augment)
    se = float(np.sqrt(np.sum(s * psi**2)))
    ess = {
        "treated": _kish(w[treated] * s[treated]),
        "control": _kish(w[~treated] * s[~treated]),
    }
    return EffectResults(
        effect, se, estimand=estimand, method=method, se_method="sandwich",
        mean_treated=mean1, mean_control=mean0, n_treated=int(treated.sum()),
        n_control=int((~treated).sum()), ess=ess, augment=_describe(augment),
    )


def _kish(w):
    return float(w.sum() ** 2 / (w @ w)) if w.sum() > 0 else 0.0


def _describe(augment):
    if augment is None:
        return None
    if isinstance(augment, str):
        return "OLS" if augment == "ols" else augment
    return type(augment).__name__


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
    infeasible) are dropped and counted; replicates whose fit warns with
    ``ConvergenceWarning`` are kept and counted.

    Parameters
    ----------
    statistic : callable
        ``indices -> float``; must be picklable for ``n_jobs > 1``.
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
        Resamples whose fit raised a ``ConvergenceWarning``.

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
            value = float(statistic(idx))
        except ValueError:
            return None, False
    unconverged = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return value, unconverged
