"""The ``"neural"`` IPM (an adversarially trained MLP critic) registered by weightstats.nn."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

pytest.importorskip("torch")

# Tiny runs (a few epochs on ~100 units) leave imbalance behind by design.
pytestmark = pytest.mark.filterwarnings("ignore::weightstats.balancing.OverlapWarning")

import weightstats.nn  # noqa: E402  (registers ipm="neural")
from weightstats.balancing import (  # noqa: E402
    IPMBalancer,
    available_ipms,
    balance_table,
    register_ipm,
)
from weightstats.balancing import _ipm  # noqa: E402
from weightstats.datasets import make_kang_schafer  # noqa: E402
from weightstats.nn import NeuralCriticIPM  # noqa: E402

# The default 300 epochs (the reference runs 1000) on n = 400: about 3 s.
FAST = {"distance_steps": 50}


@pytest.fixture(scope="module")
def ks():
    return make_kang_schafer(400, random_state=1)


@pytest.fixture(scope="module")
def fitted(ks):
    return IPMBalancer(ipm="neural", random_state=0, ipm_params=FAST).fit(ks.data, ks.treatment)


def test_registered_on_import_and_reimport_is_safe():
    import importlib

    assert "neural" in available_ipms()
    assert _ipm._REGISTRY["neural"] is NeuralCriticIPM
    importlib.reload(weightstats.nn)  # registers a new class object: must not raise
    # ...and leaves a working "neural" class behind; restore the original object.
    register_ipm("neural", NeuralCriticIPM, overwrite=True)
    assert "NeuralCriticIPM" in weightstats.nn.__all__


def test_unregistered_hint_names_weightstats_nn(monkeypatch):
    monkeypatch.delitem(_ipm._REGISTRY, "neural")
    X = np.random.default_rng(0).standard_normal((20, 2))
    t = np.r_[np.zeros(10), np.ones(10)]
    with pytest.raises(ValueError, match="import weightstats.nn to register it"):
        IPMBalancer(ipm="neural").fit(X, t)


def test_reduces_imbalance_and_att_bias(ks, fitted):
    X, t, y = ks.data, ks.treatment, ks.target
    info = fitted.solver_info_
    assert info["converged"] and info["iterations"] == 300
    assert info["weight_change"] < 0.02
    assert info["solver"] == "alternating Adam (gradient penalty 0.3, clipping 0.1)"
    # The critic-measured IPM falls by more than 10x.
    assert fitted.ipm_after_ < 0.1 * fitted.ipm_before_
    table = balance_table(X, t, fitted.weights_)
    # Seen: max |SMD| 1.40 -> 0.0098, max KS 0.47 -> 0.23.
    smd_before, smd_after = table["smd_before"].abs().max(), table["smd_after"].abs().max()
    assert smd_before > 1.0 and smd_after < 0.05
    assert table["ks_after"].max() < 0.6 * table["ks_before"].max()
    # The true effect is 0. Seen: naive -26.0, weighted -4.04.
    naive = y[t == 1].mean() - y[t == 0].mean()
    effect = fitted.estimate_effect(y).effect
    assert abs(effect - ks.true_effect) < 0.25 * abs(naive - ks.true_effect)


def test_weights_follow_the_normalisation_rules(ks, fitted):
    w, t = fitted.weights_, ks.treatment == 1
    assert np.all(w >= 0) and np.all(np.isfinite(w))
    np.testing.assert_allclose(w[t], 1.0)
    np.testing.assert_allclose(w[~t].sum(), t.sum(), rtol=1e-10)


def test_ate_reweights_both_arms_to_the_pooled_sample(ks):
    X, t = ks.data[:200], ks.treatment[:200]
    bal = IPMBalancer("ATE", ipm="neural", random_state=0,
                      ipm_params={"n_epochs": 60, "distance_steps": 30, "tol": 1.0}).fit(X, t)
    w = bal.weights_
    np.testing.assert_allclose([w[t == 1].sum(), w[t == 0].sum()], [200, 200], rtol=1e-10)
    assert all(bal.solver_info_[arm]["iterations"] == 60 for arm in ("treated", "control"))
    assert bal.ipm_after_ < bal.ipm_before_


def test_deterministic_given_random_state(ks):
    X, t = ks.data[:150], ks.treatment[:150]
    params = {"n_epochs": 40, "distance_steps": 20, "tol": 1.0}
    runs = [IPMBalancer(ipm="neural", random_state=3, ipm_params=params).fit(X, t)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].weights_, runs[1].weights_)
    assert runs[0].ipm_before_ == runs[1].ipm_before_
    assert runs[0].ipm_after_ == runs[1].ipm_after_
    other = IPMBalancer(ipm="neural", random_state=4, ipm_params=params).fit(X, t)
    assert not np.array_equal(other.weights_, runs[0].weights_)


def test_global_torch_rng_untouched(ks):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    IPMBalancer(ipm="neural", random_state=0,
                ipm_params={"n_epochs": 5, "distance_steps": 5, "tol": 10.0}).fit(
        ks.data[:60], ks.treatment[:60])
    assert torch.equal(torch.rand(3), expected)


def test_squared_distance_is_deterministic_and_zero_for_identical_samples(ks):
    bal = IPMBalancer(ipm="neural", ipm_params={"distance_steps": 30})
    ipm = NeuralCriticIPM(bal, distance_steps=30)
    Z = (ks.data - ks.data.mean(0)) / ks.data.std(0)
    ipm.prepare(Z, np.random.RandomState(0))
    t, c = np.flatnonzero(ks.treatment == 1), np.flatnonzero(ks.treatment == 0)
    mt, mc = np.full(t.size, 1 / t.size), np.full(c.size, 1 / c.size)
    first = ipm.squared_distance(Z, t, mt, c, mc)
    assert first > 0.1 and first == ipm.squared_distance(Z, t, mt, c, mc)
    assert ipm.squared_distance(Z, c, mc, c, mc) < 1e-10


def test_linear_weight_model_and_l2_penalty(ks):
    X, t = ks.data[:300], ks.treatment[:300]
    params = {"n_epochs": 100, "distance_steps": 30, "tol": 1.0}
    lin = IPMBalancer(ipm="neural", weight_model="linear", random_state=0,
                      ipm_params=params).fit(X, t)
    assert lin.ipm_after_ < 0.5 * lin.ipm_before_
    # Tilting weights are log-linear in the (standardised) covariates.
    c = t == 0
    Z = (X - X.mean(0)) / X.std(0)
    logw = np.log(lin.weights_[c])
    resid = logw - np.c_[np.ones(c.sum()), Z[c]] @ np.linalg.lstsq(
        np.c_[np.ones(c.sum()), Z[c]], logw, rcond=None)[0]
    assert np.abs(resid).max() < 1e-4
    plain = IPMBalancer(ipm="neural", random_state=0, ipm_params=params).fit(X, t)
    ridged = IPMBalancer(ipm="neural", random_state=0, l2_penalty=1.0,
                         ipm_params=params).fit(X, t)
    assert ridged.ess_["control"] > plain.ess_["control"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sample_weights_start_from_base_mass(ks):
    X, t = ks.data[:120], ks.treatment[:120]
    s = np.random.default_rng(0).integers(1, 4, size=120).astype(float)
    # No training: the masses stay at the sample-weighted start, so the
    # weights of the reweighted arm are constant.
    bal = IPMBalancer(ipm="neural", random_state=0,
                      ipm_params={"n_epochs": 1, "lr": 1e-12, "distance_steps": 5, "tol": 10.0})
    w = bal.fit(X, t, sample_weight=s).weights_
    c = t == 0
    np.testing.assert_allclose(w[c], (s[t == 1].sum() / s[c].sum()), rtol=1e-5)


def test_unconverged_run_warns(ks):
    bal = IPMBalancer(ipm="neural", random_state=0,
                      ipm_params={"n_epochs": 4, "distance_steps": 5, "tol": 0.0})
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        bal.fit(ks.data[:100], ks.treatment[:100])
    assert bal.solver_info_["converged"] is False


def test_verbose_shows_progress(ks, capsys):
    IPMBalancer(ipm="neural", random_state=0, verbose=1,
                ipm_params={"n_epochs": 3, "distance_steps": 3, "tol": 10.0}).fit(
        ks.data[:60], ks.treatment[:60])
    assert "neural IPM" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    ({"max_weight": 2.0}, "does not support max_weight"),
    ({"ipm_params": {"n_epochs": 0}}, r"ipm_params\['n_epochs'\] must be an integer >= 1"),
    ({"ipm_params": {"critic_lr": -1.0}}, r"ipm_params\['critic_lr'\] must be a positive"),
    ({"ipm_params": {"clip": 0.0}}, r"ipm_params\['clip'\] must be a positive"),
    ({"ipm_params": {"gradient_penalty": float("nan")}}, "gradient_penalty"),
    ({"ipm_params": {"device": "no-such-device"}}, "not a torch device"),
])
def test_clear_errors_for_unsupported_options(ks, kwargs, match):
    with pytest.raises(ValueError, match=match):
        IPMBalancer(ipm="neural", **kwargs).fit(ks.data[:40], ks.treatment[:40])


def test_unknown_ipm_params_are_rejected(ks):
    with pytest.raises(TypeError, match="hidden"):
        IPMBalancer(ipm="neural", ipm_params={"hidden": 10}).fit(ks.data[:40], ks.treatment[:40])
