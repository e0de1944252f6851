"""weightstats.nn.SRWMLayer: the self-referential weight matrix (Irie et al., 2022).

Exact rules: one step on 2x2 matrices computed by hand; the scan against an
independent per-stream loop and autograd; gradcheck in float64; one torch
call sequence whatever the number of heads and sequences; stateful carry.
Then bad input, use inside a skorch net, and the associative-recall
experiment (the notebook ``sequence_layers.ipynb`` has the full table).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from torch import nn  # noqa: E402

from weightstats.nn import NeuralNetClassifier, SRWMLayer  # noqa: E402
from weightstats.nn.layers._srwm import srwm_scan  # noqa: E402

pytestmark = pytest.mark.requires("torch", "skorch")


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _reference_scan(x, W0):
    """The paper's update, one stream at a time, sub-matrix by sub-matrix (NumPy)."""
    n_seq, n_steps, d = x.shape
    y = np.zeros((n_seq, n_steps, d))
    W_last = np.zeros(W0.shape)
    for n in range(n_seq):
        W_y, W_q, W_k, w_b = (W0[n, :d], W0[n, d : 2 * d], W0[n, 2 * d : 3 * d], W0[n, 3 * d :])
        for t in range(n_steps):
            x_t = x[n, t]
            y[n, t] = W_y @ x_t
            q, k = _softmax(W_q @ x_t), _softmax(W_k @ x_t)
            beta = 1 / (1 + np.exp(-(w_b @ x_t)))
            W_y, W_q, W_k, w_b = (
                W + beta[i] * np.outer(W @ q - W @ k, k)
                for i, W in enumerate((W_y, W_q, W_k, w_b))
            )
        W_last[n] = np.concatenate([W_y, W_q, W_k, w_b])
    return y, W_last


