"""weightstats.nn.sparse: sparse momentum, ST-3, gradual magnitude pruning, D-Pruner.

Exact rules on hand-made tensors against independent NumPy computations
written here (the reference implementations' rules: TimDettmers/sparse_learning,
vanderschuea/stthree, the D-Pruner paper and authors' code as read in the
user guide); mechanics (masks as torch.nn.utils.prune masks, persistence,
plain loops, determinism, bad input); slow digits experiments asserting the
claims that hold over seeds (the full tables come from
``notebooks/sparse_training.ipynb``).
"""

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .strategies import finite_matrices

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize, prune  # noqa: E402

from weightstats.nn import (  # noqa: E402
    MLP,
    DPruner,
    GradualMagnitudePruning,
    NeuralNetClassifier,
    SoftThresholdSparsity,
    SparseMomentum,
    magnitude_prune,
    sparsity_report,
)
from weightstats.nn.sparse._soft_threshold import (  # noqa: E402
    SoftThresholdParametrization,
    soft_threshold,
)

pytestmark = pytest.mark.requires("torch", "skorch")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)


def _net(callbacks=None, epochs=6, hidden=(64,), seed=0, lr=0.05, **kwargs):
    return NeuralNetClassifier(
        module__hidden_units=hidden, lr=lr, optimizer__momentum=0.9, max_epochs=epochs,
        batch_size=64, callbacks=callbacks, random_state=seed, **kwargs,
    )


def _two_layer(w1, w2, b1=None, b2=None):
    model = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(), nn.Linear(w2.shape[1], w2.shape[0]))
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(w1, dtype=torch.float32))
        model[2].weight.copy_(torch.as_tensor(w2, dtype=torch.float32))
        model[0].bias.copy_(torch.as_tensor(np.zeros(w1.shape[0]) if b1 is None else b1, dtype=torch.float32))
        model[2].bias.copy_(torch.as_tensor(np.zeros(w2.shape[0]) if b2 is None else b2, dtype=torch.float32))
    return model


# --------------------------------------------------------------------------
# Sparse momentum: the epoch-end rule against an independent computation
# --------------------------------------------------------------------------
def _reference_truncate(weights, masks, momenta, rate):
    """The sparse-momentum epoch-end rule in NumPy (no caps bind here)."""
    masks = [m.copy() for m in masks]
    stats = np.array([np.abs(m[mask]).mean() for m, mask in zip(momenta, masks)])
    share = stats / stats.sum()
    removed = []
    for w, mask in zip(weights, masks):
        k = math.ceil(rate * mask.sum())
        active = np.flatnonzero(mask)
        drop = active[np.argsort(np.abs(w.ravel()[active]))[:k]]
        mask.ravel()[drop] = False
        removed.append(k)
    quotas = share * sum(removed)
    grow = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - grow))[: sum(removed) - grow.sum()]:
        grow[i] += 1
    regrown = []
    for m, mask, g in zip(momenta, masks, grow):
        zeros = np.flatnonzero(~mask)
        new = zeros[np.argsort(-np.abs(m.ravel()[zeros]))[:g]]
        mask.ravel()[new] = True
        regrown.append(set(new.tolist()))
    return masks, removed, grow, regrown


def _hand_masked_model():
    rng = np.random.default_rng(3)
    w1 = rng.permutation(np.linspace(0.05, 1.2, 12)).reshape(3, 4) * rng.choice([-1, 1], (3, 4))
    w2 = rng.permutation(np.linspace(0.1, 0.9, 6)).reshape(2, 3) * rng.choice([-1, 1], (2, 3))
    m1 = np.zeros(12, bool)
    m1[[0, 2, 3, 5, 8, 11]] = True
    m2 = np.zeros(6, bool)
    m2[[1, 4]] = True
    # Active-weight mean |momentum| is 3.0 in layer 1 and 1.0 in layer 2,
    # while over all weights layer 2 would win (large momentum at its zeros).
    active1 = np.flatnonzero(m1)
    by_size = active1[np.argsort(np.abs(w1.ravel()[active1]))]
    mom1 = rng.uniform(0.1, 0.9, 12)
    # The smallest active weight is pruned (rate 0.5 drops 3 of 6) but has
    # the largest momentum among the zeros, so it is regrown: at zero.
    mom1[by_size[0]] = 9.5
    mom1[by_size[1:3]] = [0.05, -0.05]
    mom1[by_size[3:]] = [2.8, -2.8, 2.8]
    mom2 = np.array([9.0, 1.2, 7.0, 8.0, -0.8, 6.5])
    return w1, w2, m1.reshape(3, 4), m2.reshape(2, 3), mom1.reshape(3, 4), mom2.reshape(2, 3)


