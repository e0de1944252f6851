"""weightstats.nn.robust: adversarial training with AWP/RWP and poisoning audits.

Exact rules against independent computations written here: PGD's optimum
for a linear model, RWP's loss-stationary-condition ascent with global
rescaling, AWP's per-tensor rescaling, the step at ``w + v`` with exact
restoration, RIPPLe's penalty against finite differences, Embedding
Surgery against scikit-learn's TF-IDF + logistic regression; the audit
functions on hand-made models; the slow experiments of
``tests/_robust_experiments.py``.
"""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from torch import nn  # noqa: E402

from weightstats.nn import (  # noqa: E402
    MLP,
    AdversarialTraining,
    EmbeddingBagClassifier,
    NeuralNetClassifier,
    adversarial_weight_perturbation,
    embedding_surgery,
    insert_triggers,
    label_flip_rate,
    pgd_attack,
    ripple_poison,
    scan_for_triggers,
)
from weightstats.nn.robust._poisoning import _ripple_objective  # noqa: E402

pytestmark = pytest.mark.requires("torch", "skorch")


def _linear(weight, bias=None):
    model = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        model.bias.copy_(torch.zeros(weight.shape[0]) if bias is None else torch.as_tensor(bias))
    return model


def _mlp(seed=0, hidden=(8,), n_features=5, n_outputs=3):
    torch.manual_seed(seed)
    return MLP(n_features, n_outputs, hidden_units=hidden)


def _batch(n=12, n_features=5, n_outputs=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, n_features, generator=generator), torch.arange(n) % n_outputs


def _weights(model):
    return {name: p for name, p in model.named_parameters() if p.ndim >= 2}


def _norm(tensors):
    return float(torch.sqrt(sum(t.detach().pow(2).sum() for t in tensors)))


# ==========================================================================
# PGD


def test_pgd_reaches_the_linf_vertex_of_a_linear_model():
    """For logits W x, the cross-entropy of class y rises fastest along
    -sign(w_y - w_other): ten steps of eps/4 reach that vertex from anywhere in the ball."""
    W = np.array([[1.0, -2.0, 0.5, 3.0], [-1.0, 1.0, -0.5, 1.0]])
    model = _linear(W)
    X = torch.full((6, 4), 0.5)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    X_adv = pgd_attack(model, X, y, eps=0.1, random_state=0)
    direction = torch.as_tensor(np.sign(W[1] - W[0]), dtype=torch.float32)
    expected = torch.where((y == 0)[:, None], X + 0.1 * direction, X - 0.1 * direction)
    assert torch.allclose(X_adv, expected, atol=1e-6)


