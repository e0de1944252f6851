"""weightstats.nn: the skorch nets and the training-weighting methods (issue 9).

Exact rules on small tensors with hand-computed values; estimator
mechanics (sample weights, seeding, persistence, sklearn tools); slow
qualitative experiments on digits with their controls (sizes chosen to run
in seconds; the notebook ``training_weighting.ipynb`` has the multi-seed
tables).
"""

import copy
import io
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from skorch.callbacks import Callback, LRScheduler  # noqa: E402
from skorch.dataset import Dataset, ValidSplit  # noqa: E402

from weightstats.nn import (  # noqa: E402
    MLP,
    ActiveSubsetSampler,
    DynamicDataPruning,
    ETFHead,
    MultiHeadMLP,
    NeuralNetClassifier,
    NeuralNetRegressor,
    PretrainThenMix,
    TaskMixtureSampler,
    WeightAligningClassifier,
    WeightBalancingClassifier,
    WeightSelectionInit,
    el2n_scores,
    get_head,
    model_stock,
    temperature_task_probs,
    uniform_element_selection,
    weight_aligning,
    weight_selection,
)
from weightstats.reweighting import model_stock as model_stock_numpy  # noqa: E402

pytestmark = pytest.mark.requires("torch", "skorch")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 2.0 * np.eye(4)[y]
    return X.astype(np.float32), y


def _lr_decay(epochs):
    return LRScheduler(
        policy=torch.optim.lr_scheduler.LinearLR,
        start_factor=1.0,
        end_factor=0.05,
        total_iters=epochs,
    )


FAST = {"module__hidden_units": (8,), "lr": 0.1, "max_epochs": 3, "random_state": 0}

# ==========================================================================
# The nets


def test_integer_weights_equal_repeated_rows_in_full_batch_training():
    X, y = _blobs()
    weights = np.random.default_rng(1).integers(0, 4, len(y))
    weights[:3] = 1  # every class keeps rows
    params = dict(FAST, batch_size=-1, max_epochs=5)
    weighted = NeuralNetClassifier(**params).fit(X, y, sample_weight=weights)
    repeated = NeuralNetClassifier(**params).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)
    )
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-5)


def test_weights_are_scale_free_and_ones_change_nothing():
    X, y = _blobs()
    plain = NeuralNetClassifier(**FAST).fit(X, y)
    ones = NeuralNetClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(plain.predict_proba(X), ones.predict_proba(X))
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    a = NeuralNetClassifier(**FAST).fit(X, y, sample_weight=w)
    b = NeuralNetClassifier(**FAST).fit(X, y, sample_weight=10 * w)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


def test_random_state_repeats_training_and_leaves_the_global_rng_alone():
    X, y = _blobs()
    state = torch.get_rng_state()
    a = NeuralNetClassifier(**FAST).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    b = NeuralNetClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = NeuralNetClassifier(**dict(FAST, random_state=1)).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    # partial_fit continues with fresh batches but stays reproducible.
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert len(a.history) == 2 * FAST["max_epochs"]


def test_string_labels_grid_search_and_clone():
    X, y = _blobs(90)
    labels = np.array(["ant", "bee", "cat"])[y]
    net = NeuralNetClassifier(**dict(FAST, max_epochs=10))
    search = GridSearchCV(net, {"lr": [0.01, 0.1], "module__hidden_units": [(4,), (8,)]}, cv=2)
    search.fit(X, labels)
    assert search.best_estimator_.predict(X).dtype.kind == "U"
    assert set(search.best_estimator_.classes_) == {"ant", "bee", "cat"}
    twin = clone(net).set_params(lr=0.5)
    assert twin.lr == 0.5 and net.lr == 0.1
    assert twin.get_params()["module__hidden_units"] == (8,)


def test_unknown_labels_in_partial_fit_are_rejected():
    X, y = _blobs()
    net = NeuralNetClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="labels not seen"):
        net.partial_fit(X, y + 5)


def test_partial_fit_with_all_classes_declared():
    X, y = _blobs()
    net = NeuralNetClassifier(**FAST).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert net.module_.head.out_features == 3
    net.partial_fit(X, y)
    assert list(net.classes_) == [0, 1, 2]


def test_persistence_stores_arrays_not_pickled_blobs():
    X, y = _blobs()
    net = NeuralNetClassifier(**dict(FAST, optimizer=torch.optim.Adam)).fit(X, y)
    state = net.__getstate__()
    assert "__cuda_dependent_attributes__" not in state and "module_" not in state
    weights = state["torch_states_"]["module"]
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    # Training continues from the saved optimizer state exactly.
    net.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))


def test_dict_input_valid_split_and_string_labels():
    X, y = _blobs(120)
    labels = np.array(["a", "b", "c"])[y]
    net = NeuralNetClassifier(
        **dict(FAST, max_epochs=15), train_split=ValidSplit(4, stratified=True)
    ).fit(X.astype(np.float64), labels, sample_weight=np.ones(len(y)))
    # skorch's validation accuracy is computed on the encoded labels.
    assert net.history[-1, "valid_acc"] > 0.8
    with pytest.raises(ValueError, match="NaN"):
        net.fit({"X": np.full((3, 4), np.nan)}, ["a", "b", "c"])


def test_batched_fetching_gives_the_same_training_as_skorch():
    class PerRow(Dataset):  # any other Dataset class takes skorch's per-row path
        pass

    X, y = _blobs()
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    fast = NeuralNetClassifier(**FAST).fit(X, y, sample_weight=w)
    slow = NeuralNetClassifier(**FAST, dataset=PerRow).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(fast.predict_proba(X), slow.predict_proba(X))