def test_sparse_momentum_epoch_end_rule_matches_an_independent_computation():
    w1, w2, m1, m2, mom1, mom2 = _hand_masked_model()
    active1 = np.flatnonzero(m1)
    smallest = active1[np.argmin(np.abs(w1.ravel()[active1]))]
    model = _two_layer(w1 * m1, w2 * m2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sm = SparseMomentum(density=0.5, prune_rate=0.5)
    sm.attach(model, optimizer, epochs=10, steps_per_epoch=1000)
    with torch.no_grad():
        for layer, mask, w, mom in ((model[0], m1, w1, mom1), (model[2], m2, w2, mom2)):
            layer.weight_mask.copy_(torch.as_tensor(mask, dtype=torch.float32))
            layer.weight_orig.copy_(torch.as_tensor(w * mask, dtype=torch.float32))
            optimizer.state[layer.weight_orig]["momentum_buffer"] = torch.as_tensor(mom, dtype=torch.float32)
    before = int(m1.sum() + m2.sum())
    record = sm._truncate(0.5)

    expected, removed, grow, regrown = _reference_truncate([w1, w2], [m1, m2], [mom1, mom2], 0.5)
    assert removed == [3, 1] and list(grow) == [3, 1]  # 3:1 by active mean |momentum|
    for layer, exp, new_positions in zip((model[0], model[2]), expected, regrown):
        np.testing.assert_array_equal(layer.weight_mask.numpy().astype(bool), exp)
        # Regrown weights start at zero.
        orig = layer.weight_orig.detach().numpy().ravel()
        assert all(orig[i] == 0 for i in new_positions)
    # The pruned-then-regrown weight restarts at zero, not at its old value.
    assert smallest in regrown[0] and w1.ravel()[smallest] != 0
    # Kept weights keep their values.
    kept = m1 & expected[0]
    kept.ravel()[list(regrown[0])] = False
    np.testing.assert_allclose(model[0].weight_orig.detach().numpy()[kept], w1[kept], rtol=1e-6)
    assert record["nonzero"] == before == int(model[0].weight_mask.sum() + model[2].weight_mask.sum())
    assert record["removed"] == record["regrown"] == 4
    sm.detach()


def test_sparse_momentum_layer_quotas_are_capped_and_the_total_is_exact():
    from weightstats.nn.sparse._momentum import _allocate

    # Layer 0 wants 90 but has room for 10 (99 % of 11 free slots, floored):
    # the excess goes equally to the others; the sum is exact.
    grow = _allocate(100, [0.9, 0.05, 0.05], [11, 500, 500])
    assert grow[0] == 10 and sum(grow) == 100 and abs(grow[1] - grow[2]) <= 1
    # Largest remainders: 3.5, 1.75, 1.75 -> floors 3, 1, 1, then +1 to the two .75.
    assert _allocate(7, [0.5, 0.25, 0.25], [100, 100, 100]) == [3, 2, 2]


# --------------------------------------------------------------------------
# ST-3: the forward formula, straight-through backward, the ramp
# --------------------------------------------------------------------------
HAND_W = np.array([[0.5, -0.1, 0.3], [-0.2, 0.05, 0.8]])


def test_soft_threshold_forward_equals_the_formula_on_a_hand_tensor():
    w = torch.tensor(HAND_W, dtype=torch.float64)
    th = 0.25
    # Kept: |W| > 0.25 -> (0,0), (0,2), (1,2). Soft: W - sign(W) th.
    soft = np.array([[0.25, 0.0, 0.05], [0.0, 0.0, 0.55]])
    # Row scale 1.01 / ((mean kept |W| + 1e-6) / (mean |W| + 1e-6) + 0.01):
    kept_mean = np.array([(0.5 + 0.3) / 3, 0.8 / 3])
    all_mean = np.array([0.9 / 3, 1.05 / 3])
    scale = 1.01 / ((kept_mean + 1e-6) / (all_mean + 1e-6) + 0.01)
    np.testing.assert_allclose(soft_threshold(w, th).numpy(), soft * scale[:, None], rtol=1e-12)
    np.testing.assert_allclose(soft_threshold(w, th, rescale=False).numpy(), soft, rtol=1e-12)
    hard = HAND_W * (np.abs(HAND_W) > th)
    np.testing.assert_allclose(soft_threshold(w, th, soft=False).numpy(), hard * scale[:, None], rtol=1e-12)
    np.testing.assert_array_equal(soft_threshold(w, th, soft=False, rescale=False).numpy(), hard)
    # No pruning while the threshold is not positive.
    assert soft_threshold(w, -1.0) is w


def test_soft_threshold_backward_is_straight_through():
    layer = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(HAND_W))
    p = SoftThresholdParametrization()
    p.threshold.fill_(0.25)
    parametrize.register_parametrization(layer, "weight", p)
    np.testing.assert_allclose(
        layer.weight.detach().numpy(), soft_threshold(torch.tensor(HAND_W), 0.25).numpy(), rtol=1e-12
    )
    x = torch.tensor([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]], dtype=torch.float64)
    c = torch.tensor([[1.0, -2.0], [0.5, 1.5]], dtype=torch.float64)
    (layer(x) * c).sum().backward()
    # d/dW_hat of sum(c * x W_hat^T) is c^T x; straight-through gives the
    # dense weight exactly that, pruned entries included.
    np.testing.assert_allclose(layer.parametrizations.weight.original.grad.numpy(), (c.T @ x).numpy())