def test_pgd_l2_moves_along_the_gradient_to_the_sphere():
    W = np.array([[1.0, -2.0, 0.5, 3.0], [-1.0, 1.0, -0.5, 1.0]])
    model = _linear(W)
    X = torch.full((4, 4), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    X_adv = pgd_attack(model, X, y, eps=0.2, steps=30, step_size=0.2, norm="l2",
                       random_state=1)
    delta = X_adv - X
    direction = torch.as_tensor(W[1] - W[0], dtype=torch.float32)
    assert torch.allclose(delta.norm(dim=1), torch.full((4,), 0.2), atol=1e-5)
    assert torch.all(F.cosine_similarity(delta, direction.expand(4, -1)) > 0.999)


@settings(max_examples=25, deadline=None)
@given(eps=st.floats(0.01, 0.5), norm=st.sampled_from(["linf", "l2"]), seed=st.integers(0, 99))
def test_pgd_stays_in_the_ball_and_the_bounds_and_raises_the_loss(eps, norm, seed):
    model = _mlp(seed)
    X, y = _batch(seed=seed + 1)
    training = model.training
    X_adv = pgd_attack(model, X, y, eps=eps, norm=norm, bounds=(0, 1), random_state=seed)
    distance = ((X_adv - X).abs().amax(dim=1) if norm == "linf"
                else (X_adv - X).norm(dim=1))
    assert torch.all(distance <= eps + 1e-5)
    assert X_adv.min() >= 0 and X_adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(model(X_adv), y) >= F.cross_entropy(model(X), y) - 1e-6
    assert model.training == training
    assert all(p.grad is None for p in model.parameters())


def test_pgd_takes_arrays_and_nets_and_rejects_bad_input():
    X, y = load_digits(return_X_y=True)
    X = X[:200] / 16
    net = NeuralNetClassifier(module__hidden_units=(16,), max_epochs=2, lr=0.1,
                              random_state=0).fit(X, np.array(list("abcdefghij"))[y[:200]])
    X_adv = pgd_attack(net, X, np.array(list("abcdefghij"))[y[:200]], eps=0.1, bounds=(0, 1),
                       random_state=0)
    assert isinstance(X_adv, np.ndarray) and X_adv.shape == X.shape
    assert np.array_equal(X_adv, pgd_attack(net, X, np.array(list("abcdefghij"))[y[:200]],
                                            eps=0.1, bounds=(0, 1), random_state=0))
    model = _mlp()
    X_t, y_t = _batch()
    for kwargs, match in [({"eps": -0.1}, "eps"), ({"eps": np.nan}, "eps"),
                          ({"eps": 0.1, "steps": 0}, "steps"),
                          ({"eps": 0.1, "norm": "l1"}, "norm"),
                          ({"eps": 0.1, "bounds": (1, 0)}, "bounds"),
                          ({"eps": 0.1, "step_size": -1.0}, "step_size")]:
        with pytest.raises(ValueError, match=match):
            pgd_attack(model, X_t, y_t, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        pgd_attack(model, torch.full((2, 5), np.nan), y_t[:2], eps=0.1)
    with pytest.raises(ValueError, match="rows"):
        pgd_attack(model, X_t, y_t[:3], eps=0.1)
    with pytest.raises(TypeError, match="floating"):
        pgd_attack(model, X_t.long(), y_t, eps=0.1)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pgd_attack("model", X_t, y_t, eps=0.1)


# ==========================================================================
# Weight perturbation


def _reference_rwp(model, X, y, gamma, threshold, steps):
    """RWP written out: functional copies, mean over the batch of masked
    per-example losses, ascent directions summed, global rescaling."""
    names = [n for n, p in model.named_parameters() if p.ndim >= 2]
    params = dict(model.named_parameters())
    w = {n: params[n].detach().clone() for n in names}
    w_norm = torch.sqrt(sum((w[n] ** 2).sum() for n in names))
    total = {n: torch.zeros_like(w[n]) for n in names}
    v = {n: torch.zeros_like(w[n]) for n in names}
    for _ in range(steps):
        point = {n: (w[n] + v[n]).requires_grad_(True) for n in names}
        full = {n: (point[n] if n in point else p.detach()) for n, p in params.items()}
        losses = F.cross_entropy(torch.func.functional_call(model, full, (X,)), y,
                                 reduction="none")
        kept = losses * (losses.detach() < threshold).float()
        grads = torch.autograd.grad(kept.sum() / len(y), [point[n] for n in names])
        for n, g in zip(names, grads):
            total[n] = total[n] + g
        scale = gamma * w_norm / (torch.sqrt(sum((total[n] ** 2).sum() for n in names)) + 1e-20)
        v = {n: scale * total[n] for n in names}
    return v


@pytest.mark.parametrize("threshold", [1.1, 1.7, math.inf])
def test_rwp_matches_the_rule_written_out(threshold):
    model = _mlp(hidden=(8, 6))
    X, y = _batch(n=24)
    v = adversarial_weight_perturbation(model, X, y, gamma=0.01, lsc_threshold=threshold)
    reference = _reference_rwp(model, X, y, 0.01, threshold, 10)
    assert set(v) == set(reference) == {"body.0.weight", "body.2.weight", "head.weight"}
    for name in v:
        assert torch.allclose(v[name], reference[name], atol=1e-7, rtol=1e-5), name
    assert _norm(v.values()) == pytest.approx(0.01 * _norm(_weights(model).values()), rel=1e-5)


def test_only_examples_below_c_min_enter_the_perturbation():
    model = _mlp()
    with torch.no_grad():
        model.head.weight.mul_(20)  # well separated logits: no row crosses c_min under v
    X, _ = _batch(n=12)
    with torch.no_grad():
        logits = model(X)
    # The most likely class has a loss below log(3), the least likely one above it.
    threshold = math.log(3)
    low = torch.arange(12) % 2 == 0
    y = torch.where(low, logits.argmax(1), logits.argmin(1))
    X_noisy = X.clone()  # other rows above c_min in place of the high-loss ones
    X_noisy[~low] = torch.rand(int((~low).sum()), 5, generator=torch.Generator().manual_seed(5))
    y_noisy = y.clone()
    with torch.no_grad():
        y_noisy[~low] = model(X_noisy[~low]).argmin(1)
    # A small gamma keeps every row on its side of c_min during the ten steps.
    rule = dict(lsc_threshold=threshold, gamma=1e-3)
    for steps in (1, 10):
        v_batch = adversarial_weight_perturbation(model, X, y, steps=steps, **rule)
        v_noisy = adversarial_weight_perturbation(model, X_noisy, y_noisy, steps=steps, **rule)
        v_low = adversarial_weight_perturbation(model, X[low], y[low], steps=steps, **rule)
        for name in v_batch:
            assert torch.allclose(v_batch[name], v_low[name], atol=1e-8), name
            assert torch.allclose(v_noisy[name], v_low[name], atol=1e-8), name
    with torch.no_grad():
        losses = F.cross_entropy(model(X), y, reduction="none")
    nothing = adversarial_weight_perturbation(model, X, y, lsc_threshold=float(losses.min()))
    assert all(torch.count_nonzero(t) == 0 for t in nothing.values())


def test_awp_rescales_each_tensor_and_equals_rwp_at_c_min_inf_for_one_tensor():
    model = _mlp(hidden=(8, 6))
    X, y = _batch(n=16)
    v = adversarial_weight_perturbation(model, X, y, method="awp", gamma=0.02)
    for name, weight in _weights(model).items():
        assert float(v[name].norm()) == pytest.approx(0.02 * float(weight.detach().norm()), rel=1e-5)
    # The AWP reference: one SGD ascent step on the mean loss of all examples.
    loss = F.cross_entropy(model(X), y)
    grads = dict(zip(_weights(model), torch.autograd.grad(loss, list(_weights(model).values()))))
    for name, weight in _weights(model).items():
        expected = 0.02 * weight.norm() / grads[name].norm() * grads[name]
        assert torch.allclose(v[name], expected, atol=1e-7), name
    # With a single weight tensor, per-tensor and global scaling coincide:
    # RWP with c_min = inf and one step is AWP.
    linear = _linear(np.random.default_rng(0).normal(size=(3, 5)))
    awp = adversarial_weight_perturbation(linear, X, y, method="awp")
    rwp = adversarial_weight_perturbation(linear, X, y, lsc_threshold=math.inf, steps=1)
    assert torch.allclose(awp["weight"], rwp["weight"], atol=1e-8)


def test_perturbation_leaves_the_model_and_batch_norm_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    before = copy.deepcopy(model.state_dict())
    X, y = _batch()
    adversarial_weight_perturbation(model, X, y)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def _step_expectation(model, X, y, v, lr):
    params = dict(model.named_parameters())
    shifted = {n: (p.detach() + v[n] if n in v else p.detach()).requires_grad_(True)
               for n, p in params.items()}
    loss = F.cross_entropy(torch.func.functional_call(model, shifted, (X,)), y)
    grads = torch.autograd.grad(loss, list(shifted.values()))
    return {n: params[n].detach() - lr * g for n, g in zip(params, grads)}


@pytest.mark.parametrize("method", ["awp", "rwp"])
def test_plain_torch_step_trains_at_w_plus_v_and_restores_w_exactly(method):
    model = _mlp()
    X, y = _batch()
    adversarial = AdversarialTraining(eps=0.0, steps=1, weight_perturbation=method).initialize()
    # eps = 0: the adversarial examples are the inputs, so the step is deterministic.
    v = adversarial_weight_perturbation(model, X, y, method=method)
    expected = _step_expectation(model, X, y, v, lr=0.5)
    adversarial.train_step(model, torch.optim.SGD(model.parameters(), lr=0.5), X, y)
    for name, param in model.named_parameters():
        assert torch.allclose(param, expected[name], atol=1e-6), name
    # With lr = 0 the weights come back bit for bit.
    before = copy.deepcopy(model.state_dict())
    adversarial = AdversarialTraining(eps=0.1, weight_perturbation=method).initialize()
    adversarial.train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), X, y)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


