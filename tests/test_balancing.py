"""Balancing weights: exactness against independent solvers, estimands, sample
weights, invariances, diagnostics, effect estimates and bad input."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from weightstats.balancing import (
    BalancingIPM,
    EffectResults,
    EntropyBalancer,
    IPMBalancer,
    OverlapWarning,
    PropensityBalancer,
    available_ipms,
    balance_table,
    bootstrap_replicates,
    effective_sample_size,
    register_ipm,
    weighted_effect,
)
from weightstats.datasets import load_lalonde, make_kang_schafer

from .strategies import binary_treatments, permutations

GOLDENS = json.loads((Path(__file__).parent / "results" / "balancing_goldens.json").read_text())


def _ks(n=300, seed=0, misspecified=True):
    ks = make_kang_schafer(n, misspecified=misspecified, random_state=seed)
    return ks.data, ks.treatment, ks.target


# --------------------------------------------------------------------- exactness


def _qp_case(name):
    case = GOLDENS["qp"][name]
    spec = case["case"]
    kw = {"ipm": spec["ipm"], "estimand": spec.get("estimand", "ATT")}
    if spec["bandwidth"]:
        kw["bandwidth"] = spec["bandwidth"]
    for key in ("max_weight", "l2_penalty"):
        if spec.get(key):
            kw[key] = spec[key]
    return np.array(case["X"]), np.array(case["t"]), kw, case["arms"]


# Matrix-free FISTA is the O(n)-memory fallback; it is slow to certify on
# ill-conditioned problems, so it is checked on the well-conditioned ones.
QP_CASES = [pytest.param(name, rep, id=f"{rep}-{name}")
            for name in GOLDENS["qp"] for rep in ("auto", "lowrank", "matrix_free")
            if not (rep == "lowrank" and GOLDENS["qp"][name]["case"]["ipm"] == "energy")
            and not (rep == "matrix_free" and name not in ("mmd_bw1", "mmd_cap", "mmd_penalty"))]


@pytest.mark.parametrize("name, representation", QP_CASES)
def test_objective_matches_cvxpy(name, representation):
    X, t, kw, arms = _qp_case(name)
    tol = {"auto": 1e-12, "lowrank": 1e-11, "matrix_free": 1e-7}[representation]
    with warnings.catch_warnings():
        # Matrix-free FISTA may stop at max_iter on the ill-conditioned cases.
        warnings.simplefilter("ignore", ConvergenceWarning)
        bal = IPMBalancer(representation=representation, tol=tol, **kw).fit(X, t)
    info = bal.solver_info_
    for arm, gold in arms.items():
        arm_info = info if "arm" in info else info[arm]
        if representation != "matrix_free":
            assert arm_info["converged"]
            assert arm_info["relative_gap"] <= tol
        # Objective (IPM^2) within 1e-7 relative of cvxpy (absolute for ~0 optima).
        rel = 1e-7 if representation != "matrix_free" else 1e-5
        assert arm_info["objective"] == pytest.approx(gold["objective"], rel=rel, abs=1e-12)
        assert arm_info["kkt_residual"] < 1e-4
        mask = t == (0 if arm == "control" else 1)
        if name in ("mmd_bw1", "energy", "mmd_penalty", "mmd_cap") and representation == "auto":
            # Strictly convex and well conditioned: the weights themselves agree.
            np.testing.assert_allclose(bal.weights_[mask], gold["weights"], atol=1e-5)


def test_sigmoid_ipm_matches_cvxpy_linear_program():
    gold = GOLDENS["sigmoid"]
    bal = IPMBalancer(ipm="sigmoid", random_state=0).fit(np.array(gold["X"]), np.array(gold["t"]))
    assert bal.ipm_after_ == pytest.approx(gold["max_abs_difference"], rel=1e-6, abs=1e-9)
    assert bal.ipm_after_ < bal.ipm_before_


def test_entropy_balancing_matches_cvxpy_max_entropy():
    gold = GOLDENS["entropy"]
    X, t = np.array(gold["X"]), np.array(gold["t"])
    eb = EntropyBalancer(tol=1e-12).fit(X, t)
    np.testing.assert_allclose(eb.weights_[t == 0], gold["weights"], rtol=1e-5, atol=1e-7)
    # IPMBalancer(moments, linear) is the same estimator.
    lin = IPMBalancer(ipm="moments", weight_model="linear", tol=1e-12).fit(X, t)
    np.testing.assert_allclose(lin.weights_, eb.weights_, rtol=1e-8)


def test_default_propensity_model_matches_statsmodels_glm():
    gold = GOLDENS["propensity_lalonde_cps"]
    data = load_lalonde(controls="cps")
    ipw = PropensityBalancer(estimand="ATT").fit(data.data, data.treatment)
    model = ipw.estimator_
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_[0]], gold["coef"], rtol=1e-6)


def test_sandwich_se_matches_statsmodels_wls_hc0():
    gold = GOLDENS["wls_hc0"]
    res = weighted_effect(gold["y"], gold["t"], gold["w"], estimand="ATE")
    assert res.effect == pytest.approx(gold["effect"], rel=1e-10)
    assert res.se == pytest.approx(gold["se_hc0"], rel=1e-10)


# --------------------------------------------------------------------- estimands and weights


@pytest.mark.parametrize("est", [IPMBalancer(), EntropyBalancer(), PropensityBalancer()],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_weights_are_normalised_per_estimand(est, estimand):
    X, t, _ = _ks(200)
    est.set_params(estimand=estimand).fit(X, t)
    w, treated = est.weights_, t == 1
    assert np.all(w >= 0) and np.all(np.isfinite(w))
    n1, n0, n = treated.sum(), (~treated).sum(), t.size
    if estimand == "ATT":
        np.testing.assert_allclose(w[treated], 1.0)
        assert w[~treated].sum() == pytest.approx(n1)
    elif estimand == "ATC":
        np.testing.assert_allclose(w[~treated], 1.0)
        assert w[treated].sum() == pytest.approx(n0)
    else:
        assert w[treated].sum() == pytest.approx(n) and w[~treated].sum() == pytest.approx(n)


def test_weighting_removes_imbalance_for_every_method():
    X, t, _ = _ks(400)
    for est in [IPMBalancer(), IPMBalancer(ipm="energy"), IPMBalancer(ipm="moments"),
                IPMBalancer(weight_model="linear"), EntropyBalancer(moments=2)]:
        table = est.fit(X, t).balance_table()
        assert table["smd_after"].abs().max() < 0.1, type(est).__name__
        assert table["smd_after"].abs().max() < table["smd_before"].abs().max()


def test_ate_ipm_reports_between_group_ipm():
    X, t, _ = _ks(300)
    bal = IPMBalancer(estimand="ATE").fit(X, t)
    assert set(bal.solver_info_) >= {"treated", "control", "converged"}
    assert bal.solver_info_["converged"]
    assert bal.ipm_after_ < 0.1 * bal.ipm_before_


def test_max_weight_caps_every_weight_and_infeasible_caps_raise():
    X, t, _ = _ks(300)
    bal = IPMBalancer(max_weight=2.5).fit(X, t)
    assert bal.weights_[t == 0].max() <= 2.5 + 1e-9
    free = IPMBalancer().fit(X, t)
    assert bal.ess_["control"] > free.ess_["control"]
    needed = (t == 1).sum() / (t == 0).sum()
    with pytest.raises(ValueError, match="max_weight=.* is infeasible"):
        IPMBalancer(max_weight=0.9 * needed).fit(X, t)


def test_l2_penalty_trades_balance_for_effective_sample_size():
    X, t, _ = _ks(300)
    ess, ipm = [], []
    for penalty in [0.0, 1e-4, 1e-2]:
        bal = IPMBalancer(l2_penalty=penalty).fit(X, t)
        ess.append(bal.ess_["control"])
        ipm.append(bal.ipm_after_)
    assert ess[0] < ess[1] < ess[2] and ipm[0] <= ipm[1] <= ipm[2]


def test_representations_agree_on_kang_schafer():
    X, t, _ = _ks(400, seed=3)
    objectives = {}
    for rep in ["dense", "lowrank"]:
        bal = IPMBalancer(representation=rep).fit(X, t)
        assert bal.solver_info_["converged"], rep
        objectives[rep] = bal.solver_info_["objective"]
    f0 = bal.solver_info_["initial_objective"]
    assert abs(objectives["dense"] - objectives["lowrank"]) <= 1e-8 * f0


def test_large_problem_uses_low_rank_factor_and_certifies_exactly():
    rng = np.random.default_rng(0)
    n0, n1 = 3000, 150
    X = np.vstack([rng.standard_normal((n0, 3)), rng.standard_normal((n1, 3)) + 0.5])
    t = np.r_[np.zeros(n0), np.ones(n1)]
    bal = IPMBalancer().fit(X, t)
    info = bal.solver_info_
    assert info["representation"] in ("lowrank", "lowrank+working-set")
    assert info["converged"] and info["relative_gap"] <= 1e-8
    # The exact objective is what was reported, and it is tiny.
    assert info["objective"] < 1e-6 * info["initial_objective"]


def test_custom_ipm_can_be_registered():
    class UniformIPM(BalancingIPM):
        """Returns the unweighted masses (a do-nothing class for the test)."""

        def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
            return base_mass, {"converged": True, "solver": "none"}

        def squared_distance(self, Z, source, source_mass, target, target_mass):
            diff = Z[source].T @ source_mass - Z[target].T @ target_mass
            return float(diff @ diff)

    register_ipm("test-uniform", UniformIPM, overwrite=True)
    assert "test-uniform" in available_ipms()
    X, t, _ = _ks(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        bal = IPMBalancer(ipm="test-uniform").fit(X, t)
    np.testing.assert_allclose(bal.weights_[t == 0], (t == 1).sum() / (t == 0).sum())
    with pytest.raises(ValueError, match="already registered"):
        register_ipm("mmd", UniformIPM)
    with pytest.raises(TypeError, match="subclass of BalancingIPM"):
        register_ipm("bad", object)


def test_neural_ipm_needs_weightstats_nn():
    X, t, _ = _ks(50)
    if "neural" in available_ipms():
        pytest.skip("weightstats.nn has registered 'neural'")
    with pytest.raises(ValueError, match="import weightstats.nn"):
        IPMBalancer(ipm="neural").fit(X, t)


def test_median_bandwidth_is_the_median_distance():
    X, t, _ = _ks(200)
    bal = IPMBalancer(bandwidth="median").fit(X, t)
    assert 1.0 < bal.bandwidth_ < 4.0
    assert IPMBalancer(ipm="energy").fit(X, t).bandwidth_ is None


# --------------------------------------------------------------------- sample weights, invariances


# Well-conditioned problems solved tightly: the weights are then unique (with the
# default bandwidth 10 only the objective is, to rounding).
@pytest.mark.parametrize("est", [IPMBalancer(bandwidth=1.0, tol=1e-12),
                                 IPMBalancer(ipm="energy", tol=1e-12), EntropyBalancer(),
                                 PropensityBalancer(estimand="ATT")],
                         ids=lambda e: f"{type(e).__name__}-{getattr(e, 'ipm', '')}")
def test_integer_sample_weights_equal_repeated_rows(est):
    X, t, _ = _ks(120, seed=1)
    counts = np.random.default_rng(0).integers(0, 3, size=t.size)
    counts[:4] = 1
    weighted = est.fit(X, t, sample_weight=counts).weights_.copy()
    rows = np.repeat(np.arange(t.size), counts)
    repeated = est.fit(X[rows], t[rows]).weights_
    keep = counts > 0
    np.testing.assert_allclose(weighted[keep][np.repeat(np.arange(keep.sum()), counts[keep])],
                               repeated, rtol=1e-5, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_weights_are_permutation_equivariant(data):
    X, t, _ = _ks(80, seed=data.draw(st.integers(0, 50)), misspecified=False)
    perm = data.draw(permutations(t.size))
    for est in (IPMBalancer(), EntropyBalancer()):
        w = est.fit(X, t).weights_.copy()
        np.testing.assert_allclose(est.fit(X[perm], t[perm]).weights_, w[perm], rtol=1e-6,
                                   atol=1e-8)


@settings(max_examples=10, deadline=None)
@given(st.floats(0.01, 100), st.floats(-1e3, 1e3), st.integers(0, 30))
def test_standardised_weights_ignore_affine_rescaling(scale, shift, seed):
    X, t, _ = _ks(60, seed=seed)
    w = IPMBalancer().fit(X, t).weights_
    w2 = IPMBalancer().fit(X * scale + shift, t).weights_
    np.testing.assert_allclose(w2, w, rtol=1e-5, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_ess_is_bounded_by_group_sizes(data):
    n = data.draw(st.integers(10, 40))
    t = data.draw(binary_treatments(n, min_per_group=3))
    X = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal((n, 2))
    X[t == 1] += 0.3
    bal = IPMBalancer(bandwidth=2.0).fit(X, t)
    assert 1.0 - 1e-9 <= bal.ess_["control"] <= (t == 0).sum() + 1e-9
    assert bal.ess_["treated"] == pytest.approx((t == 1).sum())
    assert bal.ipm_after_ <= bal.ipm_before_ + 1e-12


# --------------------------------------------------------------------- diagnostics


def test_balance_table_matches_direct_computation():
    X, t, _ = _ks(300)
    w = np.random.default_rng(1).uniform(0.1, 3, size=t.size)
    table = balance_table(X, t, w, estimand="ATT")
    x, treated = X[:, 1], t == 1
    sd1 = np.sqrt(np.cov(x[treated]))
    smd = (np.average(x[treated], weights=w[treated]) - np.average(x[~treated], weights=w[~treated])) / sd1
    assert table.iloc[1]["smd_after"] == pytest.approx(smd)
    ks = stats.ks_2samp(x[treated], x[~treated]).statistic
    assert table.iloc[1]["ks_before"] == pytest.approx(ks)
    vr = np.cov(x[treated]) / np.cov(x[~treated])
    assert table.iloc[1]["variance_ratio_before"] == pytest.approx(vr)
    assert table.attrs["ess"]["before"] == {"treated": treated.sum(), "control": (~treated).sum()}
    frame = balance_table(pd.DataFrame(X, columns=list("abcd")), t)
    assert list(frame.index) == list("abcd")
    np.testing.assert_allclose(frame["smd_before"], frame["smd_after"])


def test_effective_sample_size():
    assert effective_sample_size(np.ones(7)) == pytest.approx(7)
    assert effective_sample_size([5, 0, 0]) == pytest.approx(1)
    assert effective_sample_size([1, 2, 3, 4], treatment=["a", "b", "a", "b"], pos_label="b") == {
        "treated": pytest.approx(36 / 20), "control": pytest.approx(16 / 10)}
    with pytest.raises(ValueError, match="non-negative"):
        effective_sample_size([1, -1])


@pytest.mark.requires("matplotlib")
def test_love_plot_draws_every_covariate():
    import matplotlib.pyplot as plt

    from weightstats.balancing import love_plot
    from weightstats.plotting import love_plot as reexported

    assert reexported is love_plot
    X, t, _ = _ks(200)
    table = IPMBalancer().fit(X, t).balance_table()
    for stat in ("smd", "ks", "variance_ratio"):
        ax = love_plot(table, stat=stat)
        assert [tick.get_text() for tick in ax.get_yticklabels()] != []
        assert len(ax.collections) == 2  # before and after
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="stat must be"):
        love_plot(table, stat="mean")


# --------------------------------------------------------------------- effects


def test_augmented_effect_with_perfect_outcome_model_is_exact():
    # y is linear in X with effect 2: any weights give the truth once augmented with OLS.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    t = (X[:, 0] + rng.standard_normal(200) > 0).astype(int)
    y = X @ [1.0, -2.0, 0.5] + 2.0 * t
    w = np.where(t == 1, 1.0, rng.uniform(0.5, 2, size=200))
    for estimand in ("ATT", "ATC", "ATE"):
        res = weighted_effect(y, t, w, estimand=estimand, X=X, augment="ols")
        assert res.effect == pytest.approx(2.0, abs=1e-10)
        res2 = weighted_effect(y, t, w, estimand=estimand, X=X, augment=LinearRegression())
        assert res2.effect == pytest.approx(2.0, abs=1e-10)


def test_effect_results_summary_and_frame():
    X, t, y = _ks(300)
    bal = IPMBalancer().fit(X, t)
    info = dict(bal.solver_info_)
    res = bal.estimate_effect(y)
    assert bal.solver_info_ == info  # results never modify the fitted state
    assert isinstance(res, EffectResults)
    frame = res.summary_frame()
    assert list(frame.index) == ["ATT"]
    assert frame.loc["ATT", "estimate"] == res.effect
    lo, hi = res.conf_int(0.05)
    assert lo < res.effect < hi
    text = str(res.summary())
    for piece in ("Treatment effect (ATT)", "IPM balancing", "treat the weights as fixed",
                  "converged"):
        assert piece in text
    assert res.mean_treated - res.mean_control == pytest.approx(res.effect)


def test_bootstrap_standard_error_refits_the_weights():
    X, t, y = _ks(200)
    eb = EntropyBalancer(random_state=0).fit(X, t)
    res = eb.estimate_effect(y, se="bootstrap", n_bootstrap=60)
    assert res.bootstrap_estimates.shape == (60, 1)
    assert res.se == pytest.approx(np.std(res.bootstrap_estimates[:, 0], ddof=1))
    lo, hi = res.conf_int(0.1, method="percentile")
    assert lo < hi
    again = EntropyBalancer(random_state=0).fit(X, t).estimate_effect(y, se="bootstrap",
                                                                      n_bootstrap=60)
    np.testing.assert_array_equal(again.bootstrap_estimates, res.bootstrap_estimates)
    parallel = EntropyBalancer(random_state=0, n_jobs=2).fit(X, t).estimate_effect(
        y, se="bootstrap", n_bootstrap=60)
    np.testing.assert_allclose(parallel.bootstrap_estimates, res.bootstrap_estimates)
    assert "60 resamples" in str(res.summary())


def test_bootstrap_drops_failed_resamples():
    t = np.r_[np.zeros(20, bool), np.ones(20, bool)]

    def statistic(idx):
        if idx[0] % 2:
            raise ValueError("infeasible resample")
        return float(idx.mean())

    values, failed, unconverged = bootstrap_replicates(statistic, t, n_resamples=40,
                                                       random_state=0)
    assert failed > 0 and values.size == 40 - failed and unconverged == 0
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_replicates(statistic, t, n_resamples=1)


# --------------------------------------------------------------------- bad input and edge cases


@pytest.mark.parametrize("est", [IPMBalancer(), EntropyBalancer(), PropensityBalancer()],
                         ids=lambda e: type(e).__name__)
def test_treatment_problems_raise_clear_errors(est):
    X = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match="exactly two distinct values"):
        est.fit(X, np.arange(20) % 3)
    with pytest.raises(ValueError, match="exactly two distinct values"):
        est.fit(X, np.ones(20))
    with pytest.raises(ValueError, match="at least 2"):
        est.fit(X, np.r_[1, np.zeros(19)])
    with pytest.raises(ValueError, match="pos_label"):
        est.fit(X, np.where(np.arange(20) % 2, "a", "b"))
    fitted = est.set_params(pos_label="a").fit(X, np.where(np.arange(20) % 2, "a", "b"))
    np.testing.assert_array_equal(fitted.treated_, np.arange(20) % 2 == 1)
    est.set_params(pos_label=None)


def test_constant_covariates_are_dropped_with_a_warning():
    X, t, _ = _ks(100)
    X = np.column_stack([X, np.full(100, 3.0)])
    with pytest.warns(UserWarning, match="constant and were dropped"):
        IPMBalancer().fit(X, t)
    with pytest.raises(ValueError, match="every covariate is constant"):
        IPMBalancer().fit(np.ones((20, 2)), np.arange(20) % 2)


def test_separated_groups_warn_with_ipm_and_ess():
    rng = np.random.default_rng(0)
    X = np.r_[rng.standard_normal((30, 2)), rng.standard_normal((30, 2)) + 8]
    t = np.r_[np.zeros(30), np.ones(30)]
    with pytest.warns(OverlapWarning, match=r"IPM is .* before and .* after.*effective sample"):
        IPMBalancer().fit(X, t)
    with pytest.raises(ValueError, match="exact balance is infeasible"):
        EntropyBalancer().fit(X, t)
    with pytest.warns(OverlapWarning, match=r"x0 separate the treated and control groups"):
        ipw = PropensityBalancer().fit(X, t)
    assert not ipw.solver_info_["converged"] and ipw.solver_info_["separated_by"] == ["x0"]


def test_non_convergence_warns_with_the_achieved_gap():
    X, t, _ = _ks(200)
    with pytest.warns(ConvergenceWarning, match="relative duality gap"):
        IPMBalancer(max_iter=3).fit(X, t)
    with pytest.warns(ConvergenceWarning, match="imbalance"):
        EntropyBalancer(max_iter=1, tol=1e-14).fit(X, t)


def test_invalid_options_raise():
    X, t, y = _ks(60)
    with pytest.raises(ValueError, match="unknown ipm"):
        IPMBalancer(ipm="wasserstein").fit(X, t)
    with pytest.raises(ValueError, match="nonparametric"):
        IPMBalancer(ipm="sigmoid", weight_model="linear").fit(X, t)
    bal = IPMBalancer().fit(X, t)
    with pytest.raises(ValueError, match="se must be"):
        bal.estimate_effect(y, se="jackknife")
    with pytest.raises(ValueError, match="augment must be"):
        bal.estimate_effect(y, augment="forest")
    with pytest.raises(ValueError, match="entries"):
        bal.estimate_effect(y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        bal.estimate_effect(np.r_[np.nan, y[1:]])
    with pytest.raises(ValueError, match="clip"):
        PropensityBalancer(clip=(0.9, 0.1)).fit(X, t)


def test_auto_uses_a_certified_factor_for_mid_sized_problems():
    """Between 200 and 2500 reweighted units, "auto" solves on a low-rank factor
    when one of rank below n/3 suffices; the exact certificate holds and the
    objective equals the dense solve's to within the tolerance."""
    ks = make_kang_schafer(1000, random_state=1)
    n_controls = int((ks.treatment == 0).sum())
    auto = IPMBalancer().fit(ks.data, ks.treatment)
    dense = IPMBalancer(representation="dense").fit(ks.data, ks.treatment)
    info, ref = auto.solver_info_, dense.solver_info_
    assert info["representation"] == "lowrank" and ref["representation"] == "dense"
    assert info["converged"] and info["relative_gap"] <= 1e-8
    assert info["rank"] < n_controls / 3
    assert abs(info["objective"] - ref["objective"]) <= 2e-8 * ref["tolerance_scale"]


