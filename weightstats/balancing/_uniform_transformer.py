"""Treatment effects by a uniform transformer: a kernel U-statistic after a uniformising map.

After Yu & Wang, "Treatment Effects Estimation by Uniform Transformer"
(arXiv:2008.03738; v1 "Covariate Balancing by Uniform Transformer"). No
public code exists; this is our construction from the paper's abstract and
standard theory, documented in ``docs/user_guide/uniform_transformer.rst``.

Notation for one *arm* ``A`` (units with outcomes, reweighted) and its
*target* ``P`` (the population the arm is reweighted to): ``T`` maps ``A`` to
the uniform distribution on ``[0, 1]^d``, so the density ratio
``f_P(x) / f_A(x)`` is the density ``g`` of ``T(X)`` in ``P`` at ``T(x)``, and

    mu_hat = sum_{i in A} s_i y_i g_i / D,
    g_i = sum_{k in P} s_k K_h(U_k, U_i) - c_i K_h(U_i, U_i) [i in P],
    D = sum_{i in A} s_i (S_P - c_i [i in P]),

with ``U = T(X)``, sample weights ``s`` (``S_P`` their total in ``P``) and the
self-pair correction ``c_i = min(s_i, 1)`` (a row of integer weight ``s``
counts as ``s`` units, none paired with itself). With unit weights this is the
two-sample U-statistic ``(1 / (n_A n_P)) sum_i sum_k K_h(U_k - U_i) y_i``
(ATT: ``A`` = controls, ``P`` = treated) or its leave-one-out version when
``A`` is part of ``P`` (ATE: ``P`` = all units plus unlabelled rows).
That is ``normalize=False``; the default ``normalize=True`` is the Hajek
ratio ``sum s y g / sum s g`` (location-equivariant; see the user guide).
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._tags import ClassifierTags
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from .._kernels._ustat import (
    KERNEL_NAMES,
    kernel_constants,
    kernel_sums,
    kernel_sums_dask,
    reflected_kernel_diagonal,
)
from ..utils import (
    check_binary_treatment,
    check_finite_vector,
    check_group_sizes,
    check_sample_weight,
    fill_doc,
    progress,
)
from ._base import DiagnosticsMixin, OverlapWarning, row_labels
from ._diagnostics import _kish
from ._effects import EffectResults
from ._uniform_maps import (
    apply_uniform_map,
    fit_uniform_map,
    outside_reference_range,
    rank_dependence,
)

__all__ = ["UniformTransformerEstimator"]

# Fewer effective neighbours than this per kernel window and the density
# ratio is mostly noise.
MIN_EFFECTIVE_NEIGHBOURS = 10.0
AUTO_BANDWIDTH_CONSTANT = 1.2
# Share of target units beyond the arm's covariate range, in excess of what
# sampling alone produces, above which fit warns.
MAX_OUTSIDE_SHARE = 0.05
# transformation="rank" with several covariates warns when the largest Spearman
# correlation in a reweighted arm is this many standard errors from zero.
DEPENDENCE_Z = 3.0


def _resolve_transformation(transformation, d, sample_weight):
    """``"auto"``: the exact rank map in one dimension; otherwise the optimal-transport
    rank, or the Rosenblatt map when the weights are not repeat counts."""
    if transformation != "auto":
        return transformation
    if d == 1:
        return "rank"
    w = sample_weight[sample_weight > 0]
    counts = np.allclose(w, w[0], rtol=1e-12, atol=0) or np.allclose(w, np.rint(w), atol=1e-9)
    return "ot" if counts else "rosenblatt"


def auto_bandwidth(n, d, kernel="epanechnikov"):
    """The undersmoothed bandwidth of ``bandwidth="auto"``.

    ``h = min(1, A (delta_K / delta_E) n^(-2 / (4 + d)))`` with ``A = 1.2``.
    The rate balances the U-statistic's squared smoothing bias, ``O(h^4)`` for
    a second-order kernel, against its second-order (degenerate) variance,
    ``O(1 / (n^2 h^d))``, as in quadratic-functional estimation: the square of
    the density-estimation rate ``n^(-1 / (4 + d))``, i.e. less smoothing. The
    bias is then ``o(n^(-1/2))`` for ``d < 4``. ``delta_K / delta_E`` converts
    between kernels by their canonical bandwidths (Marron & Nolan 1988); ``A``
    was set by simulation (``d = 1, 2, 5``, ``n = 500`` to ``8000``; see the
    user guide). ``n`` is the geometric mean of the arm and target sizes.

    Parameters
    ----------
    n : float
        Effective sample size.
    d : int
        Dimension.
    kernel : str, default="epanechnikov"
        Kernel name.

    Returns
    -------
    h : float
        The bandwidth on the unit cube.
    """
    ratio = kernel_constants(kernel)["canonical"] / kernel_constants("epanechnikov")["canonical"]
    return float(min(1.0, AUTO_BANDWIDTH_CONSTANT * ratio * n ** (-2.0 / (4.0 + d))))


@fill_doc
class UniformTransformerEstimator(DiagnosticsMixin, TransformerMixin, BaseEstimator):
    """Treatment effects as a kernel U-statistic after a uniformising transform.

    The reweighted arm's covariates are mapped by a data-driven transform
    ``T`` that makes that arm uniform on ``[0, 1]^d``. The density ratio that
    weighting needs then is an ordinary density: that of ``T(X)`` in the target
    population, estimated by a boundary-reflected kernel. Plugging it into the
    weighted mean of the outcomes gives a two-sample kernel U-statistic
    (Yu & Wang, arXiv:2008.03738; our construction, see the user guide).

    Read more in the :ref:`User Guide <uniform_transformer>`.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ``"ATT"``: controls reweighted to the treated; ``"ATC"``: treated
        reweighted to the controls; ``"ATE"``: each arm reweighted to all
        units (plus ``X_unlabeled``).
    transformation : {"auto", "rank", "rosenblatt", "ot"}, default="auto"
        The uniformising map (named ``transformation`` because the fitted
        map itself is the method :meth:`transform`): coordinate-wise mid-rank
        CDFs (exact for one covariate; for ``d > 1`` valid only for
        independent covariates, and ``fit`` warns when the data show
        dependence), a Rosenblatt transform with kernel-weighted conditional
        CDFs, or an optimal-transport rank (assignment to a scrambled Sobol
        sample, nearest-neighbour extension). ``"auto"``: ``"rank"`` for one
        covariate, ``"ot"`` for several (``"rosenblatt"`` when the sample
        weights are not repeat counts, which ``"ot"`` needs). See the user
        guide for the constructions and a simulation comparing them.
    kernel : {"epanechnikov", "biweight", "triweight", "gaussian"}, default="epanechnikov"
        Product kernel on the cube, boundary-reflected.
    bandwidth : "auto" or float in (0, 1], default="auto"
        Kernel bandwidth on the unit cube. ``"auto"``: the undersmoothed rule
        ``1.2 n^(-2 / (4 + d))`` (for the Epanechnikov kernel; other kernels
        by their canonical bandwidths), ``n`` the geometric mean of the arm
        and target sizes: the effect needs less smoothing than the density.
    normalize : bool, default=True
        ``True``: the Hajek form, a ratio of two U-statistics (the weighted
        outcomes over the weights), so adding a constant to ``y`` shifts the
        estimate by exactly that constant. ``False``: the plain U-statistic
        ``(1 / (n_A n_P)) sum sum K_h y`` as written in the paper; it equals
        the Hajek form when the arm's transformed sample is an exact grid
        (``"rank"`` in ``d = 1``) and otherwise moves with the outcome's mean.
    se : {"projection", "bootstrap"}, default="projection"
        ``"projection"``: the plug-in variance of the estimator's first-order
        (Hoeffding) projection, in its efficient-influence-function form
        (see Notes). ``"bootstrap"``: the standard deviation of
        ``n_bootstrap`` resampled estimates that refit the transform
        (stratified by arm for ATT and ATC); it also allows
        ``conf_int(method="percentile")``, and is conservative for the rank
        map, whose resamples have ties.
    n_bootstrap : int, default=200
        Bootstrap resamples when ``se="bootstrap"``.
    pos_label : object, default=None
        The label of the treated group when the treatment labels are not
        0/1 or False/True.
    ot_batch_size : int, default=1024
        Largest assignment problem of ``transformation="ot"`` (the Hungarian
        algorithm is cubic); bigger reference samples are split at random.
    method : {"auto", "tiled", "grid", "sweep"}, default="auto"
        Algorithm for the kernel sums (all exact): a d = 1 sweep with prefix
        sums for polynomial kernels, a neighbour grid for compact kernels, or
        all pairs.
    backend : {"numba", "dask"}, default="numba"
        ``"dask"`` splits each kernel double sum into blocks computed on the
        current ``dask.distributed`` client.
    {n_jobs}
    {random_state}
    {verbose}

    Attributes
    ----------
    weights_ : ndarray of shape (n_samples,)
        Implied weight of each row, sample weights excluded (the convention
        of every balancer, so ``balance_table`` and
        ``effective_sample_size`` take them): over a reweighted arm
        ``sum(sample_weight * weights_)`` is the target's total (exactly
        with ``normalize=True``, up to the sampling error of the density
        estimate otherwise) and the arm's mean is
        ``sum(sample_weight * weights_ * y) / target total``; rows not
        reweighted (the treated under ATT) get 1.
    effect_ : float
        The estimate (only when ``y`` was given to ``fit``).
    se_ : float
        Its standard error.
    results_ : EffectResults
        Estimate, standard error, tests, intervals and summary: the results
        object of every balancer's ``estimate_effect``.
    ess_ : dict
        Kish effective sample size of each group after weighting
        (``{"treated": ..., "control": ...}``), sample weights included.
    treated_ : ndarray of bool of shape (n_samples,)
        Which training rows are treated.
    arm_means_ : dict
        The two potential-outcome means behind ``effect_``: ``"treated"`` and
        ``"control"``.
    bandwidth_ : float
        The bandwidth used.
    effective_neighbours_ : float
        ``n_P h^d / R(K)^d`` (smallest over arms): the number of target
        units a density estimate effectively averages, with ``R(K)`` the
        kernel's roughness; below 10 the fit warns.
    maps_ : dict
        Fitted uniformising maps by arm (``"treated"``, ``"control"``).
    transformation_ : str
        The map used (``transformation`` with ``"auto"`` resolved).
    classes_ : ndarray of shape (2,)
        Treatment labels ``[control, treated]``.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    weightstats.balancing.EffectResults : The results object.
    weightstats.balancing.balance_table : Covariate balance under ``weights_``.
    IPMBalancer : Balancing weights by an integral probability metric.

    Notes
    -----
    Write ``A`` for the reweighted arm (controls for ATT), ``P`` for its
    target (the treated for ATT; all units and ``X_unlabeled`` for ATE),
    ``U = T(X)`` and ``g_i = sum_{k in P} K_h(U_k, U_i)`` (the unit itself
    excluded). The Hajek estimate of the arm's mean in ``P`` is
    ``sum_i g_i y_i / sum_i g_i``; ``weights_`` are ``g_i`` scaled to sum to
    the size of ``P``.

    The standard error is that of the efficient influence function: the
    target units contribute ``m(X) - mu`` (``m`` the arm's outcome regression,
    a kernel regression on ``U``), the arm's units ``w(X) (y - m(X))``
    (``w`` the density ratio). Because ``T`` is fitted on the arm itself,
    the arm's transformed sample is an exact uniform grid for ``"rank"`` in
    ``d = 1`` and for ``"ot"``, and the estimator attains that variance (as
    inverse probability weighting does with an estimated propensity score);
    for ``"rank"`` with ``d > 1`` only the marginals are fixed, and the
    non-additive part of ``w m`` is added (Stein 1987). Simulations in the
    test suite check coverage.

    References
    ----------
    Yu, R. and Wang, S. "Treatment Effects Estimation by Uniform Transformer."
    arXiv:2008.03738.

    Stein, M. (1987). "Large sample properties of simulations using Latin
    hypercube sampling." Technometrics 29(2).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import UniformTransformerEstimator
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=1000)
    >>> t = rng.uniform(size=1000) < 1 / (1 + np.exp(-x))
    >>> y = x + 2.0 * t + rng.normal(size=1000)
    >>> ut = UniformTransformerEstimator(estimand="ATT").fit(x[:, None], t, y)
    >>> round(ut.effect_, 2), round(ut.se_, 2)
    (2.01, 0.07)
    >>> ut.conf_int(0.05).round(2)
    array([1.87, 2.15])
    >>> bool(np.isclose(ut.weights_[~t].sum(), t.sum()))  # controls reweighted to the treated
    True
    """

    _parameter_constraints = {
        "estimand": [StrOptions({"ATT", "ATC", "ATE"})],
        "transformation": [StrOptions({"auto", "rank", "rosenblatt", "ot"})],
        "kernel": [StrOptions(set(KERNEL_NAMES))],
        "bandwidth": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="right")],
        "normalize": ["boolean"],
        "se": [StrOptions({"projection", "bootstrap"})],
        "n_bootstrap": [Interval(numbers.Integral, 2, None, closed="left")],
        "pos_label": "no_validation",
        "ot_batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "method": [StrOptions({"auto", "tiled", "grid", "sweep"})],
        "backend": [StrOptions({"numba", "dask"})],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimand="ATT",
        *,
        transformation="auto",
        kernel="epanechnikov",
        bandwidth="auto",
        normalize=True,
        se="projection",
        n_bootstrap=200,
        pos_label=None,
        ot_batch_size=1024,
        method="auto",
        backend="numba",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimand = estimand
        self.transformation = transformation
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.normalize = normalize
        self.se = se
        self.n_bootstrap = n_bootstrap
        self.pos_label = pos_label
        self.ot_batch_size = ot_batch_size
        self.method = method
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # The "target" is the binary treatment: scikit-learn's checks then
        # pass two labels, as they do for binary-only classifiers.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    # ------------------------------------------------------------------ fit

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, treatment, y=None, *, X_unlabeled=None, sample_weight=None):
        """Fit the uniformising maps, the implied weights and (with ``y``) the effect.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        treatment : array-like of shape (n_samples,)
            Binary treatment (0/1, bool, or two labels with ``pos_label``).
        y : array-like of shape (n_samples,), default=None
            Outcome; without it only the maps and weights are fitted.
        X_unlabeled : array-like of shape (n_unlabeled, n_features), default=None
            Extra covariate rows without treatment or outcome from the same
            population, added to the target of ``estimand="ATE"``.
        {sample_weight}

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if treatment is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "pass the binary treatment as the second argument of fit."
            )
        labels = row_labels(X)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n = X.shape[0]
        treated, self.classes_ = check_binary_treatment(
            treatment, pos_label=self.pos_label, n_samples=n
        )
        if y is not None:
            y = check_finite_vector(y, "y", n_samples=n)
        sw = check_sample_weight(sample_weight, X)
        check_group_sizes(treated[sw > 0], minimum=2)
        X_extra = self._check_unlabeled(X_unlabeled, X.shape[1])
        rng = check_random_state(self.random_state)
        d = X.shape[1]

        self.transformation_ = _resolve_transformation(self.transformation, d, sw)
        if self.transformation_ == "rank" and d > 1:
            self._warn_if_dependent(X, treated, sw)

        setup = self._setup(X, treated, sw, X_extra, rng)
        self.maps_ = {arm: s["map"] for arm, s in setup.items()}
        self._warn_if_extrapolating(setup, X, X_extra)
        self.bandwidth_ = self._resolve_bandwidth(setup, d)
        rough = kernel_constants(self.kernel)["roughness"]
        self.effective_neighbours_ = float(
            min(s["s_target"].sum() for s in setup.values()) * (self.bandwidth_ / rough) ** d
        )
        self._warn_if_meaningless(d)

        for name, arm in setup.items():
            arm["g"] = self._density_at_arm(arm, self.bandwidth_)
            if not np.any(arm["s_arm"] * arm["g"] > 0):
                warnings.warn(
                    f"no {name} unit has a target unit within the kernel window (bandwidth "
                    f"{self.bandwidth_:.3g}): the groups do not overlap and the {name} arm "
                    "cannot be reweighted; its implied weights are uniform and its mean is "
                    "unadjusted.",
                    OverlapWarning,
                    stacklevel=2,
                )
        self.weights_ = self._implied_weights(setup, sw)
        self.treated_ = treated
        self.ess_ = {
            "treated": _kish(sw[treated] * self.weights_[treated]),
            "control": _kish(sw[~treated] * self.weights_[~treated]),
        }
        # Kept for balance_table(), as the balancers keep them.
        self._X_fit, self._sample_weight_fit, self._row_labels = X, sw, labels
        self._check_weighting()
        if y is not None:
            self._estimate(setup, y, treated, sw, X, X_extra, rng)
        return self

    def _warn_if_dependent(self, X, treated, sw):
        """Coordinate-wise ranks are uniform on the cube only for independent coordinates:
        warn when a reweighted arm's Spearman correlations are beyond sampling noise."""
        arms = {"ATT": [~treated], "ATC": [treated], "ATE": [treated, ~treated]}
        worst, z = 0.0, 0.0
        for rows in arms[self.estimand]:
            rho = rank_dependence(X[rows], sw[rows])
            n_eff = sw[rows].sum() ** 2 / (sw[rows] @ sw[rows])
            # Under independence a Spearman correlation is about N(0, 1 / (n - 1)).
            worst, z = max(worst, rho), max(z, rho * np.sqrt(max(n_eff - 1.0, 1.0)))
        if z > DEPENDENCE_Z:
            warnings.warn(
                f"transformation='rank' with {X.shape[1]} covariates maps each coordinate by its "
                "own CDF; the result is uniform on the cube only if the covariates are independent "
                f"in the reweighted group, and they are not (largest |Spearman correlation| "
                f"there: {worst:.2f}, {z:.1f} standard errors from 0). Use "
                "transformation='ot' (the default for several covariates) or 'rosenblatt'.",
                UserWarning,
                stacklevel=3,
            )

    def _check_unlabeled(self, X_unlabeled, n_features):
        if X_unlabeled is None:
            return None
        if self.estimand != "ATE":
            raise ValueError(
                f"X_unlabeled only enters estimand='ATE' (it enlarges the population both arms "
                f"are reweighted to); with estimand={self.estimand!r} the target is a treatment "
                "group, which unlabelled rows cannot inform."
            )
        X_extra = check_array(X_unlabeled, dtype=np.float64, input_name="X_unlabeled")
        if X_extra.shape[1] != n_features:
            raise ValueError(
                f"X_unlabeled has {X_extra.shape[1]} columns but X has {n_features}; they must "
                "hold the same covariates."
            )
        return X_extra

    def _arm_layout(self, treated, n_extra):
        """For each reweighted arm: its rows, and the target rows in the pooled index.

        The pooled index is the labelled rows followed by the unlabelled ones.
        """
        n = treated.shape[0]
        t_idx, c_idx = np.flatnonzero(treated), np.flatnonzero(~treated)
        if self.estimand == "ATT":
            return {"control": (c_idx, t_idx, False)}
        if self.estimand == "ATC":
            return {"treated": (t_idx, c_idx, False)}
        pool = np.arange(n + n_extra)
        return {"treated": (t_idx, pool, True), "control": (c_idx, pool, True)}

    def _setup(self, X, treated, sw, X_extra, rng):
        n_extra = 0 if X_extra is None else X_extra.shape[0]
        X_pool = X if X_extra is None else np.vstack([X, X_extra])
        s_pool = np.concatenate([sw, np.ones(n_extra)])
        setup = {}
        for arm, (arm_idx, target_idx, nested) in self._arm_layout(treated, n_extra).items():
            state, U_arm = fit_uniform_map(
                X[arm_idx], sw[arm_idx], self.transformation_, random_state=rng,
                ot_batch_size=self.ot_batch_size,
            )
            U_target = np.empty((target_idx.shape[0], X.shape[1]))
            if nested:
                # The arm's own rows keep the values the map gave them in fit.
                rest = np.ones(target_idx.shape[0], dtype=bool)
                rest[arm_idx] = False
                U_target[arm_idx] = U_arm
                U_target[rest] = apply_uniform_map(state, X_pool[target_idx[rest]])
            else:
                U_target = apply_uniform_map(state, X_pool[target_idx])
            setup[arm] = {
                "map": state,
                "arm_idx": arm_idx,
                "target_idx": target_idx,
                "nested": nested,
                "U_arm": U_arm,
                "U_target": U_target,
                "s_arm": sw[arm_idx],
                "s_target": s_pool[target_idx],
            }
        return setup

    def _resolve_bandwidth(self, setup, d):
        if self.bandwidth != "auto":
            return float(self.bandwidth)
        n = min(np.sqrt(s["s_arm"].sum() * s["s_target"].sum()) for s in setup.values())
        return auto_bandwidth(n, d, self.kernel)

    def _warn_if_extrapolating(self, setup, X, X_extra):
        X_pool = X if X_extra is None else np.vstack([X, X_extra])
        for name, arm in setup.items():
            outside = outside_reference_range(arm["map"], X_pool[arm["target_idx"]])
            share = arm["s_target"] @ outside / arm["s_target"].sum()
            # Even with identical distributions about 2 d / (n + 1) of new points
            # fall outside n reference points in some coordinate.
            expected = 2.0 * X.shape[1] / (arm["s_arm"].sum() + 1.0)
            if share > MAX_OUTSIDE_SHARE + expected:
                warnings.warn(
                    f"{100 * share:.1f}% of the target units lie outside the range of the {name} "
                    "units in some covariate (limited overlap): the transform maps them onto a "
                    "face of the cube, so their weight falls on the most extreme "
                    f"{name} units. Consider trimming the sample to the common support.",
                    OverlapWarning,
                    stacklevel=3,
                )

    def _warn_if_meaningless(self, d):
        problems = []
        if self.effective_neighbours_ < MIN_EFFECTIVE_NEIGHBOURS:
            problems.append(
                f"a kernel window holds only about {self.effective_neighbours_:.3g} effective "
                "target units, so the density ratio is mostly noise"
            )
        if self.bandwidth_ > 0.5:
            problems.append(
                f"the bandwidth {self.bandwidth_:.3g} spans more than half of the cube, so the "
                "weights barely adapt to the covariates"
            )
        if problems:
            warnings.warn(
                f"With d={d} covariates the kernel estimate is unreliable: "
                + "; ".join(problems)
                + f" (effective neighbours {self.effective_neighbours_:.3g}). Use fewer or "
                "summarised covariates, or more data.",
                UserWarning,
                stacklevel=3,
            )

    def _kernel_sums(self, Q, S, V, h):
        kwargs = {"kernel": self.kernel, "bandwidth": h, "method": self.method}
        if self.backend == "dask":
            return kernel_sums_dask(Q, S, V, **kwargs)
        return kernel_sums(Q, S, V, n_jobs=self.n_jobs, **kwargs)

    def _density_at_arm(self, arm, h, s_arm=None, s_target=None, self_coef=None):
        """g_i = sum_k s_k K(U_i, U_k) over the target, less the self pair."""
        s_arm = arm["s_arm"] if s_arm is None else s_arm
        s_target = arm["s_target"] if s_target is None else s_target
        g = self._kernel_sums(arm["U_arm"], arm["U_target"], s_target, h)
        if arm["nested"]:
            coef = np.minimum(s_arm, 1.0) if self_coef is None else self_coef
            diag = reflected_kernel_diagonal(arm["U_arm"], kernel=self.kernel, bandwidth=h)
            g = np.maximum(g - coef * diag, 0.0)
        return g

    @staticmethod
    def _denominator(arm, s_arm, s_target, self_coef=None):
        total = s_target.sum()
        if not arm["nested"]:
            return s_arm.sum() * total
        coef = np.minimum(s_arm, 1.0) if self_coef is None else self_coef
        return float(np.sum(s_arm * (total - coef)))

    def _arm_mean(self, arm, y_arm, s_arm, s_target, g, self_coef=None):
        mass = s_arm * g
        if mass.sum() <= 0:
            # No overlap at this bandwidth (fit warns): the unadjusted arm mean.
            return float(s_arm @ y_arm / s_arm.sum())
        if self.normalize:
            return float(mass @ y_arm / mass.sum())
        return float(mass @ y_arm / self._denominator(arm, s_arm, s_target, self_coef))

    def _implied_weights(self, setup, sw):
        """One weight per row, sample weights excluded (as for every balancer):
        ``sum(sample_weight * weights_)`` over a reweighted arm is the target's
        total (exactly for the Hajek form); rows not reweighted get 1."""
        weights = np.ones(sw.shape[0])
        for arm in setup.values():
            s_a, g = arm["s_arm"], arm["g"]
            size = arm["s_target"].sum()
            if s_a @ g <= 0:
                w = np.full(s_a.shape[0], size / s_a.sum())
            elif self.normalize:
                w = g * size / (s_a @ g)
            else:
                w = g * size / self._denominator(arm, s_a, arm["s_target"])
            weights[arm["arm_idx"]] = w
        return weights

    # ------------------------------------------------------------ inference

    def _estimate(self, setup, y, treated, sw, X, X_extra, rng):
        means = {}
        for name, arm in setup.items():
            arm["y"] = y[arm["arm_idx"]]
            means[name] = self._arm_mean(arm, arm["y"], arm["s_arm"], arm["s_target"], arm["g"])
        # The arm that is not reweighted is a plain weighted mean.
        for name, rows in (("treated", treated), ("control", ~treated)):
            if name not in means:
                means[name] = float(np.average(y[rows], weights=sw[rows]))
        effect = means["treated"] - means["control"]
        variance = self._projection_variance(setup, y, treated, sw, means)
        boot = None
        if self.se == "bootstrap":
            boot = self._bootstrap(X, treated, y, sw, X_extra, rng)
            se = float(np.std(boot, ddof=1))
        else:
            se = float(np.sqrt(variance))
        self.arm_means_ = means
        self.effect_ = float(effect)
        self.se_ = se
        n_t, n_c = int(np.count_nonzero(treated)), int(np.count_nonzero(~treated))
        info = {
            "kernel": self.kernel,
            "bandwidth": self.bandwidth_,
            "effective neighbours": self.effective_neighbours_,
        }
        if X_extra is not None:
            info["unlabelled rows"] = X_extra.shape[0]
        notes = [
            ("Hajek-normalised kernel U-statistic" if self.normalize
             else "Kernel U-statistic")
            + " after a uniformising transform (Yu & Wang, arXiv:2008.03738)."
        ]
        if boot is None:
            notes.append("Standard error: plug-in variance of the efficient influence function.")
        self.results_ = EffectResults(
            self.effect_,
            self.se_,
            estimand=self.estimand,
            method=f"uniform transformer ({self.transformation_})",
            se_method="projection" if boot is None else "bootstrap",
            mean_treated=means["treated"],
            mean_control=means["control"],
            n_treated=n_t,
            n_control=n_c,
            ess=self.ess_,
            bootstrap_estimates=boot,
            info=info,
            notes=notes,
        )

    def _arm_regression(self, arm, y_c, h):
        """Leave-one-out kernel regression of y on U within the arm, at the arm's points."""
        s_a = arm["s_arm"]
        sums = self._kernel_sums(arm["U_arm"], arm["U_arm"], np.column_stack([s_a, s_a * y_c]), h)
        diag = reflected_kernel_diagonal(arm["U_arm"], kernel=self.kernel, bandwidth=h)
        coef = np.minimum(s_a, 1.0)
        den = sums[:, 0] - coef * diag
        num = sums[:, 1] - coef * diag * y_c
        # A unit with no neighbour in its window: fall back to the arm mean.
        fallback = s_a @ y_c / s_a.sum()
        safe = den > 1e-12 * max(float(np.max(sums[:, 0])), 1e-300)
        return np.where(safe, num / np.where(safe, den, 1.0), fallback)

    def _non_additive_part(self, arm, phi, h):
        """phi minus its additive projection sum_k E[phi | U_k] (each by 1-d smoothing).

        Coordinate-wise ranks fix each marginal of the arm's transformed sample
        (as a Latin hypercube does) but not their joint law, so the part of
        ``g(U) m(U)`` that is not additive in the coordinates still varies
        between samples (Stein 1987).
        """
        s_a = arm["s_arm"]
        coef = np.minimum(s_a, 1.0)
        values = np.column_stack([s_a, s_a * phi])
        rest = phi - s_a @ phi / s_a.sum()
        for k in range(arm["U_arm"].shape[1]):
            u = arm["U_arm"][:, k]
            sums = self._kernel_sums(u[:, None], u[:, None], values, h)
            diag = reflected_kernel_diagonal(u, kernel=self.kernel, bandwidth=h)
            den = sums[:, 0] - coef * diag
            num = sums[:, 1] - coef * diag * phi
            safe = den > 1e-12 * max(float(np.max(sums[:, 0])), 1e-300)
            marginal = np.where(safe, num / np.where(safe, den, 1.0), s_a @ phi / s_a.sum())
            rest = rest - (marginal - s_a @ marginal / s_a.sum())
        return rest

    def _projection_variance(self, setup, y, treated, sw, means):
        """Plug-in variance of the efficient influence function.

        The arm's term is its residual ``y - m(U)`` times the density ratio:
        the transform is estimated from the arm itself (for ``"rank"`` in
        ``d = 1`` and ``"ot"`` the arm's transformed values are a fixed
        uniform grid), which removes the variance of ``g(U) m(U)`` that a known
        transform would leave, as an estimated propensity score does for
        inverse probability weighting. The plain U-statistic
        (``normalize=False``) is the Hajek estimate times the estimated total
        weight ``B``; the projection of ``B`` (arm density at the target units,
        density ratio at the arm's units) enters multiplied by the mean.
        """
        h = self.bandwidth_
        parts = {}
        for name, arm in setup.items():
            mu = means[name]
            s_a, s_p = arm["s_arm"], arm["s_target"]
            y_c = arm["y"] - mu
            # At each target unit: the arm's density and its regression of y - mu
            # (the unit's own pair excluded).
            sums = self._kernel_sums(
                arm["U_target"], arm["U_arm"], np.column_stack([s_a, s_a * y_c]), h
            )
            coef = np.minimum(s_a, 1.0)
            denom = np.full(s_p.shape[0], s_a.sum())
            if arm["nested"]:
                diag = reflected_kernel_diagonal(arm["U_arm"], kernel=self.kernel, bandwidth=h)
                sums[arm["arm_idx"], 0] -= coef * diag
                sums[arm["arm_idx"], 1] -= coef * diag * y_c
                denom[arm["arm_idx"]] -= coef
            density, m_target = sums[:, 0] / denom, sums[:, 1] / denom
            # Density ratio at the arm's units, normalised to average one
            # (uniform when no unit of the arm has a target unit nearby).
            mass = s_a @ arm["g"]
            ratio = arm["g"] * s_a.sum() / mass if mass > 0 else np.ones(s_a.shape[0])
            fitted = self._arm_regression(arm, y_c, h)
            arm_term = ratio * (y_c - fitted)
            if self.transformation_ == "rank" and arm["U_arm"].shape[1] > 1:
                arm_term = arm_term + self._non_additive_part(arm, ratio * fitted, h)
            target_term = m_target
            if not self.normalize:
                target_term = target_term + mu * density
                arm_term = arm_term + mu * ratio
            parts[name] = (target_term, arm_term)
        if self.estimand in ("ATT", "ATC"):
            ((name, arm),) = setup.items()
            target_term, arm_term = parts[name]
            s_a, s_p = arm["s_arm"], arm["s_target"]
            own = y[arm["target_idx"]] - target_term
            return _weighted_var(own, s_p) / s_p.sum() + _weighted_var(arm_term, s_a) / s_a.sum()
        # ATE: influence function over the pooled units (labelled and unlabelled),
        # m_1(x) - m_0(x) + Z (y - m_1) / e(x) - (1 - Z) (y - m_0) / (1 - e(x)).
        s_pool = setup["treated"]["s_target"]
        influence = np.zeros(s_pool.shape[0])
        for name, arm in setup.items():
            sign = 1.0 if name == "treated" else -1.0
            target_term, arm_term = parts[name]
            share = arm["s_arm"].sum() / arm["s_target"].sum()
            term = target_term.copy()
            term[arm["arm_idx"]] += arm_term / share
            influence += sign * term
        return _weighted_var(influence, s_pool) / s_pool.sum()

    def _bootstrap(self, X, treated, y, sw, X_extra, rng):
        n = X.shape[0]
        estimates = np.empty(self.n_bootstrap)
        groups = [np.flatnonzero(treated), np.flatnonzero(~treated)]
        if self.estimand == "ATE":
            groups = [np.arange(n)]
        for b in progress(range(self.n_bootstrap), verbose=self.verbose, desc="bootstrap"):
            counts = np.zeros(n)
            for rows in groups:
                counts[rows] = rng.multinomial(rows.shape[0], np.full(rows.shape[0],
                                                                      1.0 / rows.shape[0]))
            s = sw * counts
            if X_extra is not None:
                extra_counts = rng.multinomial(X_extra.shape[0],
                                               np.full(X_extra.shape[0], 1.0 / X_extra.shape[0]))
            else:
                extra_counts = None
            estimates[b] = self._replicate(X, treated, y, s, X_extra, extra_counts, rng)
        return estimates

    def _replicate(self, X, treated, y, s, X_extra, extra_counts, rng):
        """The point estimate with weights s (bootstrap copies never pair with each other)."""
        if np.count_nonzero(s[treated] > 0) < 2 or np.count_nonzero(s[~treated] > 0) < 2:
            return self.effect_
        setup = self._setup(X, treated, s, X_extra, rng)
        if extra_counts is not None:
            for arm in setup.values():
                arm["s_target"] = np.concatenate([s, extra_counts]).astype(float)
        means = {}
        for name, arm in setup.items():
            coef = arm["s_arm"]
            g = self._density_at_arm(arm, self.bandwidth_, self_coef=coef)
            means[name] = self._arm_mean(arm, y[arm["arm_idx"]], arm["s_arm"], arm["s_target"],
                                         g, self_coef=coef)
        for name, rows in (("treated", treated), ("control", ~treated)):
            if name not in means:
                means[name] = float(np.average(y[rows], weights=s[rows]))
        return means["treated"] - means["control"]

    # ------------------------------------------------------------ post-fit

    def _check_effect(self):
        check_is_fitted(self)
        if not hasattr(self, "results_"):
            raise ValueError(
                "no effect was estimated: fit was called without the outcome y; call "
                "fit(X, treatment, y)."
            )
        return self.results_

    def conf_int(self, alpha=0.05, *, method="wald"):
        """Confidence interval for the effect.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level.
        method : {"wald", "percentile"}, default="wald"
            ``"percentile"`` needs ``se="bootstrap"``.

        Returns
        -------
        ci : ndarray of shape (2,)
            Lower and upper limits.
        """
        return self._check_effect().conf_int(alpha, method=method)

    def summary(self, alpha=0.05, *, method="wald"):
        """A statsmodels-style summary of the effect.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level.
        method : {"wald", "percentile"}, default="wald"
            How the interval is formed.

        Returns
        -------
        summary : Summary
            Printable and notebook-friendly.
        """
        return self._check_effect().summary(alpha, method=method)

    def transform(self, X):
        """Map covariates by the fitted uniformising transform(s).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        U : ndarray of shape (n_samples, n_features) or (n_samples, 2 * n_features)
            ``T(X)`` in ``[0, 1]^d``: the map that makes the reweighted arm
            uniform (controls for ATT, treated for ATC); for ATE both maps,
            the treated arm's columns first.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        maps = [self.maps_[arm] for arm in ("treated", "control") if arm in self.maps_]
        return np.hstack([apply_uniform_map(state, X) for state in maps])

    def get_feature_names_out(self, input_features=None):
        """Names of the transformed columns.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names; ``feature_names_in_`` or ``x0, x1, ...`` if absent.

        Returns
        -------
        names : ndarray of str
            The input names (ATT, ATC) or ``name__treated`` then
            ``name__control`` (ATE).
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if self.estimand != "ATE":
            return np.asarray(names, dtype=object)
        return np.asarray(
            [f"{n}__treated" for n in names] + [f"{n}__control" for n in names], dtype=object
        )


def _weighted_var(values, weights):
    total = weights.sum()
    mean = weights @ values / total
    # Divisor total - 1: unbiased for unit (and integer) weights.
    return float(weights @ (values - mean) ** 2 / max(total - 1.0, 1.0))