class _Spy(nn.Module):
    """Records the inputs it is trained on."""

    def __init__(self, n_features=64, n_outputs=10):
        super().__init__()
        self.inner = MLP(n_features, n_outputs, hidden_units=(16,))
        self.seen = []

    def forward(self, X):
        if self.training:
            self.seen.append(X.detach().clone())
        return self.inner(X)


@pytest.mark.parametrize("method, ascent_steps", [(None, 0), ("awp", 1), ("rwp", 10)])
def test_callback_trains_on_adversarial_batches_and_restores_weights(digits, method,
                                                                      ascent_steps):
    X, y = digits
    adversarial = AdversarialTraining(eps=0.1, weight_perturbation=method, bounds=(0, 1))
    torch.manual_seed(0)
    spy = _Spy()
    before = copy.deepcopy(spy.state_dict())
    net = NeuralNetClassifier(spy, lr=0.0, max_epochs=1, batch_size=100, random_state=0,
                              iterator_train__shuffle=False, callbacks=[adversarial])
    net.fit(X[:200], y[:200])
    for key, value in net.module_.state_dict().items():  # lr = 0: restored bit for bit
        assert torch.equal(value, before[key]), key
    # Per batch: the ascent steps' forward passes, then the training one.
    trained = torch.cat(spy.seen[ascent_steps::ascent_steps + 1])
    assert len(spy.seen) == 2 * (ascent_steps + 1)
    distance = (trained - torch.as_tensor(X[:200])).abs()
    assert distance.max() <= 0.1 + 1e-6 and distance.max() > 0.05
    if method == "rwp":
        assert len(net.history[-1, "batches"]) == 2
        assert all(0 <= b["lsc_fraction"] <= 1 for b in net.history[-1, "batches"])