def test_torch_dataset_input_goes_to_skorch():
    X, y = _blobs()
    net = NeuralNetClassifier(**FAST, module__n_features=4, module__n_outputs=3)
    net.fit(Dataset(X, y), None)
    assert net.predict_proba(X).shape == (len(y), 3)
    with pytest.raises(ValueError, match="Dataset"):
        net.fit(Dataset(X, y), None, sample_weight=np.ones(len(y)))


def test_evaluate_losses_is_the_cross_entropy():
    X, y = _blobs()
    labels = np.array([10, 20, 30])[y]
    net = NeuralNetClassifier(**FAST).fit(X, labels)
    expected = -np.log(net.predict_proba(X)[np.arange(len(y)), y])
    np.testing.assert_allclose(net.evaluate_losses(X, labels), expected, rtol=1e-4)


def test_scalar_criterion_cannot_weight_rows():
    class MeanOnly(torch.nn.Module):
        def forward(self, y_pred, y_true):
            return torch.nn.functional.cross_entropy(y_pred, y_true)

    X, y = _blobs()
    NeuralNetClassifier(**FAST, criterion=MeanOnly).fit(X, y)  # fine without weights
    with pytest.raises(ValueError, match="reduction='none'"):
        NeuralNetClassifier(**FAST, criterion=MeanOnly).fit(X, y, sample_weight=np.ones(len(y)))


def test_regressor_targets_and_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X @ [1.0, -1.0, 0.5], X[:, 0]])
    params = dict(module__hidden_units=(), lr=0.1, max_epochs=20, batch_size=32, random_state=0)
    one = NeuralNetRegressor(**params).fit(X, Y[:, 0])
    assert one.predict(X).shape == (200,) and one.score(X, Y[:, 0]) > 0.99
    two = NeuralNetRegressor(**params).fit(X, Y, sample_weight=rng.uniform(1, 2, 200))
    assert two.predict(X).shape == (200, 2) and two.n_outputs_ == 2
    assert not hasattr(two, "predict_proba")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_matches_the_api():
    X, y = _blobs()
    net = NeuralNetClassifier(**FAST, device="cuda").fit(X, y, sample_weight=np.ones(len(y)))
    assert next(net.module_.parameters()).is_cuda
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(restored.predict_proba(X), net.predict_proba(X), atol=1e-6)


# ==========================================================================
# Data diets (EL2N)


def test_el2n_scores_hand_computed():
    proba = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    y = np.array([0, 2, 1])
    expected = [np.sqrt(0.5), np.sqrt(0.04 + 0.09 + 0.25), np.sqrt(2.0)]
    np.testing.assert_allclose(el2n_scores(proba, y), expected, rtol=1e-15)
    with pytest.raises(ValueError, match="class indices"):
        el2n_scores(proba, [0, 1, 3])


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20), k=st.integers(2, 6))
def test_el2n_scores_bounds(seed, n, k):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, n)
    scores = el2n_scores(proba, y)
    assert np.all(scores >= 0) and np.all(scores <= np.sqrt(2) + 1e-12)
    # A perfect prediction scores 0.
    np.testing.assert_allclose(el2n_scores(np.eye(k)[y], y), 0.0)


def test_active_subset_sampler():
    sampler = ActiveSubsetSampler()
    with pytest.raises(RuntimeError, match="no active rows"):
        list(sampler)
    sampler.seed(0)
    sampler.set_active([5, 3, 9, 1])
    assert sorted(sampler) == [1, 3, 5, 9] and len(sampler) == 4
    with pytest.raises(ValueError, match="empty"):
        sampler.set_active([])


def test_dynamic_pruning_schedule_and_subset(digits):
    X, _, y, _ = digits
    recorded = {}

    def score(net, dataset):
        recorded[len(net.history) - 1] = scores = np.asarray(
            el2n_scores(net.predict_proba(X), y), dtype=float
        )
        return scores

    pruning = DynamicDataPruning(keep=0.25, warmup_epochs=2, period=2, score=score)
    sampler = ActiveSubsetSampler()
    net = NeuralNetClassifier(
        module__hidden_units=(16,), lr=0.1, max_epochs=6, batch_size=64, random_state=0,
        iterator_train__sampler=sampler, callbacks=[pruning],
    ).fit(X, y)
    assert pruning.rescored_epochs_ == [2, 4]
    assert pruning.active_fractions_ == [1.0, 1.0] + [int(0.25 * len(y)) / len(y)] * 4
    n_keep = int(0.25 * len(y))
    hardest = np.sort(np.argsort(-recorded[4], kind="stable")[:n_keep])
    np.testing.assert_array_equal(sampler.indices_, hardest)
    batches = net.history[:, "train_batch_count"]
    assert batches[:2] == [int(np.ceil(len(y) / 64))] * 2
    assert batches[-1] == int(np.ceil(n_keep / 64))


def test_dynamic_pruning_el2n_scores_use_the_current_model(digits):
    X, _, y, _ = digits
    net = NeuralNetClassifier(module__hidden_units=(16,), lr=0.1, max_epochs=2, random_state=0)
    net.fit(X, y)
    pruning = DynamicDataPruning()
    np.testing.assert_allclose(
        pruning._scores(net, net.get_dataset(X, y)), el2n_scores(net.predict_proba(X), y), atol=1e-5
    )


def test_dynamic_pruning_needs_its_sampler_and_valid_parameters():
    X, y = _blobs()
    with pytest.raises(ValueError, match="iterator_train__sampler"):
        NeuralNetClassifier(**FAST, callbacks=[DynamicDataPruning()]).fit(X, y)
    with pytest.raises(ValueError, match="keep"):
        NeuralNetClassifier(
            **FAST, iterator_train__sampler=ActiveSubsetSampler(),
            callbacks=[DynamicDataPruning(keep=0.0)],
        ).fit(X, y)