def test_auto_falls_back_to_dense_when_the_factor_is_not_certified(monkeypatch):
    from weightstats.balancing import _ipm

    original = _ipm._KernelIPM._refine_lowrank

    def uncertified(self, *args, **kwargs):
        res = original(self, *args, **kwargs)
        res["converged"] = False
        return res

    monkeypatch.setattr(_ipm._KernelIPM, "_refine_lowrank", uncertified)
    ks = make_kang_schafer(1000, random_state=1)
    bal = IPMBalancer().fit(ks.data, ks.treatment)
    info = bal.solver_info_
    assert info["representation"] == "dense" and info["converged"] and "rank" not in info
    # An explicit low-rank request is honoured (and its failure reported).
    with pytest.warns(ConvergenceWarning):
        IPMBalancer(representation="lowrank").fit(ks.data, ks.treatment)


# --------------------------------------------------------------------- the propensity model


def _separated_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, 3)), columns=["age", "income", "score"])
    t = (X["income"] + 0.5 * X["score"] > 0).astype(int)
    return X, t


def test_propensity_model_detects_complete_separation_and_names_covariates():
    X, t = _separated_frame()
    with pytest.warns(OverlapWarning, match=r"income, score separate the treated and control") \
            as record:
        ipw = PropensityBalancer().fit(X, t)
    assert "age" not in str(record[0].message)
    info = ipw.solver_info_
    assert info["converged"] is False and info["separated_by"] == ["income", "score"]
    assert ipw.estimator_.separation_["n_separated"] >= 190