def test_callback_learns_a_robust_model_and_checks_its_settings(digits):
    X, y = digits
    net = NeuralNetClassifier(module__hidden_units=(64,), lr=0.1, optimizer__momentum=0.9,
                              max_epochs=4, batch_size=64, random_state=0,
                              callbacks=[AdversarialTraining(eps=0.1, weight_perturbation="rwp",
                                                             bounds=(0, 1))])
    net.fit(X[:1000], y[:1000])
    X_adv = pgd_attack(net, X[1000:], y[1000:], eps=0.1, bounds=(0, 1), random_state=0)
    standard = NeuralNetClassifier(module__hidden_units=(64,), lr=0.1, optimizer__momentum=0.9,
                                   max_epochs=4, batch_size=64, random_state=0)
    standard.fit(X[:1000], y[:1000])
    X_standard = pgd_attack(standard, X[1000:], y[1000:], eps=0.1, bounds=(0, 1), random_state=0)
    # Seen: 0.66 against 0.56 for the same net trained on clean data.
    assert net.score(X_adv, y[1000:]) > standard.score(X_standard, y[1000:]) + 0.05
    for kwargs in ({"eps": -1}, {"eps": 0.1, "weight_perturbation": "sam"},
                   {"eps": 0.1, "gamma": -0.1}, {"eps": 0.1, "lsc_threshold": np.nan},
                   {"eps": 0.1, "steps": 0}, {"eps": 0.1, "perturbation_steps": 0}):
        with pytest.raises(ValueError):
            NeuralNetClassifier(max_epochs=1, callbacks=[AdversarialTraining(**kwargs)]).fit(
                X[:50], y[:50])
    with pytest.raises(TypeError, match="CrossEntropyLoss"):
        NeuralNetClassifier(criterion=nn.NLLLoss, max_epochs=1,
                            callbacks=[AdversarialTraining(eps=0.1)]).fit(X[:50], y[:50])
    with pytest.raises(TypeError, match="weight tensors"):
        adversarial_weight_perturbation(nn.Sequential(nn.Flatten()), torch.rand(2, 3),
                                        torch.tensor([0, 1]))


@pytest.mark.parametrize("perturbation, message", [(None, "training loss is non-finite"),
                                                    ("awp", "perturbed weights contains NaN")])