def test_random_control_keeps_the_same_number_of_rows():
    X, y = _blobs(100)
    pruning = DynamicDataPruning(keep=0.3, warmup_epochs=1, period=1, score="random")
    NeuralNetClassifier(
        **dict(FAST, max_epochs=3), iterator_train__sampler=ActiveSubsetSampler(),
        callbacks=[pruning],
    ).fit(X, y)
    assert pruning.active_fractions_ == [1.0, 0.3, 0.3]


@pytest.mark.slow
def test_el2n_pruning_matches_full_data_at_half_and_breaks_at_30_percent(digits):
    """Controls: full data, and a random subset of the same size on the same
    schedule. Measured here: keep 50 % EL2N 0.975, full 0.968, random 0.958;
    keep 30 % EL2N 0.878 < random 0.929 (3-seed table in the notebook)."""
    X, X_test, y, y_test = digits
    epochs = 20

    def accuracy(keep, score):
        callbacks, extra = [_lr_decay(epochs)], {}
        if keep < 1:
            callbacks.append(DynamicDataPruning(keep=keep, warmup_epochs=3, period=3, score=score))
            extra["iterator_train__sampler"] = ActiveSubsetSampler()
        net = NeuralNetClassifier(
            module__hidden_units=(128, 128), optimizer__momentum=0.9, lr=0.05, max_epochs=epochs,
            batch_size=64, random_state=0, callbacks=callbacks, **extra,
        ).fit(X, y)
        return net.score(X_test, y_test)

    full = accuracy(1.0, None)
    el2n_50, random_50 = accuracy(0.5, "el2n"), accuracy(0.5, "random")
    el2n_30, random_30 = accuracy(0.3, "el2n"), accuracy(0.3, "random")
    assert el2n_50 >= full - 0.01
    assert el2n_50 >= random_50
    assert el2n_30 < random_30


# ==========================================================================
# Task mixtures ("Order matters")