def test_propensity_model_detects_quasi_complete_separation():
    # Every unit with the indicator is treated; without it both groups occur: the
    # MLE does not exist (the indicator's coefficient runs to infinity).
    rng = np.random.default_rng(1)
    z = rng.standard_normal(300)
    b = rng.uniform(size=300) < 0.2
    t = np.where(b, 1, (rng.uniform(size=300) < 0.3).astype(int))
    X = np.column_stack([z, b])
    with pytest.warns(OverlapWarning, match=r"covariate\(s\) x1 separate"):
        ipw = PropensityBalancer(estimand="ATT").fit(X, t)
    assert ipw.estimator_.separation_["n_separated"] == b.sum()  # exactly those units
    assert ipw.solver_info_["converged"] is False


def test_overlapping_groups_fit_without_warnings_and_certify_quickly():
    """The converged score equations certify overlap, so no linear program runs."""
    data = load_lalonde(controls="cps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ipw = PropensityBalancer(estimand="ATT").fit(data.data, data.treatment)
    info = ipw.solver_info_
    assert info["converged"] and info["score_max"] < 1e-10 and "separated_by" not in info
    assert info["condition_number"] < 10


def test_propensity_model_reports_aliased_and_near_collinear_covariates():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.standard_normal((300, 3)), columns=["a", "b", "c"])
    X["twice_a"] = 2 * X["a"] + 1
    X["almost_c"] = X["c"] + 1e-5 * rng.standard_normal(300)
    t = (X["a"] + rng.standard_normal(300) > 0).astype(int)
    with pytest.warns(UserWarning) as record:
        ipw = PropensityBalancer().fit(X, t)
    messages = [str(w.message) for w in record]
    assert any(m.startswith("covariate(s) twice_a are exact linear combinations")
               for m in messages)
    assert any(m.startswith("covariates c, almost_c are nearly collinear") for m in messages)
    model = ipw.estimator_
    assert model.aliased_ == [3] and model.coef_[0, 3] == 0.0
    # The propensities equal those of the model without the aliased column.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced = PropensityBalancer().fit(X.drop(columns="twice_a"), t)
    np.testing.assert_allclose(ipw.propensity_, reduced.propensity_, rtol=1e-8)