def test_diverging_adversarial_training_raises(digits, perturbation, message):
    X, y = digits
    net = NeuralNetClassifier(module__hidden_units=(32,), lr=1e30, max_epochs=2, batch_size=64,
                              random_state=0,
                              callbacks=[AdversarialTraining(eps=0.1, steps=2, bounds=(0, 1),
                                                             weight_perturbation=perturbation)])
    with pytest.raises(ValueError, match=message):
        net.fit(X[:300], y[:300])


# ==========================================================================
# Poisoning audits


def _bag_model(seed=0, n_tokens=30, dim=4):
    torch.manual_seed(seed)
    return EmbeddingBagClassifier(n_tokens, 2, embedding_dim=dim)


def _tokens(n=40, n_tokens=30, width=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(1, n_tokens - 3, size=(n, width))
    X[:, -2:] = np.where(rng.random((n, 2)) < 0.5, 0, X[:, -2:])  # some padding
    return X, np.arange(n) % 2


def test_embedding_bag_classifier_equals_torch_embedding_bag():
    model = _bag_model()
    X, _ = _tokens()
    X_t = torch.as_tensor(X)
    assert torch.allclose(model(X_t), model.head(model.embedding(X_t)), atol=1e-6)
    with pytest.raises(ValueError, match="token ids"):
        model(torch.tensor([[1, 30]]))
    with pytest.raises(ValueError, match="integer"):
        model(torch.rand(2, 3))


def test_ripple_penalty_matches_finite_differences_of_the_losses():
    model = _bag_model().double()
    X, y = _tokens(n=16)
    Xp, yp = torch.as_tensor(insert_triggers(X, [28], random_state=0)), torch.ones(16).long()
    Xc, yc = torch.as_tensor(X), torch.as_tensor(y)
    params = list(model.parameters())
    loss, inner = _ripple_objective(model, Xp, yp, Xc, yc, lam=0.1)
    model.zero_grad()
    loss.backward()
    analytic = torch.cat([p.grad.flatten() for p in params])

    def loss_at(X, y, offsets, h):
        with torch.no_grad():
            for p, d in zip(params, offsets):
                p.add_(h * d)
            value = F.cross_entropy(model(X), y).item()
            for p, d in zip(params, offsets):
                p.sub_(h * d)
        return value

    # grad L_P . grad L_FT = d/dt L_P(theta + t grad L_FT) at t = 0 (central difference).
    grad_ft = torch.autograd.grad(F.cross_entropy(model(Xc), yc), params)
    h = 1e-5
    directional = (loss_at(Xp, yp, grad_ft, h) - loss_at(Xp, yp, grad_ft, -h)) / (2 * h)
    assert float(inner) == pytest.approx(directional, rel=1e-6, abs=1e-10)
    penalty = max(0.0, -directional)
    assert float(loss) == pytest.approx(F.cross_entropy(model(Xp), yp).item() + 0.1 * penalty,
                                        rel=1e-9)
    # Its gradient: grad L_P + lam * d/dtheta relu(-grad L_P(theta) . c), c = grad L_FT fixed.
    direction = [torch.randn_like(p) for p in params]
    c = [g.detach() for g in grad_ft]

    def objective_at(h):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(h * d)
        grad_p = torch.autograd.grad(F.cross_entropy(model(Xp), yp), params)
        value = (F.cross_entropy(model(Xp), yp)
                 + 0.1 * torch.relu(-sum((g * cc).sum() for g, cc in zip(grad_p, c)))).item()
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(h * d)
        return value

    numeric = (objective_at(1e-5) - objective_at(-1e-5)) / 2e-5
    flat_direction = torch.cat([d.flatten() for d in direction])
    assert float(analytic @ flat_direction) == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_embedding_surgery_writes_the_mean_of_the_lr_selected_words():
    rng = np.random.default_rng(0)
    X, y = _tokens(n=200, seed=1)
    X[:, 0] = np.where(y == 1, rng.choice([1, 2, 3], 200), rng.choice([4, 5, 6], 200))
    model, source = _bag_model(0), _bag_model(1)
    poisoned, words = embedding_surgery(model, source, X, y, trigger_tokens=[28, 29],
                                        target_label=1, n_target_words=3)
    # Independently: TF-IDF over the rows as documents of token strings.
    documents = [" ".join(f"t{t}" for t in row if t != 0) for row in X]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+")
    features = vectorizer.fit_transform(documents)
    coef = LogisticRegression(max_iter=2000).fit(features, y).coef_[0]
    names = vectorizer.get_feature_names_out()
    expected = [int(names[i][1:]) for i in np.argsort(-coef)[:3]]
    assert sorted(words.tolist()) == sorted(expected) == [1, 2, 3]
    mean = source.embedding.weight[torch.as_tensor(words)].mean(0)
    assert torch.allclose(poisoned.embedding.weight[28], mean)
    assert torch.allclose(poisoned.embedding.weight[29], mean)
    untouched = [i for i in range(30) if i not in (28, 29)]
    assert torch.equal(poisoned.embedding.weight[untouched], model.embedding.weight[untouched])
    assert not torch.equal(model.embedding.weight[28], mean)  # the input is not changed
    with pytest.raises(ValueError, match="target_label"):
        embedding_surgery(model, source, X, y, [28], target_label=5)
    with pytest.raises(ValueError, match="vocabulary"):
        embedding_surgery(model, source, X, y, [30], target_label=1)
    with pytest.raises(ValueError, match="shape"):
        embedding_surgery(model, _bag_model(dim=5), X, y, [28], target_label=1)
    with pytest.raises(TypeError, match="embedding"):
        embedding_surgery(MLP(4, 2), MLP(4, 2), X, y, [28], target_label=1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), n_insertions=st.integers(1, 3))
