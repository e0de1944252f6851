"""Statistical guarantees of the balancers, by simulation (slow-marked, run in CI).

Sizes are chosen to fit the CI budget; each test states its replications and
tolerances. The full tables of the user guide come from this module too:
``python -m tests.test_balancing_simulation 200`` (200 replications of each
design, about 20 minutes on one core).
"""

import sys
import time
import warnings

import numpy as np
import pytest
from scipy.special import expit

from weightstats.balancing import EntropyBalancer, IPMBalancer, PropensityBalancer
from weightstats.datasets import make_kang_schafer

pytestmark = pytest.mark.slow

# ----------------------------------------------------------------------------- designs

# A design of our own whose outcome is nonlinear in the covariates (a square and
# an interaction) with a heterogeneous effect, and whose propensity score is
# logistic-linear: inverse probability weighting and entropy balancing are
# consistent (the latter through the propensity model), as is MMD balancing.
_PS_COEF = np.array([0.6, -0.6, 0.3, 0.0])


def _nonlinear_att():
    """``1 + 0.5 E[x1 | T = 1]``: with ``eta = x' PS_COEF ~ N(0, s^2)``,
    ``E[x1 | eta] = (0.6 / s^2) eta`` and ``E[x1 e] = (0.6 / s^2) E[eta expit(eta)]``,
    by Gauss-Hermite quadrature (E[e] = 1/2 by symmetry)."""
    s2 = float(_PS_COEF @ _PS_COEF)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    eta = np.sqrt(s2) * nodes
    e_eta = float(weights @ (eta * expit(eta)) / weights.sum())
    return 1.0 + 0.5 * (0.6 / s2) * e_eta / 0.5


NONLINEAR_ATT = _nonlinear_att()


def make_nonlinear(n, random_state):
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n, 4))
    treated = rng.uniform(size=n) < expit(X @ _PS_COEF)
    m0 = X[:, 0] + X[:, 1] ** 2 + X[:, 0] * X[:, 2] + 0.5 * X[:, 3]
    y = m0 + treated * (1.0 + 0.5 * X[:, 0]) + rng.standard_normal(n)
    return X, treated.astype(int), y, NONLINEAR_ATT


def make_design(design, n, random_state):
    if design == "nonlinear":
        return make_nonlinear(n, random_state)
    ks = make_kang_schafer(n, misspecified=design == "ks-misspecified",
                           random_state=random_state)
    return ks.data, ks.treatment, ks.target, ks.true_effect


DESIGNS = ("ks-correct", "ks-misspecified", "nonlinear")

# (name, balancer, standard errors recorded; the first is the default)
METHODS = (
    ("MMD", lambda: IPMBalancer(), ("auto", "sandwich")),
    ("entropy", lambda: EntropyBalancer(), ("auto", "m-estimation", "residual", "sandwich")),
    ("IPW", lambda: PropensityBalancer(estimand="ATT"), ("auto", "sandwich")),
)


def simulate(design, reps, n=1000, seed=0, only_defaults=False):
    """Estimates and standard errors: ``{method: {"effect": [...], se_name: [...]}}``.

    ``only_defaults`` records the default and the raw-outcome sandwich only.
    """
    methods = [(name, make, ses[:1] + ses[-1:] if only_defaults else ses)
               for name, make, ses in METHODS]
    out = {name: {"effect": [], **{se: [] for se in ses}} for name, _, ses in methods}
    truth = None
    for rep in range(reps):
        X, t, y, truth = make_design(design, n, seed + rep)
        for name, make, ses in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # overlap warnings of the hard designs
                est = make().set_params(random_state=rep).fit(X, t)
                for se in ses:
                    res = est.estimate_effect(y, se=se)
                    out[name][se].append(res.se)
            out[name]["effect"].append(res.effect)
    for name in out:
        out[name] = {key: np.asarray(val) for key, val in out[name].items()}
        out[name]["truth"] = truth
    return out


def summarise(result, z=1.959964):
    """Bias, SD, RMSE; and per standard error mean(SE)/SD and 95% Wald coverage."""
    rows = {}
    for name, values in result.items():
        effect, truth = values["effect"], values["truth"]
        sd = float(np.std(effect, ddof=1))
        row = {"bias": float(effect.mean() - truth), "sd": sd,
               "rmse": float(np.sqrt(np.mean((effect - truth) ** 2)))}
        for se_name, se in values.items():
            if se_name in ("effect", "truth"):
                continue
            row[f"{se_name}: se/sd"] = float(se.mean() / sd)
            row[f"{se_name}: coverage"] = float(np.mean(np.abs(effect - truth) <= z * se))
        rows[name] = row
    return rows


# ----------------------------------------------------------------------------- tests

# 60 replications per design (about 3 minutes in all on one core). The Monte
# Carlo standard error of a 95% coverage is then 0.028 and that of se/sd about
# 0.09: the user guide's 200-replication run meets the targets [0.92, 0.98] and
# [0.8, 1.25]; here the bands are widened by about two Monte Carlo standard
# errors, to [0.87, 1.0] and [0.7, 1.4].
CI_REPS = 60
_CONSISTENT = {"ks-correct": ("MMD", "entropy", "IPW"), "ks-misspecified": (),
               "nonlinear": ("MMD", "entropy", "IPW")}