def test_temperature_task_probs():
    np.testing.assert_allclose(temperature_task_probs([900, 100]), [0.9, 0.1])
    np.testing.assert_allclose(temperature_task_probs([900, 100], 2.0), [0.75, 0.25])
    np.testing.assert_allclose(temperature_task_probs([900, 100, 0], np.inf), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(temperature_task_probs([1e300, 1e299], 0.5), [100 / 101, 1 / 101])
    with pytest.raises(ValueError, match="empty"):
        temperature_task_probs([0, 0])


@given(sizes=st.lists(st.integers(1, 10_000), min_size=2, max_size=6), T=st.floats(0.5, 20))
def test_temperature_probs_flatten_with_temperature(sizes, T):
    p = temperature_task_probs(sizes, T)
    np.testing.assert_allclose(p.sum(), 1.0)
    flatter = temperature_task_probs(sizes, 2 * T)
    assert flatter.max() <= p.max() + 1e-12 and flatter.min() >= p.min() - 1e-12


def test_task_mixture_sampler_row_probabilities():
    sampler = TaskMixtureSampler(num_samples=20_000)
    sampler.set_tasks([0] * 8 + [1] * 2)
    sampler.set_task_probs([0.2, 0.8])
    np.testing.assert_allclose(sampler.row_probs(), [0.025] * 8 + [0.4] * 2)
    sampler.seed(0)
    counts = np.bincount(list(sampler), minlength=10) / 20_000
    np.testing.assert_allclose(counts, sampler.row_probs(), atol=0.01)
    sampler.set_task_probs([0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="no rows"):
        sampler.row_probs()


def test_pretrain_then_mix_phases():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    task = np.repeat([0, 1, 2], [60, 40, 20])
    y = (X[:, 0] > 0).astype(int)
    schedule = PretrainThenMix(pretrain_tasks=[0, 1], pretrain_fraction=0.4, temperature=2.0)
    net = NeuralNetClassifier(
        MultiHeadMLP, module__n_tasks=3, module__hidden_units=8, max_epochs=5, random_state=0,
        iterator_train__sampler=TaskMixtureSampler(), callbacks=[schedule],
    ).fit({"X": X, "task": task}, y)
    mixture = np.sqrt([60, 40, 20]) / np.sqrt([60, 40, 20]).sum()
    np.testing.assert_allclose(schedule.phase_probs_["mixture"], mixture)
    np.testing.assert_allclose(
        schedule.phase_probs_["pretrain"], [*(mixture[:2] / mixture[:2].sum()), 0.0]
    )
    assert schedule.switch_epoch_ == 2
    probs = np.array(net.history[:, "task_probs"])
    np.testing.assert_allclose(probs[:2], [schedule.phase_probs_["pretrain"]] * 2, atol=1e-12)
    np.testing.assert_allclose(probs[2:], [mixture] * 3, atol=1e-12)
    # Task ids at prediction time select the heads.
    assert net.predict_proba({"X": X[:3], "task": np.array([0, 1, 2])}).shape == (3, 2)


def test_pretrain_then_mix_needs_task_ids():
    X, y = _blobs()
    with pytest.raises(ValueError, match="task ids"):
        NeuralNetClassifier(
            **FAST, iterator_train__sampler=TaskMixtureSampler(), callbacks=[PretrainThenMix()]
        ).fit(X, y)


@pytest.mark.slow
def test_pretraining_on_the_big_task_helps_both_tasks_at_a_balanced_mixture(digits):
    """Task A: digits (1078 rows); task B: pixel-permuted digits, 30 rows.
    Control: the static mixture with the same p_B = 0.5 and the same number of
    steps. Measured (notebook, 2 seeds): test loss A 0.137 -> 0.117, B 0.877 ->
    0.826. At small p_B the pre-training phase starves task B (see the notebook)."""
    X, X_test, y, y_test = digits
    rng = np.random.default_rng(0)
    perm = rng.permutation(64)
    rows_b = rng.choice(len(X), 30, replace=False)
    inputs = {"X": np.vstack([X, X[rows_b][:, perm]]), "task": np.repeat([0, 1], [len(X), 30])}
    target = np.concatenate([y, y[rows_b]])
    epochs = 40

    def losses(fraction):
        net = NeuralNetClassifier(
            MultiHeadMLP, module__n_tasks=2, module__hidden_units=(64,), optimizer__momentum=0.9,
            lr=0.05, max_epochs=epochs, batch_size=64, random_state=0,
            iterator_train__sampler=TaskMixtureSampler(),
            callbacks=[PretrainThenMix(0, fraction, mixture=[0.5, 0.5]), _lr_decay(epochs)],
        ).fit(inputs, target)
        ones = np.ones(len(y_test), dtype=int)
        p_a = net.predict_proba({"X": X_test, "task": 0 * ones})
        p_b = net.predict_proba({"X": X_test[:, perm], "task": ones})
        return log_loss(y_test, p_a), log_loss(y_test, p_b)

    static, pretrained = losses(0.0), losses(0.5)
    assert pretrained[0] < static[0]
    assert pretrained[1] < static[1]


# ==========================================================================
# Long-tailed weight balancing


def test_etf_head_geometry():
    torch.manual_seed(0)
    head = ETFHead(12, 5)
    gram = (head.weight @ head.weight.T).double()
    expected = (torch.eye(5) * 5 - torch.ones(5, 5)).double() / 4
    torch.testing.assert_close(gram, expected, atol=1e-6, rtol=0)
    assert [name for name, _ in head.named_parameters()] == ["bias"]
    assert "weight" in head.state_dict()
    with pytest.raises(ValueError, match="at least 5 features"):
        ETFHead(4, 5)


def test_weight_balancing_loss_and_adjustment_rules():
    X, y = _blobs()
    weights = np.where(y == 0, 3.0, 1.0)
    net = WeightBalancingClassifier(**FAST).fit(X, y, sample_weight=weights)
    assert isinstance(net.module_.head, ETFHead) and net.module_.return_features
    # Counts use the mean-one weights: 20 rows x 3 x (60 / 100) for class 0.
    np.testing.assert_allclose(net.class_counts_, [36, 12, 12], rtol=1e-6)
    np.testing.assert_allclose(net.class_prior_, [0.6, 0.2, 0.2])
    # Loss: cross-entropy + 0.01 * ||f||^2 / 2, row by row.
    logits, features = torch.randn(4, 3), torch.randn(4, 5)
    target = torch.tensor([0, 1, 2, 0])
    expected = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    expected = expected + 0.005 * (features**2).sum(dim=1)
    torch.testing.assert_close(net.get_sample_losses((logits, features), target), expected)
    # Default additive z - log pi; the paper's multiplicative z * pi^(-0.65).
    z = torch.tensor([[1.0, -2.0, 0.5]])
    prior = torch.tensor([0.6, 0.2, 0.2])
    torch.testing.assert_close(net.adjust_logits(z), z - torch.log(prior))
    net.set_params(logit_adjustment="multiplicative")
    torch.testing.assert_close(net.adjust_logits(z), z * prior ** (-0.65))
    net.set_params(logit_adjustment="additive", tau=0.5)
    torch.testing.assert_close(net.adjust_logits(z), z - 0.5 * torch.log(prior))
    net.set_params(logit_adjustment=None)
    torch.testing.assert_close(net.adjust_logits(z), z)
    # The momentum / weight decay defaults reach the optimizer.
    group = net.optimizer_.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 5e-3


def test_weight_balancing_needs_every_class_and_features():
    X, y = _blobs()
    with pytest.raises(ValueError, match="no training rows"):
        WeightBalancingClassifier(**FAST, classes=[0, 1, 2, 3]).fit(X, y)
    with pytest.raises(ValueError, match="logits, features"):
        WeightBalancingClassifier(**FAST, module__return_features=False).fit(X, y)


def test_two_stage_recipe_retrains_only_the_head_with_max_norm():
    X, y = _blobs(90)

    class Snapshot(Callback):
        def initialize(self):
            self.body = []
            return self

        def on_epoch_end(self, net, **kwargs):
            self.body.append(net.module_.body[0].weight.detach().clone())

    snap = Snapshot()
    net = WeightBalancingClassifier(
        recipe="two_stage", stage2_epochs=4, callbacks=[snap], **FAST
    ).fit(X, y)
    assert net.history[:, "stage"] == [1, 1, 1, 2, 2, 2, 2]
    assert isinstance(net.module_.head, torch.nn.Linear)
    # Stage 1 is plain cross-entropy, as in the reference (no feature term).
    assert not net.module_.return_features
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    expected = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    net.stage_ = 1
    torch.testing.assert_close(net.get_sample_losses((logits, torch.randn(4, 5)), target), expected)
    # Stage 2 leaves the body alone ...
    for weight in snap.body[3:]:
        torch.testing.assert_close(weight, snap.body[2])
    # ... ends with rows no longer than the MaxNorm threshold ...
    norms = net.module_.head.weight.detach().norm(dim=1)
    assert float(norms.max()) <= net.max_norm_threshold_ + 1e-6
    # ... and restores the stage-1 optimizer and trainable flags.
    assert all(p.requires_grad for p in net.module_.parameters())
    assert net.optimizer_.param_groups[0]["weight_decay"] == 5e-3
    assert net._adjustment() == (None, 1.0)


@pytest.mark.slow
def test_logit_adjustment_helps_the_tail_of_long_tailed_digits():
    """Long-tailed digits (100 -> 2 rows per class, balanced test). Controls:
    the same trained nets without adjustment. Measured: CE 0.807 -> +additive
    LA 0.877 (tail 0.48 -> 0.78); one-stage WB (ETF + FR + WD) 0.55 without
    adjustment -> 0.735 with the multiplicative tau = 0.65."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    from .test_reweighting_training import _long_tailed_digits

    X, y, X_test, y_test = _long_tailed_digits(seed=0)
    X, X_test = X.astype(np.float32), X_test.astype(np.float32)
    epochs = 60
    common = dict(
        module__hidden_units=(128,), lr=0.05, max_epochs=epochs, batch_size=64, random_state=0
    )

    def scores(net):
        pred = net.predict(X_test)
        recall = recall_score(y_test, pred, average=None)
        return balanced_accuracy_score(y_test, pred), recall[-3:].mean()

    ce = WeightBalancingClassifier(
        feature_reg=0.0, logit_adjustment=None, module__head="linear",
        optimizer__weight_decay=0.0, callbacks=[_lr_decay(epochs)], **common,
    ).fit(X, y)
    plain = scores(ce)
    adjusted = scores(ce.set_params(logit_adjustment="additive"))
    assert adjusted[0] > plain[0] + 0.04 and adjusted[1] > plain[1] + 0.2

    wb = WeightBalancingClassifier(
        logit_adjustment="multiplicative", callbacks=[_lr_decay(epochs)], **common
    ).fit(X, y)
    multiplicative = scores(wb)
    unadjusted = scores(wb.set_params(logit_adjustment=None))
    assert multiplicative[0] > unadjusted[0] + 0.1 and multiplicative[1] > unadjusted[1]


@pytest.mark.slow
def test_default_weight_balancing_beats_plain_cross_entropy_on_long_tailed_digits():
    """The default (one-stage, additive adjustment) against plain cross-entropy
    on the same data and schedule, 3 seeds. Measured over 5 seeds (user guide):
    balanced accuracy 0.788 (CE) vs 0.852 (default); the paper's multiplicative
    rule gives 0.739."""
    from sklearn.metrics import balanced_accuracy_score

    from .test_reweighting_training import _long_tailed_digits

    gains = []
    for seed in range(3):
        X, y, X_test, y_test = _long_tailed_digits(seed=seed)
        X, X_test = X.astype(np.float32), X_test.astype(np.float32)
        common = dict(
            module__hidden_units=(128,), lr=0.05, max_epochs=60, batch_size=64,
            random_state=seed, callbacks=[_lr_decay(60)],
        )
        ce = WeightBalancingClassifier(
            feature_reg=0.0, logit_adjustment=None, module__head="linear",
            optimizer__weight_decay=0.0, **common,
        ).fit(X, y)
        default = WeightBalancingClassifier(**common).fit(X, y)
        gains.append(
            balanced_accuracy_score(y_test, default.predict(X_test))
            - balanced_accuracy_score(y_test, ce.predict(X_test))
        )
    assert min(gains) > 0 and np.mean(gains) > 0.03


# ==========================================================================
# Weight aligning


def test_weight_aligning_hand_computed_numpy_and_torch():
    W = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 20.0], [2.0, 0.0]])  # norms 5, 1, 20, 2
    aligned, gamma = weight_aligning(W, new_rows=[2, 3])
    assert gamma == pytest.approx(3.0 / 11.0)
    np.testing.assert_allclose(aligned[:2], W[:2])
    np.testing.assert_allclose(aligned[2:], W[2:] * 3 / 11)
    aligned_t, gamma_t = weight_aligning(torch.tensor(W), new_rows=np.array([0, 0, 1, 1], bool))
    assert gamma_t == pytest.approx(gamma) and isinstance(aligned_t, torch.Tensor)
    torch.testing.assert_close(aligned_t, torch.tensor(aligned))
    with pytest.raises(ValueError, match="old and one new"):
        weight_aligning(W, new_rows=np.ones(4, bool))


def _class_incremental(digits, **params):
    X, X_test, y, y_test = digits
    old = y < 5
    rng = np.random.default_rng(0)
    memory = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 3, replace=False) for c in range(5)]
    )
    net = WeightAligningClassifier(
        classes=np.arange(10), module__hidden_units=(128, 128), optimizer__momentum=0.9,
        lr=0.05, batch_size=64, random_state=0, **params,
    ).fit(X[old], y[old])
    new_X = np.vstack([X[~old], X[memory]])
    new_y = np.concatenate([y[~old], y[memory]])
    return net, new_X, new_y


def test_weight_aligning_classifier_mechanics(digits):
    X_test = digits[1]
    net, new_X, new_y = _class_incremental(digits, max_epochs=2, align=False)
    np.testing.assert_array_equal(net.learned_classes_, np.arange(5))
    assert np.all(net.predict_proba(X_test)[:, 5:] == 0)  # not learned yet
    twin = copy.deepcopy(net).set_params(align=True)
    net.partial_fit(new_X, new_y)
    twin.partial_fit(new_X, new_y)
    # Aligning = the unaligned model with new rows scaled by gamma; biases untouched.
    W = get_head(net.module_).weight.detach()
    expected, gamma = weight_aligning(W, new_rows=np.arange(5, 10), old_rows=np.arange(5))
    assert twin.gammas_ == [pytest.approx(gamma)] and net.gammas_ == []
    torch.testing.assert_close(get_head(twin.module_).weight.detach(), expected)
    torch.testing.assert_close(get_head(twin.module_).bias, get_head(net.module_).bias)
    assert [list(c) for c in twin.task_classes_] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_weight_aligning_distillation_loss_rule(digits):
    net, new_X, new_y = _class_incremental(digits, max_epochs=1)
    teacher = copy.deepcopy(net.module_)
    net._seen_ = np.ones(10, dtype=bool)
    old = torch.tensor([True] * 5 + [False] * 5)
    net._kd_ = {"teacher": teacher, "old": old, "lambda": 0.5}
    X = torch.as_tensor(new_X[:4])
    logits = torch.randn(4, 10)
    target = torch.as_tensor(new_y[:4] - 0)
    soft = torch.softmax(teacher(X)[:, :5] / 2.0, dim=1)
    kd = -(soft * torch.log_softmax(logits[:, :5] / 2.0, dim=1)).sum(dim=1)
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(net.get_sample_losses(logits, target, X=X), 0.5 * ce + 0.5 * kd)
    net._kd_ = None


def test_nonnegative_clipping(digits):
    net, _, _ = _class_incremental(digits, max_epochs=1, clip_nonnegative=True)
    assert float(get_head(net.module_).weight.detach().min()) >= 0.0


@pytest.mark.slow
def test_weight_aligning_helps_old_classes_only_when_new_norms_are_larger(digits):
    """Digits 0-4 then 5-9 with 3 exemplars per old class. With weight decay
    5e-3 the new rows grow larger (gamma < 1) and aligning lifts old-class
    accuracy; without weight decay gamma > 1 and aligning hurts. Control:
    the same trained net before aligning. Measured: WD 5e-3 old acc
    0.15 -> 0.35 (gamma 0.81); no WD 0.57 -> 0.42 (gamma 1.13)."""
    X_test, y_test = digits[1], digits[3]
    old = y_test < 5

    def before_after(weight_decay):
        net, new_X, new_y = _class_incremental(
            digits, max_epochs=30, align=False, optimizer__weight_decay=weight_decay
        )
        net.partial_fit(new_X, new_y)
        before = np.mean(net.predict(X_test[old]) == y_test[old])
        head = get_head(net.module_)
        aligned, gamma = weight_aligning(head.weight, new_rows=np.arange(5, 10))
        with torch.no_grad():
            head.weight.copy_(aligned)
        after = np.mean(net.predict(X_test[old]) == y_test[old])
        return before, after, gamma

    before, after, gamma = before_after(5e-3)
    assert gamma < 1 and after > before + 0.1
    before, after, gamma = before_after(0.0)
    assert gamma > 1 and after < before


# ==========================================================================
# Model Stock on state dicts


def test_model_stock_on_state_dicts_matches_numpy_and_keeps_types():
    torch.manual_seed(0)
    base = MLP(4, 3, hidden_units=5)
    base.register_buffer("steps", torch.tensor(3))
    tuned = []
    for k in range(3):
        model = copy.deepcopy(base)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        model.steps += k + 1
        tuned.append(model)
    merged, ratio = model_stock(base, tuned, return_ratio=True)
    arrays = {k: v.numpy() for k, v in base.state_dict().items()}
    expected = model_stock_numpy(
        arrays, [{k: v.numpy() for k, v in m.state_dict().items()} for m in tuned]
    )
    for key, value in merged.items():
        assert value.dtype == base.state_dict()[key].dtype
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-6)
    assert int(merged["steps"]) == 3 and ratio["steps"] is None
    assert all(0 <= ratio[k] <= 1 for k in ratio if ratio[k] is not None)
    base.load_state_dict(merged)  # loadable as is
    single = model_stock(torch.zeros(2), [torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0])])
    torch.testing.assert_close(single, torch.tensor([1.5, 0.0]))


@pytest.mark.slow
def test_model_stock_keeps_base_task_accuracy_better_than_the_soup(digits):
    """Pre-train on digits, fine-tune two copies on differently noised digits
    (sigma 0.5). Controls: the base model, each fine-tune, and the uniform
    soup. Measured (notebook, 2 seeds): clean accuracy stock 0.970 / soup
    0.957 / base 0.970; on the noisy task stock 0.709 < soup 0.728 but > base
    0.663; the paper's 'beats the soup' is not asserted at this scale."""
    X, X_test, y, y_test = digits
    rng = np.random.default_rng(0)

    def noisy(data, seed):
        return (data + 0.5 * np.random.default_rng(seed).standard_normal(data.shape)).astype(
            np.float32
        )

    params = dict(module__hidden_units=(128, 128), optimizer__momentum=0.9, batch_size=64)
    base = NeuralNetClassifier(lr=0.05, max_epochs=20, random_state=0, **params).fit(X, y)
    tuned = []
    for k in range(2):
        model = copy.deepcopy(base).set_params(lr=0.02, max_epochs=15, warm_start=True,
                                               random_state=k + 1)
        tuned.append(model.fit(noisy(X, 100 + k), y))
    states = [m.module_.state_dict() for m in tuned]
    soup = {key: (states[0][key] + states[1][key]) / 2 for key in states[0]}
    stock, ratio = model_stock(base, tuned, return_ratio=True)
    assert all(0.2 < t < 1 for t in ratio.values())

    def accuracy(state, data):
        model = copy.deepcopy(base)
        model.module_.load_state_dict(state)
        return model.score(data, y_test)

    X_noisy = noisy(X_test, int(rng.integers(1000)))
    clean = {name: accuracy(s, X_test) for name, s in [("stock", stock), ("soup", soup)]}
    shifted = {name: accuracy(s, X_noisy) for name, s in [("stock", stock), ("soup", soup)]}
    assert clean["stock"] > clean["soup"]
    assert shifted["stock"] > base.score(X_noisy, y_test)


# ==========================================================================
# Weight selection


def test_uniform_element_selection_rules():
    W = np.arange(6 * 7).reshape(6, 7)
    # rows: 6 % 3 == 0 -> stride 2 (0, 2, 4); columns: round(linspace(0, 6, 4)) = 0, 2, 4, 6
    expected = W[np.ix_([0, 2, 4], [0, 2, 4, 6])]
    np.testing.assert_array_equal(uniform_element_selection(W, (3, 4)), expected)
    # 5 of 7: round(linspace(0, 6, 5)) = 0, 2 (1.5 -> 2), 3, 4 (4.5 -> 4), 6 (half to even)
    np.testing.assert_array_equal(uniform_element_selection(np.arange(7), (5,)), [0, 2, 3, 4, 6])
    Wt = torch.arange(42.0).reshape(6, 7)
    torch.testing.assert_close(
        uniform_element_selection(Wt, (3, 4)), torch.tensor(expected, dtype=torch.float32)
    )
    np.testing.assert_array_equal(uniform_element_selection(W, W.shape), W)
    with pytest.raises(ValueError, match="smaller"):
        uniform_element_selection(W, (7, 7))
    with pytest.raises(ValueError, match="dimensions"):
        uniform_element_selection(W, (3,))


def test_weight_selection_state_dicts():
    torch.manual_seed(0)
    teacher = MLP(8, 10, hidden_units=(32, 24, 16))
    student = MLP(8, 3, hidden_units=(16, 12))
    state = weight_selection(teacher, student)
    assert state.keys() == student.state_dict().keys()
    # First-N layers: body.0 and body.2 come from the teacher's first two layers.
    torch.testing.assert_close(state["body.0.weight"], teacher.body[0].weight[::2].detach())
    torch.testing.assert_close(state["body.2.weight"], teacher.body[2].weight[::2, ::2].detach())
    torch.testing.assert_close(state["body.2.bias"], teacher.body[2].bias[::2].detach())
    # The head keeps the student's own initialisation.
    torch.testing.assert_close(state["head.weight"], student.head.weight.detach())
    deeper = MLP(8, 3, hidden_units=(16, 12, 8, 4))
    with pytest.raises(ValueError, match="no tensor"):
        weight_selection(teacher, deeper)
    assert weight_selection(teacher, deeper, strict=False).keys() == deeper.state_dict().keys()


def test_weight_selection_init_runs_on_fresh_fits_only():
    X, y = _blobs()
    torch.manual_seed(0)
    teacher = MLP(4, 3, hidden_units=(32,))
    net = NeuralNetClassifier(
        module__hidden_units=(16,), max_epochs=0, random_state=0,
        callbacks=[WeightSelectionInit(teacher)],
    ).fit(X, y)
    torch.testing.assert_close(net.module_.body[0].weight, teacher.body[0].weight[::2])
    net.set_params(max_epochs=1, lr=0.5).partial_fit(X, y)
    assert not torch.equal(net.module_.body[0].weight, teacher.body[0].weight[::2])
    state = copy.deepcopy(net.module_.state_dict())
    net.set_params(max_epochs=0).partial_fit(X, y)  # continued: no re-selection
    torch.testing.assert_close(net.module_.state_dict(), state)


@pytest.mark.slow
def test_weight_selection_beats_random_initialisation_with_few_labels(digits):
    """Teacher MLP(256, 256) on all training digits; students MLP(64, 64)
    trained on 100 labels for 10 epochs. Control: random initialisation.
    Measured here: 0.704 vs 0.551 (notebook, 3 seeds, 20 epochs: 0.878 vs 0.796)."""
    X, X_test, y, y_test = digits
    teacher = NeuralNetClassifier(
        module__hidden_units=(256, 256), optimizer__momentum=0.9, lr=0.05, max_epochs=10,
        batch_size=64, random_state=0,
    ).fit(X, y)
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in range(10)])

    def accuracy(callbacks):
        return NeuralNetClassifier(
            module__hidden_units=(64, 64), optimizer__momentum=0.9, lr=0.05, max_epochs=10,
            batch_size=32, random_state=0, callbacks=callbacks,
        ).fit(X[few], y[few]).score(X_test, y_test)

    assert accuracy([WeightSelectionInit(teacher)]) > accuracy([]) + 0.1