def test_propensity_design_and_coefficients_reproduce_the_scores():
    """What stacked estimating equations need: the design as fitted and its coefficients."""
    X, t, _ = _ks(300)
    ipw = PropensityBalancer(estimand="ATT").fit(X, t)
    model = ipw.estimator_
    D = model.design(X)
    assert D.shape == (300, 5)
    np.testing.assert_allclose(D[:, 1:].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(D[:, 1:].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(ipw.propensity_, stats.logistic.cdf(D @ model.design_coef_))
    # The score equations hold at the fit.
    assert np.max(np.abs(D.T @ (t - ipw.propensity_))) < 1e-8
    # coef_ and intercept_ describe the same model on the original covariates.
    np.testing.assert_allclose(X @ model.coef_[0] + model.intercept_[0],
                               D @ model.design_coef_, atol=1e-9)


def test_huge_offset_columns_are_kept_in_every_balancer():
    """A column 1e12 + N(0, 1) is a real covariate: it was dropped as "constant"
    (rule sd > 1e-12 max|x|) and fell out of the propensity model's least squares."""
    X, t, y = _ks(300)
    shifted = X.copy()
    shifted[:, 1] += 1e12
    for make in (IPMBalancer, EntropyBalancer, PropensityBalancer):
        base = make().fit(X, t)
        with pytest.warns(UserWarning, match=r"x1 vary little next to their size \(\|mean\| / sd"
                                             r" up to 1\.\de\+12\).*about [34] significant"):
            moved = make().fit(shifted, t)
        # float64 keeps about 4 digits of the variation: the answers agree to that.
        assert moved.estimate_effect(y).effect == pytest.approx(
            base.estimate_effect(y).effect, rel=2e-3), make.__name__
        assert moved.balance_table()["smd_after"].abs().max() < 0.1
    naive = y[t == 1].mean() - y[t == 0].mean()
    ipw = PropensityBalancer().fit(shifted, t)
    assert abs(ipw.estimate_effect(y).effect - naive) > 1.0  # not the intercept-only answer
    assert ipw.estimator_.design_columns_.tolist() == [0, 1, 2, 3]


@settings(max_examples=10, deadline=None)
@given(column=st.integers(0, 3), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e6, 1e6),
       seed=st.integers(0, 30))
def test_estimates_are_invariant_to_affine_maps_of_one_covariate(column, scale, shift, seed):
    X, t, y = _ks(80, seed=seed)
    moved = X.copy()
    moved[:, column] = moved[:, column] * scale + shift
    for make in (EntropyBalancer, lambda: PropensityBalancer(estimand="ATT")):
        a = make().fit(X, t).estimate_effect(y).effect
        b = make().fit(moved, t).estimate_effect(y).effect
        assert b == pytest.approx(a, rel=1e-6, abs=1e-6)


def test_overlap_weights_are_one_minus_e_and_e_normalised_per_arm():
    X, t, y = _ks(300)
    ato = PropensityBalancer(estimand="ATO").fit(X, t)
    e, treated = ato.propensity_, t == 1
    raw = np.where(treated, 1 - e, e)
    n = t.size
    np.testing.assert_allclose(ato.weights_[treated], raw[treated] * n / raw[treated].sum())
    np.testing.assert_allclose(ato.weights_[~treated], raw[~treated] * n / raw[~treated].sum())
    unstabilised = PropensityBalancer(estimand="ATO", stabilize=False).fit(X, t)
    np.testing.assert_allclose(unstabilised.weights_, raw)
    # Overlap weights from a logistic MLE balance every covariate mean exactly.
    assert ato.balance_table()["smd_after"].abs().max() < 1e-8
    res = ato.estimate_effect(y)
    assert res.estimand == "ATO" and "ATO" in str(res.summary())
    mean1 = np.average(y[treated], weights=raw[treated])
    mean0 = np.average(y[~treated], weights=raw[~treated])
    assert res.effect == pytest.approx(mean1 - mean0)
    assert weighted_effect(y, t, ato.weights_, estimand="ATO").effect == pytest.approx(res.effect)
    with pytest.raises(ValueError, match="augment is not available for estimand='ATO'"):
        ato.estimate_effect(y, augment="ols")
    # Separation cannot make overlap weights infinite.
    Xs, ts = _separated_frame()
    with pytest.warns(OverlapWarning):
        assert np.all(np.isfinite(PropensityBalancer(estimand="ATO").fit(Xs, ts).weights_))
    with pytest.raises(ValueError, match="estimand"):
        EntropyBalancer(estimand="ATO").fit(X, t)


def test_ipm_overlap_warning_names_covariates():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(np.r_[rng.standard_normal((30, 2)), rng.standard_normal((30, 2))],
                     columns=["age", "income"])
    X.loc[30:, "income"] += 8
    t = np.r_[np.zeros(30), np.ones(30)]
    with pytest.warns(OverlapWarning, match=r"covariate\(s\) income separate the groups"):
        IPMBalancer().fit(X, t)