@pytest.fixture(scope="module")
def simulated():
    return {design: summarise(simulate(design, CI_REPS, only_defaults=True))
            for design in DESIGNS}


@pytest.mark.parametrize("design", DESIGNS)
def test_default_standard_errors_are_calibrated(simulated, design):
    for name in _CONSISTENT[design]:
        row = simulated[design][name]
        assert 0.7 <= row["auto: se/sd"] <= 1.4, (design, name, row)
        assert 0.87 <= row["auto: coverage"] <= 1.0, (design, name, row)


def test_kang_schafer_rmse_mmd_beats_entropy_beats_logistic_ipw(simulated):
    """Kang-Schafer, misspecified X, n = 1000, true ATT = 0: the RMSE ordering of
    an independent re-implementation (about 2.6, 4.5 and 7.2) holds, and the
    stable MMD weights stay within 20% of the exact ones' RMSE or better."""
    rmse = {name: row["rmse"] for name, row in simulated["ks-misspecified"].items()}
    assert rmse["MMD"] < rmse["entropy"] < rmse["IPW"], rmse
    assert rmse["MMD"] < 1.2 * 2.6
    for name, reference in (("entropy", 4.5), ("IPW", 7.2)):
        assert abs(rmse[name] / reference - 1) < 0.2, (name, rmse)


def test_raw_outcome_sandwich_is_far_too_wide_on_kang_schafer(simulated):
    """What the calibrated defaults replace: the raw-outcome sandwich is many times
    the actual spread of the balancing estimates when the covariates explain the
    outcome."""
    for name in ("MMD", "entropy"):
        assert simulated["ks-correct"][name]["sandwich: se/sd"] > 10


def test_bootstrap_intervals_cover_on_a_correctly_specified_design():
    """Entropy balancing on Kang-Schafer with the true covariates Z (n = 300).

    100 replications of a 100-resample bootstrap (~20 s). With 100
    replications the Monte Carlo standard error of a 95% coverage is 0.022:
    we require the bootstrap Wald interval to cover in [0.88, 0.99], the
    percentile interval in [0.85, 0.99], and the mean bootstrap standard error
    to be within 20% of the standard deviation of the estimates. The sandwich
    interval (weights treated as fixed) must not under-cover.
    """
    wald = percentile = sandwich = 0
    effects, ses = [], []
    reps = 100
    for rep in range(reps):
        ks = make_kang_schafer(300, misspecified=False, random_state=1000 + rep)
        eb = EntropyBalancer(random_state=rep).fit(ks.data, ks.treatment)
        res = eb.estimate_effect(ks.target, se="bootstrap", n_bootstrap=100)
        lo, hi = res.conf_int(0.05)
        wald += lo <= 0 <= hi
        lo, hi = res.conf_int(0.05, method="percentile")
        percentile += lo <= 0 <= hi
        lo, hi = eb.estimate_effect(ks.target, se="sandwich").conf_int(0.05)
        sandwich += lo <= 0 <= hi
        effects.append(res.effect)
        ses.append(res.se)
    assert 0.88 <= wald / reps <= 0.99
    assert 0.85 <= percentile / reps <= 0.99
    assert sandwich / reps >= 0.9
    assert abs(np.mean(ses) / np.std(effects) - 1) < 0.2


def slack_sweep(design, reps, slacks=(0.0, 1e-5, 1e-4, 1e-3, 1e-2), n=1000, seed=0):
    """MMD weights over ``slack`` (0: the exact solution): bias, SD, RMSE, control ESS
    and the coverage of the default (residual) interval."""
    rows = {}
    for slack in slacks:
        effect, se, ess, truth = [], [], [], None
        for rep in range(reps):
            X, t, y, truth = make_design(design, n, seed + rep)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bal = IPMBalancer(slack=slack, random_state=rep).fit(X, t)
            res = bal.estimate_effect(y)
            effect.append(res.effect)
            se.append(res.se)
            ess.append(bal.ess_["control"])
        effect, se = np.asarray(effect), np.asarray(se)
        rows[f"slack={slack:g}"] = {
            "bias": float(effect.mean() - truth), "sd": float(effect.std(ddof=1)),
            "rmse": float(np.sqrt(np.mean((effect - truth) ** 2))),
            "control ESS": float(np.mean(ess)), "se/sd": float(se.mean() / effect.std(ddof=1)),
            "coverage": float(np.mean(np.abs(effect - truth) <= 1.959964 * se)),
        }
    return rows


def _format(rows):
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in rows.items():
        cells = (f"{row[k]:.3g}" if k in row else "" for k in keys)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # the user guide's tables
    if sys.argv[1:2] == ["slack"]:
        reps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
        for design in sys.argv[3:] or DESIGNS:
            start = time.perf_counter()
            rows = slack_sweep(design, reps)
            print(f"\n{design}, MMD over slack, n = 1000, {reps} replications "
                  f"({time.perf_counter() - start:.0f} s)")
            print(_format(rows), flush=True)
        sys.exit()
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    designs = sys.argv[2:] or DESIGNS
    for design in designs:
        start = time.perf_counter()
        rows = summarise(simulate(design, reps))
        print(f"\n{design}, n = 1000, {reps} replications "
              f"({time.perf_counter() - start:.0f} s)")
        print(_format(rows), flush=True)