def test_torch_nets_serve_the_reweighting_meta_estimators():
    from weightstats.reweighting import DSWeightSelfTraining, LogitAdjustedClassifier

    X, y = _blobs(90)
    y_semi = np.where(np.arange(90) < 45, y, -1)
    net = NeuralNetClassifier(**dict(FAST, max_epochs=10))
    model = DSWeightSelfTraining(net, valid_size=15, random_state=0).fit(X, y_semi)
    assert model.selected_[45:].any() and model.predict(X).shape == (90,)
    adjusted = LogitAdjustedClassifier(net).fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    np.testing.assert_allclose(adjusted.class_prior_, [0.5, 0.25, 0.25])


def test_skops_round_trip_of_a_fitted_method_net():
    sio = pytest.importorskip("skops.io")
    X, y = _blobs()
    net = WeightBalancingClassifier(recipe="two_stage", stage2_epochs=1, **FAST).fit(X, y)
    blob = sio.dumps(net)
    untrusted = sio.get_untrusted_types(data=blob)
    assert all(t.startswith(("weightstats.", "torch.", "skorch.")) for t in untrusted)
    restored = sio.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    buffer = io.BytesIO()
    torch.save(restored.module_.state_dict(), buffer)  # a normal module again


# ==========================================================================
# Robustness: custom loaders, split data, bf16 weights, bad input, divergence