def test_ramp_hits_the_stated_sparsities():
    st3 = SoftThresholdSparsity(final_sparsity=0.9, ramp=(0.2, 0.6))
    got = [st3.sparsity_at(step, 100) for step in (0, 10, 20, 40, 60, 80, 100)]
    np.testing.assert_allclose(got, [0, 0, 0, 0.9 * (1 - 0.5**3), 0.9, 0.9, 0.9])
    # In training: the measured sparsity after every step is the target
    # (within one weight, the interpolated quantile's rounding).
    torch.manual_seed(0)
    model = MLP(20, 4, hidden_units=(30,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    st3 = SoftThresholdSparsity(final_sparsity=0.8, ramp=(0.0, 0.5)).attach(model, optimizer, total_steps=20)
    n = sum(layer.weight.numel() for layer in (model.body[0], model.head))
    X, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    for step in range(1, 21):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
        target = 0.8 * (1 - (1 - min(step / 10, 1)) ** 3)
        zeros = sum(int((layer.weight == 0).sum()) for layer in (model.body[0], model.head))
        assert abs(zeros / n - target) <= 1 / n
    st3.detach()


def test_global_threshold_is_the_reference_quantile_and_forward_matches():
    torch.manual_seed(1)
    model = MLP(10, 3, hidden_units=(12,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    st3 = SoftThresholdSparsity(final_sparsity=0.7, ramp=(0.0, 0.1)).attach(model, optimizer, total_steps=10)
    model(torch.randn(5, 10)).sum().backward()
    optimizer.step()
    originals = [m.parametrizations.weight.original.detach() for m in (model.body[0], model.head)]
    flat = np.concatenate([w.numpy().ravel() for w in originals])
    # numpy's default quantile is the reference's interpolation at (n-1) r.
    expected = np.quantile(np.abs(flat), 0.7)
    assert st3.thresholds_["body.0"] == pytest.approx(expected, rel=1e-6)
    assert st3.thresholds_["head"] == st3.thresholds_["body.0"]
    for layer, w in zip((model.body[0], model.head), originals):
        torch.testing.assert_close(layer.weight, soft_threshold(w, st3.thresholds_["body.0"]))
    st3.detach()


def test_layer_scope_prunes_every_layer_to_the_target(digits):
    X, _, y, _ = digits
    st3 = SoftThresholdSparsity(final_sparsity=0.75, ramp=(0.0, 0.5), scope="layer", soft=False, rescale=False)
    net = _net([st3], epochs=3).fit(X, y)
    report = sparsity_report(net)
    np.testing.assert_allclose(report["density"], 0.25, atol=1 / 640)
    for layer in (net.module_.body[0], net.module_.head):
        w = layer.parametrizations.weight.original.detach().numpy()
        assert st3.thresholds_[[k for k, v in net.module_.named_modules() if v is layer][0]] == pytest.approx(
            np.quantile(np.abs(w), 0.75), rel=1e-6
        )


def test_st3_finalize_and_persistence(digits):
    X, _, y, _ = digits
    st3 = SoftThresholdSparsity(final_sparsity=0.9, ramp=(0.0, 0.5))
    net = _net([st3], epochs=4).fit(X, y)
    assert net.history[:, "sparsity"][-1] == 0.9
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(clone.predict_proba(X[:50]), net.predict_proba(X[:50]), atol=1e-6)
    proba = net.predict_proba(X[:50])
    density = sparsity_report(net)["density"].iloc[-1]
    st3.finalize(net)
    layer = net.module_.head
    assert not parametrize.is_parametrized(layer) and hasattr(layer, "weight_mask")
    np.testing.assert_allclose(net.predict_proba(X[:50]), proba, atol=1e-6)
    assert sparsity_report(net)["density"].iloc[-1] == density
    # Fine-tuning keeps the pruned weights at zero (ordinary prune masks).
    mask = layer.weight_mask.clone()
    with pytest.raises(ValueError, match="already carries a mask"):
        net.partial_fit(X, y, epochs=1)
    net.set_params(callbacks=None).initialize_callbacks()
    net.partial_fit(X, y, epochs=1)
    assert torch.all(layer.weight[mask == 0] == 0)
    with pytest.raises(ValueError, match="no layer"):
        st3.finalize(net)


def test_sparse_momentum_bad_input():
    for params, match in [
        ({"density": 0.0}, "density"),
        ({"density": 1.5}, "density"),
        ({"prune_rate": float("nan")}, "prune_rate"),
        ({"decay": "step"}, "decay"),
        ({"redistribution": "gradient"}, "redistribution"),
        ({"growth": "magnitude"}, "growth"),
    ]:
        model = MLP(8, 3, hidden_units=(8,))
        sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with pytest.raises(ValueError, match=match):
            SparseMomentum(**params).attach(model, sgd, epochs=2, steps_per_epoch=1)
    model = MLP(8, 3, hidden_units=(8,))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epochs, steps in ((0, 1), (2, 0), (2.5, 1)):
        with pytest.raises(ValueError, match="positive int"):
            SparseMomentum().attach(model, sgd, epochs=epochs, steps_per_epoch=steps)
    # Plain SGD keeps no momentum to grow by.
    model = MLP(8, 3, hidden_units=(8,))
    plain = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="momentum=0: pass momentum=0.9"):
        SparseMomentum(density=0.5).attach(model, plain, epochs=2, steps_per_epoch=1)


def test_st3_bad_input():
    model = MLP(8, 3, hidden_units=(8,))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    for params, match in [
        ({"final_sparsity": 1.0}, "final_sparsity"),
        ({"final_sparsity": float("nan")}, "final_sparsity"),
        ({"ramp": (0.5, 0.5)}, "ramp"),
        ({"ramp": (0.0, 1.5)}, "ramp"),
        ({"ramp": 0.8}, "ramp"),
        ({"scope": "row"}, "scope"),
        ({"soft": 1}, "soft"),
    ]:
        with pytest.raises(ValueError, match=match):
            SoftThresholdSparsity(**params).attach(model, sgd, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        SoftThresholdSparsity().attach(model, sgd, total_steps=0)
    pruned = magnitude_prune(MLP(8, 3, hidden_units=(8,)), 0.5)
    with pytest.raises(ValueError, match="already carries"):
        SoftThresholdSparsity().attach(pruned, torch.optim.SGD(pruned.parameters(), lr=0.1), total_steps=5)
    with pytest.raises(ValueError, match="parametrised"):
        st3 = SoftThresholdSparsity().attach(model, sgd, total_steps=5)
        magnitude_prune(model, 0.5)


# --------------------------------------------------------------------------
# Gradual magnitude pruning, magnitude_prune, sparsity_report
# --------------------------------------------------------------------------
def test_gradual_magnitude_pruning_is_sticky_and_exact():
    torch.manual_seed(0)
    model = MLP(16, 4, hidden_units=(24,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gmp = GradualMagnitudePruning(final_sparsity=0.85, ramp=(0.1, 0.7)).attach(model, optimizer, total_steps=30)
    layers = (model.body[0], model.head)
    n = sum(layer.weight.numel() for layer in layers)
    X, y = torch.randn(64, 16), torch.randint(0, 4, (64,))
    previous = [torch.ones_like(layer.weight_mask) for layer in layers]
    for step in range(1, 31):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
        masks = [layer.weight_mask.clone() for layer in layers]
        # Once pruned, always pruned; the count is round(r n) exactly.
        assert all(torch.all(m <= p) for m, p in zip(masks, previous))
        pruned = sum(int((m == 0).sum()) for m in masks)
        assert pruned == round(gmp.sparsity_at(step, 30) * n)
        previous = masks
    gmp.detach()


def test_magnitude_prune_exact_counts_and_absolute_sparsity():
    torch.manual_seed(0)
    model = MLP(10, 5, hidden_units=(20,))
    weights = np.concatenate([model.body[0].weight.detach().numpy().ravel(), model.head.weight.detach().numpy().ravel()])
    magnitude_prune(model, 0.6)
    kept = np.concatenate([model.body[0].weight_mask.numpy().ravel(), model.head.weight_mask.numpy().ravel()])
    assert kept.sum() == len(weights) - round(0.6 * len(weights))
    # Exactly the largest magnitudes are kept.
    assert np.abs(weights[kept == 1]).min() > np.abs(weights[kept == 0]).max()
    # A second call sets the sparsity (not 60 % of the rest) and reuses the masks.
    magnitude_prune(model, 0.3, scope="layer")
    report = sparsity_report(model)
    np.testing.assert_allclose(report["density"][:2], [0.7, 0.7])
    assert len(model.body[0]._forward_pre_hooks) == 1


def test_magnitude_prune_ties_and_bad_input():
    layer_model = nn.Sequential(nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        layer_model[0].weight.fill_(1.0)
    magnitude_prune(layer_model, 0.5)
    assert int(layer_model[0].weight_mask.sum()) == 4
    for sparsity in (-0.1, 1.0, float("inf"), "0.5", True):
        with pytest.raises(ValueError, match="sparsity"):
            magnitude_prune(layer_model, sparsity)
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(layer_model, 0.5, scope="row")
    with pytest.raises(TypeError, match="no"):
        magnitude_prune(nn.Sequential(nn.Embedding(3, 2)), 0.5)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        magnitude_prune(np.zeros((2, 2)), 0.5)


@given(finite_matrices(min_rows=2, max_rows=12, min_cols=1, max_cols=6), st.floats(0.0, 0.95), st.sampled_from(["global", "layer"]))
def test_magnitude_prune_properties(weights, sparsity, scope):
    # Any weights (ties and zeros included): the exact count is dropped, in
    # each layer or overall, and no dropped weight is larger than a kept one.
    model = nn.Sequential(nn.Linear(weights.shape[1], weights.shape[0], bias=False), nn.Linear(weights.shape[0], 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(weights))
        model[1].weight.copy_(torch.as_tensor(np.resize(weights[::-1].ravel(), (2, weights.shape[0]))))
    w = [model[0].weight.detach().abs().numpy().ravel(), model[1].weight.detach().abs().numpy().ravel()]
    magnitude_prune(model, sparsity, scope=scope)
    kept = [model[0].weight_mask.numpy().ravel() == 1, model[1].weight_mask.numpy().ravel() == 1]
    groups = list(zip(w, kept)) if scope == "layer" else [(np.concatenate(w), np.concatenate(kept))]
    for wi, ki in groups:
        assert (~ki).sum() == round(sparsity * wi.size)
        if ki.any() and (~ki).any():
            assert wi[ki].min() >= wi[~ki].max()


@given(st.integers(0, 500), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.data())
def test_sparse_momentum_allocation_properties(total, raw_share, data):
    from weightstats.nn.sparse._momentum import _allocate

    share = np.asarray(raw_share) + 1e-3
    share = list(share / share.sum())
    free = data.draw(st.lists(st.integers(0, 400), min_size=len(share), max_size=len(share)))
    grow = _allocate(total, share, free)
    assert all(0 <= g <= f for g, f in zip(grow, free))
    # Exact whenever the free slots can take it.
    assert sum(grow) == min(total, sum(free))


def test_sparsity_report_counts_and_flops():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, 0, :2, :2] = 1.0  # 4 of 18 non-zero
    prune.custom_from_mask(model[2], "weight", (torch.arange(216).reshape(3, 72) % 4 == 0).float())
    report = sparsity_report(model, example_input=torch.zeros(5, 1, 8, 8))
    assert report["layer"].tolist() == ["0", "2", "total"]
    assert report["weights"].tolist() == [18, 216, 234]
    assert report["nonzero"].tolist()[:2] == [4, int((model[2].weight != 0).sum())]
    # Conv: 2 FLOPs per weight per output position (6 x 6); linear: per row.
    assert report["flops_dense"].tolist()[:2] == [2 * 18 * 36, 2 * 216]
    assert report["flops_sparse"].iloc[0] == 2 * 4 * 36
    assert report["flops_saved"].iloc[-1] == report["flops_dense"].iloc[-1] - report["flops_sparse"].iloc[-1]
    assert report["density"].iloc[-1] == pytest.approx(report["nonzero"].iloc[-1] / 234)
    # Without an example input, convolution FLOPs are per output position.
    assert sparsity_report(model)["flops_dense"].iloc[0] == 2 * 18


# --------------------------------------------------------------------------
# D-Pruner: the importances against hand computations on a two-layer model
# --------------------------------------------------------------------------
def _dpruner_data():
    rng = np.random.default_rng(0)
    # float32-representable, so the float64 model built from float32
    # layers holds exactly these values.
    w1 = rng.normal(0, 0.6, (4, 5)).astype(np.float32).astype(np.float64)
    w2 = rng.normal(0, 0.6, (3, 4)).astype(np.float32).astype(np.float64)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32).astype(np.float64)
    b2 = rng.normal(0, 0.1, 3).astype(np.float32).astype(np.float64)
    Xg = rng.normal(0, 1, (12, 5))
    Xg[:, 4] = 0.0  # an input that is always zero on the general data
    yg = rng.integers(0, 3, 12)
    Xd = rng.normal(0.5, 1, (8, 5))
    yd = rng.integers(0, 3, 8)
    return w1, w2, b1, b2, Xg, yg, Xd, yd


def _forward_np(w1, b1, w2, b2, X):
    z1 = X @ w1.T + b1
    h1 = np.maximum(z1, 0)
    return z1, h1, h1 @ w2.T + b2


def _ce_grads_np(w1, b1, w2, b2, X, y):
    """Mean cross-entropy gradients of the two-layer ReLU model, by hand."""
    z1, h1, logits = _forward_np(w1, b1, w2, b2, X)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = (p - np.eye(3)[y]) / len(y)
    dz1 = (d @ w2) * (z1 > 0)
    return dz1.T @ X, dz1.sum(0), d.T @ h1, d.sum(0)


def _obs_importance_np(w, inputs):
    n = inputs.shape[0]
    H = 2.0 * inputs.T @ inputs / n
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    H += 0.01 * np.mean(np.diag(H)) * np.eye(len(H))
    G = w**2 / (2.0 * np.diag(np.linalg.inv(H)))
    G[:, dead] = 0.0
    return G


def _taylor_np(g, g_data, w, curvature=0.0):
    return np.abs(-g * w + 0.5 * (g_data**2 + curvature) * w**2)


def test_dpruner_general_importance_matches_the_obs_error_by_hand():
    w1, w2, b1, b2, Xg, yg, Xd, yd = _dpruner_data()
    model = _two_layer(w1, w2, b1, b2).double()
    pruner = DPruner(score="general", n_calib=12, random_state=0).fit(model, Xg.astype(np.float64), None, None, None)
    _, h1, _ = _forward_np(w1, b1, w2, b2, Xg)
    np.testing.assert_allclose(pruner.general_importance_["0"].numpy(), _obs_importance_np(w1, Xg), rtol=1e-9)
    np.testing.assert_allclose(pruner.general_importance_["2"].numpy(), _obs_importance_np(w2, h1), rtol=1e-9)
    assert np.all(pruner.general_importance_["0"].numpy()[:, 4] == 0)
    assert pruner.scores_["0"] is not None and torch.equal(pruner.scores_["0"], pruner.general_importance_["0"])


def test_dpruner_dual_score_matches_a_hand_computation():
    w1, w2, b1, b2, Xg, yg, Xd, yd = _dpruner_data()
    reg, lr = 0.7, 0.3
    model = _two_layer(w1, w2, b1, b2).double()
    pruner = DPruner(reg=reg, lr=lr, epochs=2, batch_size=8, n_calib=12, random_state=0)
    pruner.fit(model, Xg, yg, Xd, yd)
    # Hand: G from the OBS error, scaled by its largest value over both layers.
    _, h1, _ = _forward_np(w1, b1, w2, b2, Xg)
    G = [_obs_importance_np(w1, Xg), _obs_importance_np(w2, h1)]
    top = max(G[0].max(), G[1].max())
    Gn = [g / top for g in G]
    params = [w1.copy(), b1.copy(), w2.copy(), b2.copy()]
    anchors = [w1.copy(), w2.copy()]
    scores = [np.zeros_like(w1), np.zeros_like(w2)]
    for _ in range(2):  # two full-batch SGD steps
        gw1, gb1, gw2, gb2 = _ce_grads_np(*params, Xd, yd)
        new = []
        for i, (w, g_data) in enumerate(((params[0], gw1), (params[2], gw2))):
            penalty = 2 * reg * Gn[i]
            g = g_data + penalty * (w - anchors[i])
            scores[i] += _taylor_np(g, g_data, w, penalty)
            new.append(w - lr * g)
        params = [new[0], params[1] - lr * gb1, new[1], params[3] - lr * gb2]
    np.testing.assert_allclose(pruner.scores_["0"].numpy(), scores[0], rtol=1e-9)
    np.testing.assert_allclose(pruner.scores_["2"].numpy(), scores[1], rtol=1e-9)
    # The model given to fit is untouched (the training ran on a copy).
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), w1)
    assert len(pruner.loss_curve_) == 2


def test_dpruner_fisher_general_and_domain_only_scores():
    w1, w2, b1, b2, Xg, yg, Xd, yd = _dpruner_data()
    model = _two_layer(w1, w2, b1, b2).double()
    pruner = DPruner(score="general", general="fisher", batch_size=12, n_calib=12).fit(model, Xg, yg, None, None)
    gw1, _, gw2, _ = _ce_grads_np(w1, b1, w2, b2, Xg, yg)
    np.testing.assert_allclose(pruner.scores_["0"].numpy(), _taylor_np(gw1, gw1, w1), rtol=1e-9)
    np.testing.assert_allclose(pruner.scores_["2"].numpy(), _taylor_np(gw2, gw2, w2), rtol=1e-9)
    # Domain only: one unregularised step; reg is ignored.
    domain = DPruner(score="domain", reg=5.0, epochs=1, batch_size=8).fit(model, Xg, yg, Xd, yd)
    gw1, _, gw2, _ = _ce_grads_np(w1, b1, w2, b2, Xd, yd)
    np.testing.assert_allclose(domain.scores_["0"].numpy(), _taylor_np(gw1, gw1, w1), rtol=1e-9)


def test_dpruner_prune_masks_and_checks():
    w1, w2, b1, b2, Xg, yg, Xd, yd = _dpruner_data()
    model = _two_layer(w1, w2, b1, b2)
    pruner = DPruner(sparsity=0.5, epochs=1, random_state=0).fit(model, Xg, yg, Xd, yd)
    pruned = pruner.prune(copy.deepcopy(model))
    for name, layer in (("0", pruned[0]), ("2", pruned[2])):
        mask = layer.weight_mask.numpy()
        assert mask.sum() == mask.size - round(0.5 * mask.size)
        score = pruner.scores_[name].numpy()
        assert score[mask == 1].min() >= score[mask == 0].max()
    assert sparsity_report(pruner.prune(copy.deepcopy(model), sparsity=0.75))["density"].iloc[-1] == 0.25
    with pytest.raises(ValueError, match="do not match"):
        pruner.prune(MLP(5, 3, hidden_units=(4, 4)))
    with pytest.raises(ValueError, match="shape"):
        pruner.prune(_two_layer(np.zeros((4, 6)), np.zeros((3, 4))))
    with pytest.raises(ValueError, match="not fitted"):
        DPruner().prune(model)
    # Same random_state, same scores.
    again = DPruner(sparsity=0.5, epochs=1, random_state=0).fit(model, Xg, yg, Xd, yd)
    torch.testing.assert_close(again.scores_["0"], pruner.scores_["0"])


def test_dpruner_bad_input():
    w1, w2, b1, b2, Xg, yg, Xd, yd = _dpruner_data()
    model = _two_layer(w1, w2, b1, b2)
    for params, match in [
        ({"sparsity": 1.0}, "sparsity"),
        ({"reg": -1.0}, "reg"),
        ({"n_calib": 0}, "n_calib"),
        ({"epochs": 1.5}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"score": "magnitude"}, "score"),
        ({"general": "hessian"}, "general"),
        ({"scope": "row"}, "scope"),
        ({"reg": 200.0, "lr": 0.01}, "lr \\* reg"),
    ]:
        with pytest.raises(ValueError, match=match):
            DPruner(**params).fit(model, Xg, yg, Xd, yd)
    bad = Xd.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_domain contains NaN"):
        DPruner().fit(model, Xg, yg, bad, yd)
    with pytest.raises(ValueError, match="rows but y_domain"):
        DPruner().fit(model, Xg, yg, Xd, yd[:-1])
    with pytest.raises(ValueError, match="y_general is required"):
        DPruner(general="fisher").fit(model, Xg, None, Xd, yd)
    with pytest.raises(ValueError, match="empty"):
        DPruner().fit(model, Xg[:0], yg[:0], Xd, yd)
    with pytest.raises(TypeError, match="nn.Linear"):
        DPruner().fit(nn.Sequential(nn.Conv1d(1, 1, 2)), Xg, yg, Xd, yd)
    with pytest.raises(ValueError, match="non-finite"):
        DPruner(lr=1e30, reg=0.0, epochs=3).fit(model, Xg, yg, Xd * 1e30, yd)
    with pytest.raises(ValueError, match="already masked"):
        DPruner().fit(magnitude_prune(copy.deepcopy(model), 0.5), Xg, yg, Xd, yd)


def test_dpruner_on_a_fitted_net_with_labels(digits):
    X, _, y, _ = digits
    labels = np.array(list("abcdefghij"))[y]
    net = _net(epochs=2).fit(X, labels)
    domain = np.isin(labels, ["a", "b", "c"])
    pruner = DPruner(sparsity=0.5, epochs=1, random_state=0).fit(net, X, labels, X[domain], labels[domain])
    pruner.prune(net)
    assert sparsity_report(net)["density"].iloc[-1] == pytest.approx(0.5, abs=1e-3)
    assert net.score(X, labels) > 0.3
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.predict(X[:30]), net.predict(X[:30]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_methods_on_cuda_tensors():
    model = MLP(8, 3, hidden_units=(16,)).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    X, y = torch.randn(32, 8, device="cuda"), torch.randint(0, 3, (32,), device="cuda")
    for make in (
        lambda: SparseMomentum(0.3).attach(model, optimizer, epochs=2, steps_per_epoch=2),
    ):
        sm = make()
        for _ in range(4):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
        sm.detach()
    other = MLP(8, 3, hidden_units=(16,)).cuda()
    opt = torch.optim.SGD(other.parameters(), lr=0.1)
    st3 = SoftThresholdSparsity(0.5, ramp=(0.0, 0.5)).attach(other, opt, total_steps=4)
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(other(X), y).backward()
        opt.step()
    st3.detach()
    assert sparsity_report(other)["density"].iloc[-1] == pytest.approx(0.5, abs=0.02)
    pruner = DPruner(epochs=1).fit(MLP(8, 3, hidden_units=(16,)).cuda(), X, y, X, y)
    assert sparsity_report(pruner.prune(MLP(8, 3, hidden_units=(16,)).cuda()))["density"].iloc[-1] == 0.5


# --------------------------------------------------------------------------
# Slow experiments on digits (3 seeds; notebooks/sparse_training.ipynb has
# the full tables)
# --------------------------------------------------------------------------
def _digits_run(callback, seed, X, y, Xte, yte, epochs=40):
    """MLP 64-300-100-10, SGD lr 0.1 with Nesterov momentum 0.9 and weight decay
    5e-4, batches of 100 (the reference's MNIST settings); test accuracy."""
    net = NeuralNetClassifier(
        module__hidden_units=(300, 100), lr=0.1, optimizer__momentum=0.9, optimizer__nesterov=True,
        optimizer__weight_decay=5e-4, max_epochs=epochs, batch_size=100,
        callbacks=None if callback is None else [callback], random_state=seed,
    ).fit(X, y)
    return float(np.mean(net.predict(Xte) == yte)), net


@pytest.mark.slow
def test_sparse_momentum_beats_a_static_mask_near_dense_accuracy(digits):
    X, Xte, y, yte = digits
    acc = {name: [] for name in ("dense", "static", "sparse momentum")}
    for seed in range(3):
        acc["dense"].append(_digits_run(None, seed, X, y, Xte, yte)[0])
        acc["static"].append(_digits_run(SparseMomentum(0.1, prune_rate=0.0), seed, X, y, Xte, yte)[0])
        score, net = _digits_run(SparseMomentum(0.1), seed, X, y, Xte, yte)
        acc["sparse momentum"].append(score)
        assert sum(int(b.sum()) for n, b in net.module_.named_buffers() if n.endswith("weight_mask")) == round(
            0.1 * 64 * 300
        ) + round(0.1 * 300 * 100) + round(0.1 * 100 * 10)
    mean = {name: np.mean(values) for name, values in acc.items()}
    # Measured (3 seeds): dense 0.975, static 0.958, sparse momentum 0.965.
    assert mean["sparse momentum"] > mean["static"]
    assert mean["dense"] - mean["sparse momentum"] < 0.02


@pytest.mark.slow
def test_st3_and_baselines_at_high_sparsity(digits):
    X, Xte, y, yte = digits
    results = {}
    for sparsity in (0.95, 0.99):
        makers = {
            "ST-3": lambda: SoftThresholdSparsity(sparsity, ramp=(0.05, 0.65)),
            "STE": lambda: SoftThresholdSparsity(sparsity, ramp=(0.05, 0.65), soft=False, rescale=False),
            "GMP": lambda: GradualMagnitudePruning(sparsity, ramp=(0.05, 0.65)),
        }
        for name, make in makers.items():
            scores = []
            for seed in range(3):
                score, net = _digits_run(make(), seed, X, y, Xte, yte)
                scores.append(score)
                assert sparsity_report(net)["density"].iloc[-1] <= 1 - sparsity + 1e-3
            results[sparsity, name] = np.mean(scores)
    # At 95 % all three stay within 1.5 points of dense training (0.975):
    # the paper's ranking ST-3 >= STE >= GMP is not resolved at this scale.
    assert all(results[0.95, name] > 0.96 for name in ("ST-3", "STE", "GMP"))
    # At 99 % soft thresholding with rescaling beats the hard-threshold STE
    # (0.971 vs 0.954 measured); gradual magnitude pruning matches ST-3.
    assert results[0.99, "ST-3"] > results[0.99, "STE"] + 0.005


def _augment(X, rng, copies, noise=0.3):
    """Noisy copies of digit images (Gaussian noise, clipped to [0, 1])."""
    return np.concatenate([np.clip(X + rng.normal(0, noise, X.shape), 0, 1) for _ in range(copies)]).astype(
        np.float32
    )


@pytest.mark.slow
def test_dpruner_keeps_domain_accuracy_best(digits):
    X, Xte, y, yte = digits
    classes = [0, 1, 2]
    rows = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        _, net = _digits_run(None, seed, X, y, Xte, yte, epochs=30)
        model = net.module_
        Xd, yd = _augment(X[np.isin(y, classes)], rng, 4), np.tile(y[np.isin(y, classes)], 4)
        Xd_te, yd_te = _augment(Xte[np.isin(yte, classes)], rng, 4), np.tile(yte[np.isin(yte, classes)], 4)

        def accuracy(pruned):
            with torch.no_grad():
                domain = pruned(torch.tensor(Xd_te)).argmax(1).numpy() == yd_te
                general = pruned(torch.tensor(Xte)).argmax(1).numpy() == yte
            return domain.mean(), general.mean()

        pruners = {s: DPruner(score=s, random_state=seed).fit(model, X, y, Xd, yd) for s in ("general", "domain", "dual")}
        for sparsity in (0.5, 0.6, 0.7):
            rows.append(("magnitude", sparsity, *accuracy(magnitude_prune(copy.deepcopy(model), sparsity, scope="layer"))))
            for score, pruner in pruners.items():
                rows.append((score, sparsity, *accuracy(pruner.prune(copy.deepcopy(model), sparsity=sparsity))))
    import pandas as pd

    table = pd.DataFrame(rows, columns=["score", "sparsity", "domain", "general"]).groupby(["sparsity", "score"]).mean()
    for sparsity in (0.5, 0.6, 0.7):
        at = table.loc[sparsity]
        # Domain accuracy: the dual score is best (by 2-5 points measured).
        assert at.loc["dual", "domain"] > at.drop("dual")["domain"].max()
        # General accuracy: not better than magnitude pruning here, but
        # within 1.5 points of the best single score.
        assert at.loc["dual", "general"] > at["general"].max() - 0.015