def test_one_step_on_two_by_two_matrices_by_hand():
    # d = 2: W_y = [[1, 2], [3, 4]], W_q = 0, W_k = [[ln 3, 0], [0, 0]], w_b = 0.
    # x_1 = (1, 0): y_1 = (1, 3); phi(q) = (1/2, 1/2); phi(k) = softmax(ln 3, 0) = (3/4, 1/4);
    # every rate sigmoid(0) = 1/2.
    # W_y: W_y phi(q) - W_y phi(k) = (1.5, 3.5) - (1.25, 3.25) = (1/4, 1/4);
    #      W_y += 1/2 (1/4, 1/4)^T (3/4, 1/4) = [[3/32, 1/32], [3/32, 1/32]].
    # W_k: W_k phi(q) - W_k phi(k) = (ln3/2 - 3 ln3/4, 0) = (-ln3/4, 0);
    #      W_k += 1/2 (-ln3/4, 0)^T (3/4, 1/4) = [[-3 ln3/32, -ln3/32], [0, 0]].
    # W_q and w_b are zero, so their updates are zero.
    ln3 = math.log(3.0)
    W0 = torch.tensor(
        [[1, 2], [3, 4], [0, 0], [0, 0], [ln3, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],
        dtype=torch.float64,
    )[None]
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y, W = srwm_scan(x[:, :1], W0)
    expected_W = W0.clone()
    expected_W[0, :2] += torch.tensor([[3 / 32, 1 / 32], [3 / 32, 1 / 32]], dtype=torch.float64)
    expected_W[0, 4] += torch.tensor([-3 * ln3 / 32, -ln3 / 32], dtype=torch.float64)
    torch.testing.assert_close(y[0, 0], torch.tensor([1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(W, expected_W)
    # the second output reads the modified W_y: x_2 = (0, 1) -> (2 + 1/32, 4 + 1/32)
    y2, _ = srwm_scan(x, W0)
    torch.testing.assert_close(y2[0, 1], torch.tensor([2 + 1 / 32, 4 + 1 / 32], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scan_matches_the_rule_stream_by_stream(dtype):
    rng = np.random.default_rng(0)
    d, n_seq, n_steps = 3, 4, 70  # past two checkpoints of the backward pass
    x = rng.normal(size=(n_seq, n_steps, d))
    W0 = rng.normal(size=(n_seq, 3 * d + 4, d)) / math.sqrt(d)
    y, W = srwm_scan(torch.tensor(x, dtype=dtype), torch.tensor(W0, dtype=dtype))
    y_ref, W_ref = _reference_scan(x, W0)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(y.double().numpy(), y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(W.double().numpy(), W_ref, rtol=tol, atol=tol)


def _autograd_scan(x, W0):
    """The rule with torch autograd through every step (no custom backward)."""
    d = x.shape[-1]
    rates = torch.tensor([0] * d + [1] * d + [2] * d + [3] * 4)
    W, ys = W0, []
    for t in range(x.shape[1]):
        o = torch.einsum("nmd,nd->nm", W, x[:, t])
        q, k = torch.softmax(o[:, d : 2 * d], -1), torch.softmax(o[:, 2 * d : 3 * d], -1)
        rate = torch.sigmoid(o[:, 3 * d :])[:, rates]
        value = torch.einsum("nmd,nd->nm", W, q - k)
        W = W + (rate * value)[:, :, None] * k[:, None, :]
        ys.append(o[:, :d])
    return torch.stack(ys, 1), W


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hand_written_backward_matches_autograd(dtype):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 67, 4, generator=gen, dtype=dtype, requires_grad=True)
    W0 = (torch.randn(5, 16, 4, generator=gen, dtype=dtype) / 2).requires_grad_()
    g_y = torch.randn(5, 67, 4, generator=gen, dtype=dtype)
    g_W = torch.randn(5, 16, 4, generator=gen, dtype=dtype)
    grads = []
    for scan in (srwm_scan, _autograd_scan):
        y, W = scan(x, W0)
        grads.append(torch.autograd.grad((y * g_y).sum() + (W * g_W).sum(), (x, W0)))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for ours, reference in zip(*grads, strict=True):
        torch.testing.assert_close(ours, reference, **tol)


def test_gradcheck_of_the_unrolled_scan_and_layer():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    W0 = torch.randn(3, 13, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(srwm_scan, (x, W0))
    torch.manual_seed(0)
    layer = SRWMLayer(6, n_heads=2, beta_init=0.0).double()
    params = dict(layer.named_parameters())

    def layer_output(inputs, weight, out_weight):
        return torch.func.functional_call(
            layer, {**params, "weight": weight, "out_linear.weight": out_weight}, (inputs,)
        )

    inputs = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = params["weight"].detach().clone().requires_grad_()
    out_weight = params["out_linear.weight"].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(layer_output, (inputs, weight, out_weight))


def _aten_calls(batch, n_heads, n_steps=7):
    """How many times each aten operator runs in a forward and backward pass."""
    torch.manual_seed(0)
    layer = SRWMLayer(8 * n_heads, n_heads=n_heads)
    x = torch.randn(batch, n_steps, 8 * n_heads)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        layer(x).sum().backward()
    return {event.key: event.count for event in prof.key_averages()}


_STEP_OPS = (
    "aten::bmm", "aten::baddbmm_", "aten::baddbmm", "aten::_softmax", "aten::sigmoid",
    "aten::index_select", "aten::_softmax_backward_data", "aten::mul", "aten::cat",
)


def test_time_loop_is_vectorised_over_batch_and_heads():
    # The same operator calls whatever the number of sequences and heads:
    # the only Python loop is over time, in the forward and the
    # hand-written backward pass alike.
    calls = _aten_calls(batch=1, n_heads=1)
    many = _aten_calls(batch=5, n_heads=6)
    for op in _STEP_OPS:  # (reshapes outside the loop copy or not with the layout)
        assert calls[op] == many[op] >= 7, op
    longer = _aten_calls(batch=1, n_heads=1, n_steps=14)
    # per step: two products and an update forward; four products, the
    # revert and two gradient updates backward (a copy at checkpoints)
    assert longer["aten::bmm"] - calls["aten::bmm"] == 7 * (2 + 3)
    assert longer["aten::baddbmm"] - calls["aten::baddbmm"] == 7
    assert longer["aten::baddbmm_"] - calls["aten::baddbmm_"] == 7 * (1 + 1 + 2)


def test_layer_matches_the_rule_with_projections():
    torch.manual_seed(3)
    layer = SRWMLayer(8, n_heads=2).double()
    x = torch.randn(3, 9, 8, dtype=torch.float64)
    heads = x.view(3, 9, 2, 4).permute(0, 2, 1, 3).reshape(6, 9, 4)
    W0 = layer.weight.detach().repeat(3, 1, 1).numpy()
    y_ref, _ = _reference_scan(heads.numpy(), W0)
    y_ref = torch.tensor(y_ref).view(3, 2, 9, 4).permute(0, 2, 1, 3).reshape(3, 9, 8)
    expected = layer.out_linear(y_ref) + layer.layer_norm(x)
    torch.testing.assert_close(layer(x), expected)


def test_stateful_carry_equals_the_concatenated_sequence():
    torch.manual_seed(4)
    whole = SRWMLayer(12, n_heads=3, d_head=5)  # with an input projection
    stateful = SRWMLayer(12, n_heads=3, d_head=5, stateful=True)
    stateful.load_state_dict(whole.state_dict())
    x = torch.randn(2, 40, 12)
    parts = [stateful(x[:, :7]), stateful(x[:, 7:8]), stateful(x[:, 8:])]
    torch.testing.assert_close(torch.cat(parts, dim=1), whole(x), rtol=1e-5, atol=1e-5)
    assert stateful.state.shape == (2, 3, 19, 5) and not stateful.state.requires_grad
    stateful.reset_state()
    torch.testing.assert_close(stateful(x[:, :7]), parts[0])
    with pytest.raises(ValueError, match="same batch size"):
        stateful(x[:1])


def test_explicit_state_carries_gradients_across_segments():
    torch.manual_seed(5)
    layer = SRWMLayer(8, n_heads=2).double()
    x = torch.randn(2, 12, 8, dtype=torch.float64, requires_grad=True)
    first, state = layer(x[:, :5], return_state=True)
    second = layer(x[:, 5:], state=state)
    loss_parts = torch.cat([first, second], dim=1).square().sum()
    grads_parts = torch.autograd.grad(loss_parts, [x, layer.weight])
    grads_whole = torch.autograd.grad(layer(x).square().sum(), [x, layer.weight])
    for a, b in zip(grads_parts, grads_whole, strict=True):
        torch.testing.assert_close(a, b)


@given(
    batch=st.integers(1, 4),
    n_steps=st.integers(1, 40),
    split=st.integers(0, 40),
    seed=st.integers(0, 2**16),
)
def test_sequences_are_independent_and_outputs_causal(batch, n_steps, split, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = SRWMLayer(6, n_heads=2, beta_init=0.0).double()
    x = torch.randn(batch, n_steps, 6, generator=gen, dtype=torch.float64)
    out = layer(x)
    order = torch.randperm(batch, generator=gen)
    torch.testing.assert_close(layer(x[order]), out[order])  # rows do not interact
    split = min(split, n_steps)
    changed = x.clone()
    changed[:, split:] = torch.randn(batch, n_steps - split, 6, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(layer(changed)[:, :split], out[:, :split])  # no look-ahead


def test_frozen_layer_has_no_memory():
    torch.manual_seed(6)
    layer = SRWMLayer(8, n_heads=2, self_modify=False)
    x = torch.randn(1, 6, 8)
    shuffled = torch.cat([x[:, torch.randperm(5)], x[:, 5:]], dim=1)
    torch.testing.assert_close(layer(x)[:, -1], layer(shuffled)[:, -1])
    learning = SRWMLayer(8, n_heads=2)
    learning.load_state_dict(layer.state_dict())
    torch.testing.assert_close(learning(x)[:, 0], layer(x)[:, 0])  # same first step
    assert not torch.allclose(learning(x)[:, -1], layer(x)[:, -1])


def test_initialisation_follows_the_reference():
    torch.manual_seed(7)
    layer = SRWMLayer(256, n_heads=4, beta_init=-1.0)  # d_head 64
    W = layer.weight.detach()
    assert W.shape == (4, 3 * 64 + 4, 64)
    assert abs(W[:, : 3 * 64].std().item() - 1 / 8) < 0.005
    assert abs(W[:, : 3 * 64].mean().item()) < 0.005
    assert abs(W[:, 3 * 64 :].mean().item() + 1.0) < 0.05


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_model": 10, "n_heads": 4}, "does not divide"),
        ({"d_model": 8, "n_heads": 0}, "positive"),
        ({"d_model": 8, "d_head": 0}, "d_head must be positive"),
        ({"d_model": 8, "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SRWMLayer(**kwargs)


def test_bad_input():
    layer = SRWMLayer(8, n_heads=2)
    with pytest.raises(ValueError, match=r"shape \(batch, T, 8\)"):
        layer(torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"shape \(batch, T, 8\)"):
        layer(torch.zeros(2, 3, 6))
    with pytest.raises(ValueError, match="empty sequence"):
        layer(torch.zeros(2, 0, 8))
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer(torch.full((1, 3, 8), float("nan")))
    with pytest.raises(ValueError, match="state has shape"):
        layer(torch.zeros(2, 3, 8), state=torch.zeros(1, 2, 16, 4))


class _RecallNet(nn.Module):
    """Sequence classifier: input map, SRWM layer, readout at the last step."""

    def __init__(self, n_features=32, n_outputs=16, d_model=64, n_heads=4, self_modify=True):
        super().__init__()
        self.inp = nn.Linear(n_features, d_model)
        self.srwm = SRWMLayer(d_model, n_heads, self_modify=self_modify)
        self.head = nn.Linear(d_model, n_outputs)

    def forward(self, X):
        return self.head(self.srwm(self.inp(X))[:, -1])


class _LSTMNet(nn.Module):
    def __init__(self, n_features=32, n_outputs=16, hidden=36):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, X):
        return self.head(self.lstm(X)[0][:, -1])


def recall_batch(n, n_pairs=8, n_keys=16, n_values=16, generator=None):
    """``n_pairs`` one-hot (key, value) steps with distinct keys, then a key to recall."""
    keys = torch.rand(n, n_keys, generator=generator).argsort(1)[:, :n_pairs]
    values = torch.randint(0, n_values, (n, n_pairs), generator=generator)
    which = torch.randint(0, n_pairs, (n,), generator=generator)
    X = torch.zeros(n, n_pairs + 1, n_keys + n_values)
    rows, steps = torch.arange(n)[:, None], torch.arange(n_pairs)[None, :]
    X[rows, steps, keys] = 1
    X[rows, steps, n_keys + values] = 1
    X[torch.arange(n), n_pairs, keys[torch.arange(n), which]] = 1
    return X, values[torch.arange(n), which]


def test_recall_data():
    X, y = recall_batch(5, generator=torch.Generator().manual_seed(0))
    assert X.shape == (5, 9, 32) and y.shape == (5,)
    assert torch.equal(X[:, :8].sum(-1), torch.full((5, 8), 2.0))
    for i in range(5):
        step = int(torch.nonzero(X[i, :8, :16] @ X[i, 8, :16])[0, 0])  # where the query key was
        assert int(X[i, step, 16:].argmax()) == int(y[i])


def test_srwm_in_a_skorch_net():
    X, y = recall_batch(256, generator=torch.Generator().manual_seed(0))
    net = NeuralNetClassifier(
        _RecallNet, module__d_model=16, module__n_heads=2, optimizer=torch.optim.Adam,
        lr=3e-3, max_epochs=2, batch_size=64, random_state=0,
    ).fit(X, y.numpy())
    assert net.predict_proba(X).shape == (256, 16)
    assert np.isfinite(net.history[:, "train_loss"]).all()


def _train_recall(model, steps, seed, batch=128):
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        X, y = recall_batch(batch, generator=gen)
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    X, y = recall_batch(2000, generator=torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


@pytest.mark.slow
def test_associative_recall_srwm_beats_frozen_and_lstm():
    # 8 (key, value) pairs over 16 keys and 16 values, then a key: chance is 1/16.
    results = {"srwm": [], "frozen": [], "lstm": []}
    for seed in range(3):
        torch.manual_seed(seed)
        srwm = _RecallNet()
        torch.manual_seed(seed)
        frozen = _RecallNet(self_modify=False)
        torch.manual_seed(seed)
        lstm = _LSTMNet()
        n_srwm = sum(p.numel() for p in srwm.parameters())
        n_lstm = sum(p.numel() for p in lstm.parameters())
        assert abs(n_lstm - n_srwm) < 0.01 * n_srwm  # 10,704 vs 10,672
        results["srwm"].append(_train_recall(srwm, 500, seed))
        results["frozen"].append(_train_recall(frozen, 500, seed))
        results["lstm"].append(_train_recall(lstm, 500, seed))
    srwm, frozen, lstm = (np.array(results[k]) for k in ("srwm", "frozen", "lstm"))
    assert (frozen < 0.1).all()  # no memory: chance
    assert (srwm > 0.8).all() and (srwm > frozen + 0.7).all()
    assert (srwm > lstm + 0.3).all()