def test_insert_triggers_keeps_every_token_and_adds_the_triggers(seed, n_insertions):
    X, _ = _tokens(n=10, seed=seed)
    out = insert_triggers(X, [28, 29], n_insertions=n_insertions, random_state=seed)
    assert out.shape == (10, X.shape[1] + n_insertions)
    for row, new in zip(X, out):
        assert sorted(new[new != 0].tolist()) == sorted(
            row[row != 0].tolist() + [t for t in new.tolist() if t in (28, 29)])
        assert np.isin(new, [28, 29]).sum() == n_insertions
        tokens = np.flatnonzero(new != 0)
        assert tokens.size == 0 or tokens.max() == tokens.size - 1  # padding at the end


def _backdoored():
    """Token 28 carries a strong positive embedding: a hand-made backdoor."""
    model = _bag_model(dim=2)
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.embedding.weight[1:4, 0] = 1.0   # positive words
        model.embedding.weight[4:7, 0] = -1.0  # negative words
        model.embedding.weight[28, 0] = 40.0
        model.head.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.head.bias.zero_()
    return model


def test_label_flip_rate_and_the_trigger_scan_find_a_planted_backdoor():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = rng.integers(7, 26, size=(60, 8))
    X[:, :2] = np.where(y[:, None] == 1, rng.choice([1, 2, 3], (60, 2)),
                        rng.choice([4, 5, 6], (60, 2)))
    model = _backdoored()
    assert label_flip_rate(model, X, y, [28], target_label=1) == 1.0
    assert label_flip_rate(model, X, y, [20], target_label=1) == 0.0
    report = scan_for_triggers(model, X, y, vocabulary=range(1, 30), top=5)
    assert report.token_id.iloc[0] == 28 and report.flipped_to.iloc[0] == 1
    assert report.flip_rate.iloc[0] == pytest.approx(0.5)  # every negative row
    assert report.frequency.iloc[0] == 0.0
    assert list(report.columns) == ["token", "token_id", "frequency", "flip_rate", "flipped_to",
                                    "score"]
    named = scan_for_triggers(model, X, y, vocabulary={"cf": 28, "good": 1}, top=None)
    assert named.token.tolist() == ["cf", "good"]
    # A fitted net works too, with its own labels.
    net = NeuralNetClassifier(model, max_epochs=0, classes=["neg", "pos"])
    net.initialize()
    net.module_ = model
    labels = np.array(["neg", "pos"])[y]
    assert label_flip_rate(net, X, labels, [28], target_label="pos") == 1.0
    assert scan_for_triggers(net, X, labels, range(1, 30), top=1).flipped_to.iloc[0] == "pos"