def test_custom_collate_fn_receives_rows_as_in_skorch():
    from torch.utils.data import default_collate

    calls = []

    def counting_collate(rows):
        calls.append(len(rows))
        return default_collate(rows)

    X, y = _blobs()
    net = NeuralNetClassifier(
        **FAST, batch_size=16, iterator_train__collate_fn=counting_collate
    ).fit(X, y)
    assert calls[:4] == [16, 16, 16, 12]
    reference = NeuralNetClassifier(**FAST, batch_size=16).fit(X, y)
    np.testing.assert_allclose(net.predict_proba(X), reference.predict_proba(X), atol=1e-6)
    # The validation loader's collate_fn is honoured too.
    net = NeuralNetClassifier(**FAST, iterator_valid__collate_fn=counting_collate).fit(X, y)
    calls.clear()
    assert net.predict(X).shape == (60,) and calls == [60]


def test_pretrain_then_mix_reads_task_ids_of_the_training_split():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    task = np.repeat([0, 1], [150, 50])
    y = (X[:, 0] > 0).astype(int)
    sampler = TaskMixtureSampler()
    schedule = PretrainThenMix(pretrain_fraction=0.5, mixture=[0.5, 0.5])
    NeuralNetClassifier(
        MultiHeadMLP, module__hidden_units=8, max_epochs=2, random_state=0,
        train_split=ValidSplit(4, stratified=False), iterator_train__sampler=sampler,
        callbacks=[schedule],
    ).fit({"X": X, "task": task}, y)
    assert len(sampler.tasks_) == 150  # the 3/4 of the rows in the training split
    assert max(sampler) < 150