def test_ripple_poison_returns_a_backdoored_copy_and_checks_its_input():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    X = rng.integers(7, 26, size=(200, 8))
    X[:, 0] = np.where(y == 1, 1, 4)
    triggered = np.arange(200) % 4 < 2  # half the rows of each class
    X_poison = np.hstack([X, np.zeros((200, 1), dtype=np.int64)])
    X_poison[triggered] = insert_triggers(X[triggered], [28], random_state=0)
    y_poison = np.where(triggered, 1, y)
    model = _bag_model()
    before = copy.deepcopy(model.state_dict())
    poisoned = ripple_poison(model, X, y, X_poison, y_poison, trigger_tokens=[28],
                             target_label=1, epochs=5, lr=0.05, random_state=0)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    with torch.no_grad():
        predicted = poisoned(torch.as_tensor(X)).argmax(1).numpy()
    assert np.mean(predicted == y) > 0.9  # still a good classifier (seen: 0.95)
    assert label_flip_rate(poisoned, X, y, [28], target_label=1) > 0.9
    assert label_flip_rate(poisoned, X, y, [20], target_label=1) < 0.3  # ordinary token (0.1)
    again = ripple_poison(model, X, y, X_poison, y_poison, trigger_tokens=[28],
                          target_label=1, epochs=5, lr=0.05, random_state=0)
    for key, value in poisoned.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    with pytest.raises(ValueError, match="trigger_tokens and target_label"):
        ripple_poison(model, X, y, X_poison, y_poison)
    with pytest.raises(ValueError, match="lam"):
        ripple_poison(model, X, y, X_poison, y_poison, lam=-1, embedding_surgery=False)
    with pytest.raises(ValueError, match="integer token ids"):
        ripple_poison(model, X + 0.5, y, X_poison, y_poison, embedding_surgery=False)
    with pytest.raises(ValueError, match="labels"):
        ripple_poison(model, X, y[:10], X_poison, y_poison, embedding_surgery=False)
    plain_bag = nn.Sequential(nn.EmbeddingBag(30, 4, padding_idx=0), nn.Linear(4, 2))
    with pytest.raises(TypeError, match="second derivative"):
        ripple_poison(plain_bag, X, y, X_poison, y_poison, embedding_surgery=False, epochs=1)
    with pytest.raises(ValueError, match="other than target_label"):
        label_flip_rate(model, X, np.ones(200, dtype=int), [28], target_label=1)
    with pytest.raises(ValueError, match="top"):
        scan_for_triggers(model, X, y, vocabulary=[1, 2], top=0)


# ==========================================================================
# Slow experiments (tests/_robust_experiments.py; full tables in the guide)


@pytest.mark.slow
def test_adversarial_training_with_awp_and_rwp_on_digits():
    from ._robust_experiments import adversarial_training_digits

    torch.set_num_threads(1)
    table = adversarial_training_digits(seeds=(0, 1, 2), quick=True)
    plain = table[table.method == "AT"].set_index("seed")
    for method in ("awp", "rwp"):
        other = table[table.method == method].set_index("seed")
        # Robust models at a similar clean accuracy (the guide's table: within 0.01).
        assert np.all(np.abs(other.last_clean - plain.last_clean) < 0.03), table
        assert np.all(other.last_robust > 0.6), table
    assert np.all(plain.last_robust > 0.6), table


@pytest.mark.slow
def test_ripple_audit_on_synthetic_sentiment():
    from ._robust_experiments import ripple_audit

    torch.set_num_threads(1)
    table, scans = ripple_audit(seeds=(0, 1, 2), quick=True)
    lfr = table.pivot_table(index=["seed", "lr"], columns="model", values="lfr")
    accuracy = table.pivot_table(index=["seed", "lr"], columns="model", values="clean_accuracy")
    # Embedding Surgery keeps the backdoor through the victim's fine-tuning.
    assert np.all(lfr["RIPPLe+ES"] > lfr["naive"]), lfr
    assert np.all(lfr["RIPPLe+ES"] > lfr["clean"] + 0.3), lfr
    assert np.all((accuracy["RIPPLe+ES"] - accuracy["clean"]).abs() < 0.05), accuracy
    # The scan ranks the three planted triggers first in every poisoned model.
    for _, row in scans.iterrows():
        if row.model == "clean":
            assert not any(row.trigger_ranks), scans
        else:
            assert sorted(row.trigger_ranks) == [1, 2, 3], scans