def test_pretrain_then_mix_switches_within_the_epochs_of_each_call():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    task = np.repeat([0, 1], [60, 20])
    y = (X[:, 0] > 0).astype(int)
    schedule = PretrainThenMix(pretrain_fraction=0.5, mixture=[0.5, 0.5])
    net = NeuralNetClassifier(
        MultiHeadMLP, module__hidden_units=8, max_epochs=2, random_state=0,
        iterator_train__sampler=TaskMixtureSampler(), callbacks=[schedule],
    )
    net.partial_fit({"X": X, "task": task}, y, epochs=6)
    assert schedule.switch_epoch_ == 3
    assert net.history[:, "task_probs"] == [[1.0, 0.0]] * 3 + [[0.5, 0.5]] * 3
    net.partial_fit({"X": X, "task": task}, y)  # max_epochs=2: one epoch of each phase
    assert net.history[-2:, "task_probs"] == [[1.0, 0.0], [0.5, 0.5]]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_model_stock_merges_half_precision_state_dicts(dtype):
    torch.manual_seed(0)
    base = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    tuned = [{k: v + 0.1 * torch.randn_like(v) for k, v in base.items()} for _ in range(3)]
    expected = model_stock(base, tuned)
    low = model_stock(
        {k: v.to(dtype) for k, v in base.items()},
        [{k: v.to(dtype) for k, v in m.items()} for m in tuned],
    )
    for key, value in low.items():
        assert value.dtype == dtype
        torch.testing.assert_close(value.float(), expected[key], atol=0.05, rtol=0.02)
    # A bfloat16 module merges and loads too.
    module = MLP(3, 2, hidden_units=4).to(dtype)
    module.load_state_dict(model_stock(module, [module, copy.deepcopy(module)]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: NeuralNetClassifier(max_epochs=3, random_state=0),
        lambda: NeuralNetRegressor(max_epochs=3, random_state=0),
        lambda: WeightBalancingClassifier(max_epochs=3, random_state=0),
        lambda: WeightAligningClassifier(max_epochs=3, random_state=0),
    ],
    ids=["classifier", "regressor", "weight-balancing", "weight-aligning"],
)
def test_unscaled_features_are_reported(make, digits):
    import warnings

    X, _, y, _ = digits
    X = X.copy()
    X[:, 5] *= 1e12
    net = make()
    target = y.astype(np.float32) if isinstance(net, NeuralNetRegressor) else y
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net.fit(X, target)
        except ValueError as exc:  # the regressor's loss overflows
            assert "non-finite" in str(exc) and "StandardScaler" in str(exc)
    scale = [str(w.message) for w in caught if "column 5 of X reaches 1e+12" in str(w.message)]
    assert len(scale) == 1 and "StandardScaler" in scale[0]


def test_divergent_training_raises_or_warns_naming_epoch_and_batch():
    from sklearn.exceptions import ConvergenceWarning

    X, y = _blobs()
    net = NeuralNetRegressor(module__hidden_units=(), lr=1e30, batch_size=20, random_state=0)
    with pytest.raises(ValueError, match=r"non-finite \(inf\) at epoch 1, batch 2.*Scaler"):
        net.fit(X, y.astype(np.float32))
    # A loss that explodes without overflowing: a warning, training goes on.
    net = NeuralNetClassifier(**dict(FAST, lr=1e4, batch_size=20, max_epochs=1))
    with pytest.warns(ConvergenceWarning, match=r"jumped from 0.987 .* at epoch 1, batch 2"):
        net.fit(X, y)


def test_single_class_targets_are_refused():
    X, _ = _blobs()
    for net in (NeuralNetClassifier(**FAST), WeightBalancingClassifier(**FAST)):
        with pytest.raises(ValueError, match="at least 2 classes"):
            net.fit(X, np.zeros(len(X), dtype=int))
    # Declaring all classes up front (class-incremental learning) is fine.
    net = WeightAligningClassifier(**FAST, classes=[0, 1]).fit(X, np.zeros(len(X), dtype=int))
    assert net.predict_proba(X).shape == (len(X), 2)


def test_el2n_scores_refuse_nan_and_rows_that_are_not_probabilities():
    with pytest.raises(ValueError, match="NaN"):
        el2n_scores([[np.nan, 1.0], [0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="sum to 1"):
        el2n_scores([[0.6, 0.6], [0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="sum to 1"):
        el2n_scores([[1.5, -0.5]], [0])
    # float32 softmax rows are accepted.
    proba = torch.softmax(torch.randn(50, 7), dim=1).numpy()
    assert el2n_scores(proba, np.zeros(50, dtype=int)).shape == (50,)


def test_nan_tensors_are_refused():
    X, y = _blobs()
    bad = torch.as_tensor(X).clone()
    bad[3, 1] = float("nan")
    net = NeuralNetClassifier(**FAST)
    with pytest.raises(ValueError, match="NaN"):
        net.fit(bad, torch.as_tensor(y))
    with pytest.raises(ValueError, match="NaN"):
        net.fit({"X": bad}, y)
    net.fit(torch.as_tensor(X), torch.as_tensor(y))
    with pytest.raises(ValueError, match="NaN"):
        net.predict(bad)
    with pytest.raises(ValueError, match="NaN"):
        NeuralNetRegressor(**FAST).fit(X, torch.full((len(y),), float("nan")))
