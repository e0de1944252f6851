"""weightstats.nn.quantization: StatsQ / LSQ / CGA / QKR and SignRound.

Exact rules on hand-made tensors against independent computations written
here (nbasyl/OFQ and intel/auto-round rules); mechanics (parametrisations,
callbacks in the skorch nets, packing, state dicts); bad input; the
cross-check against auto-round's own functions where it is installed; and
the slow experiments (``tests/_quantization_experiments.py``, three seeds,
asserting what holds on every seed).
"""

import copy
import io
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from weightstats.nn import (  # noqa: E402
    LSQ,
    MLP,
    ConfidenceGuidedAnnealing,
    NeuralNetClassifier,
    QKReparamAttention,
    QuantLinear,
    SignRound,
    StatsQ,
    TrackOscillation,
    confident_weights,
    lsq_fake_quantize,
    prepare_qat,
    quantized_weights,
    rtn_quantize,
    signround_fake_quantize,
    statsq_quantize,
)
from weightstats.nn.quantization._quant_linear import pack_codes, unpack_codes  # noqa: E402

from . import _quantization_experiments as experiments  # noqa: E402

pytestmark = pytest.mark.requires("torch", "skorch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _weights(shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ===================================================================== StatsQ
def _statsq_reference(W, bits):
    """StatsQ of nbasyl/OFQ StatsQuantizer.forward, in float64 NumPy."""
    W = np.asarray(W, dtype=np.float64)
    s = 2 * np.abs(W).mean(axis=1, keepdims=True)
    clipped = np.clip(W / s, -1.0, 1.0 - 1e-6)
    n = 2.0 ** (bits - 1)
    return s * (np.round(clipped * n - 0.5) + 0.5) / n, s


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_statsq_levels_and_scale_match_the_formula(bits):
    W = torch.tensor(
        [[0.1, -0.3, 0.5, -0.7, 0.05, 1.2], [2.0, -2.0, 0.0, 0.4, -0.1, 0.3]]
    )
    expected, s = _statsq_reference(W.numpy(), bits)
    out = statsq_quantize(W, bits)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-7)
    # every value is an odd multiple of s / (2n) (mid-rise: no level at zero),
    # within [-s (1 - 1/(2n)), s (1 - 1/(2n))]
    n = 2 ** (bits - 1)
    units = out.numpy() / (s / (2 * n))
    np.testing.assert_allclose(units, np.round(units), atol=1e-4)
    assert np.all(np.round(units) % 2 == 1)
    assert np.all(np.abs(np.round(units)) <= 2 * n - 1)
    assert len(np.unique(np.round(units))) <= 2**bits


def test_statsq_scale_of_first_row_by_hand():
    W = torch.tensor([[0.1, -0.3, 0.5, -0.7]])  # s = 2 * 0.4 = 0.8, n = 2
    # W / s = 0.125, -0.375, 0.625, -0.875 -> round(2 c - 0.5) = 0, -1, 1, -2
    # -> (code + 0.5) / 2 * 0.8 = 0.2, -0.2, 0.6, -0.6
    assert torch.allclose(statsq_quantize(W, 2), torch.tensor([[0.2, -0.2, 0.6, -0.6]]),
                          rtol=0, atol=1e-7)
    assert torch.equal(StatsQ(2).integer_weights(W), torch.tensor([[0.0, -1.0, 1.0, -2.0]]))


def test_statsq_gradient_is_the_identity():
    W = _weights((5, 7)).requires_grad_()
    upstream = _weights((5, 7), seed=1)
    (statsq_quantize(W, 2) * upstream).sum().backward()
    assert torch.equal(W.grad, upstream)


def test_statsq_forward_is_exact_despite_the_straight_through_form():
    W = _weights((16, 32)).requires_grad_()
    direct = statsq_quantize(W.detach(), 3)
    assert torch.equal(statsq_quantize(W, 3).detach(), direct)


def test_statsq_parametrisation_on_linear_and_conv():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    raw = layer.weight.detach().clone()
    parametrize.register_parametrization(layer, "weight", StatsQ(2))
    assert torch.equal(layer.weight, statsq_quantize(raw, 2))
    x = torch.randn(3, 6)
    layer(x).sum().backward()
    assert torch.allclose(layer.parametrizations.weight.original.grad, torch.ones(3, 4).T @ x)
    conv = nn.Conv2d(2, 3, 3)
    kernel = conv.weight.detach().clone()
    parametrize.register_parametrization(conv, "weight", StatsQ(2))
    flat, _ = _statsq_reference(kernel.reshape(3, -1).numpy(), 2)
    np.testing.assert_allclose(conv.weight.detach().numpy().reshape(3, -1), flat, rtol=1e-6)


def test_statsq_zero_row_gives_the_smallest_levels_not_nan():
    W = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    out = statsq_quantize(W, 2)
    assert torch.isfinite(out).all()
    assert float(out[0].abs().max()) < 1e-30


# ======================================================================== LSQ
def _lsq_reference(W, s, bits):
    """OFQ's LsqQuantizerWeight.forward (grad_scale, clip, round_pass), per row."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    g = 1.0 / math.sqrt(qmax * W.shape[1])
    alpha = s.unsqueeze(-1)
    scaled = (alpha - alpha * g).detach() + alpha * g
    x = torch.clamp(W / scaled, qmin, qmax)
    x = (x.round() - x).detach() + x
    return x * scaled


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_lsq_matches_the_reference_quantizer_and_its_gradients(bits):
    W1 = (_weights((4, 9)) * 0.8).requires_grad_()
    s1 = torch.tensor([0.3, 0.5, 0.2, 0.7], requires_grad=True)
    W2, s2 = W1.detach().clone().requires_grad_(), s1.detach().clone().requires_grad_()
    upstream = _weights((4, 9), seed=3)
    out = lsq_fake_quantize(W1, s1, bits)
    ref = _lsq_reference(W2, s2, bits)
    assert torch.allclose(out, ref, atol=1e-7)
    (out * upstream).sum().backward()
    (ref * upstream).sum().backward()
    assert torch.allclose(W1.grad, W2.grad)
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)


def test_lsq_torch_kernel_agrees_inside_the_range_and_differs_at_the_edges():
    # W / s: 0.3, -1.2 inside [-2, 1]; 1.3 within half a step above the range
    W = torch.tensor([[0.3, -1.2, 1.3]], requires_grad=True)
    s = torch.tensor([1.0], requires_grad=True)
    Wt, st_ = W.detach().clone().requires_grad_(), s.detach().clone().requires_grad_()
    ours = lsq_fake_quantize(W, s, 2, grad_factor=1.0)
    theirs = lsq_fake_quantize(Wt, st_, 2, grad_factor=1.0, implementation="torch")
    assert torch.equal(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    assert W.grad.tolist() == [[1.0, 1.0, 0.0]]  # LSQ: no gradient beyond the clip
    assert Wt.grad.tolist() == [[1.0, 1.0, 1.0]]  # torch: inside until round() leaves it
    # scale: round(x) - x inside, qmax = 1 beyond (LSQ) vs round(x) - x (torch)
    assert s.grad.item() == pytest.approx((0 - 0.3) + (-1 + 1.2) + 1.0)
    assert st_.grad.item() == pytest.approx((0 - 0.3) + (-1 + 1.2) + (1 - 1.3))


def test_lsq_initial_scale_and_parametrisation():
    torch.manual_seed(0)
    layer = nn.Linear(10, 3)
    raw = layer.weight.detach().clone()
    quantizer = LSQ(layer.weight, bits=3)
    assert torch.allclose(quantizer.scale, 2 * raw.abs().mean(1) / math.sqrt(3))
    parametrize.register_parametrization(layer, "weight", quantizer)
    codes = quantizer.integer_weights(raw)
    assert torch.equal(layer.weight, codes * quantizer.scale.detach()[:, None])
    assert codes.min() >= -4 and codes.max() <= 3


# ======================================================================= CGA
def _cga_reference(cur_weight, num_bits, boundary_range):
    """nbasyl/OFQ cga.py freeze_outside_boundary_weight_idx, transcribed."""
    s = 2 * torch.mean(abs(cur_weight), dim=1, keepdim=True)
    clipped = torch.clamp(cur_weight / s, min=-1.0, max=1.0 - 1e-6)
    b4_round = clipped * float(2 ** (num_bits - 1)) - 0.5
    rounded = torch.round(b4_round)
    not_freeze = torch.zeros_like(cur_weight)
    for i in np.arange(start=rounded.min().item(), stop=rounded.max().item()):
        within = ((b4_round - i) <= (0.5 + boundary_range)) * (
            (b4_round - i) >= (0.5 - boundary_range)
        )
        not_freeze = not_freeze + within.float()
    return 1.0 - not_freeze


@pytest.mark.parametrize("bits", [2, 3])
def test_confident_weights_match_the_reference_freeze_index(bits):
    # values placed at and around the boundaries of a 2-/3-bit grid
    W = torch.linspace(-1.2, 1.2, 241).reshape(1, -1) * torch.tensor([[1.0], [0.7], [1.9]])
    W = W + 0.0013 * _weights(W.shape, seed=4)
    for br in (0.005, 0.05):
        expected = _cga_reference(W, bits, br).bool()
        got = confident_weights(StatsQ(bits).pre_round(W), br)
        assert torch.equal(got, expected)
        assert 0 < int((~got).sum()) < got.numel()


def test_cga_zeroes_gradients_exactly_outside_the_boundary_range_and_restores_weights():
    torch.manual_seed(0)
    model = prepare_qat(MLP(6, 3, hidden_units=(40, 40)), bits=2)
    weight = model.body[2].parametrizations.weight.original
    X, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    cga = ConfidenceGuidedAnnealing(boundary_range=0.05)
    for _ in range(3):  # momentum builds up: frozen weights must still not move
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        grad = weight.grad.clone()
        before = weight.detach().clone()
        frozen = ~(_cga_reference(before, 2, 0.05) == 0)
        state = cga.freeze(model)
        assert torch.equal(weight.grad, torch.where(frozen, torch.zeros_like(grad), grad))
        optimizer.step()
        cga.restore(state)
        assert torch.equal(weight.detach()[frozen], before[frozen])
        assert bool((weight.detach()[~frozen] != before[~frozen]).any())
        assert cga.frozen_fraction_ == pytest.approx(float(frozen.float().mean()))


def test_cga_masks_the_gradient_of_confident_query_key_products():
    torch.manual_seed(0)
    attention = QKReparamAttention(8, num_heads=2, bits=2)
    x = torch.randn(4, 5, 8)
    captured = {}
    original = attention.qk_quantizer.forward

    def spy(product):
        product.register_hook(lambda grad: captured.__setitem__("grad", grad))
        captured["product"] = product.detach()
        return original(product)

    attention.qk_quantizer.forward = spy
    ConfidenceGuidedAnnealing(boundary_range=0.05).begin(attention)
    attention(x).sum().backward()
    confident = confident_weights(StatsQ(2).pre_round(captured["product"]), 0.05)
    assert bool(confident.any()) and bool((~confident).any())
    # the product entering the quantiser is detached where confident
    assert captured["grad"] is not None
    ConfidenceGuidedAnnealing().end(attention)
    assert attention.cga_boundary_range is None


def test_cga_gradient_reaches_only_through_unconfident_product_entries():
    torch.manual_seed(1)
    attention = QKReparamAttention(4, num_heads=1, bits=2)
    x = torch.randn(2, 3, 4)
    product = attention._stacked_product().detach()
    confident = confident_weights(StatsQ(2).pre_round(product), 0.2)
    attention.cga_boundary_range = 0.2
    attention(x).sum().backward()
    grad_masked = attention.q.weight.grad.clone()
    # the same gradient computed by hand: dL/dP masked, chained through P = Wq^T Wk
    attention.zero_grad()
    attention.cga_boundary_range = None
    Wq = attention.q.weight.detach().clone().requires_grad_()
    Wk = attention.k.weight.detach()
    P = (Wq.T @ Wk).requires_grad_()
    logits = torch.einsum("bnc,cd,bmd->bnm", x, statsq_quantize(P, 2), x) * 0.5
    out = attention.proj(torch.softmax(logits, -1) @ attention.v(x))
    (gP,) = torch.autograd.grad(out.sum(), P)
    (gq,) = torch.autograd.grad((Wq.T @ Wk), Wq, grad_outputs=gP.masked_fill(confident, 0.0))
    assert torch.allclose(grad_masked, gq, atol=1e-6)


# ============================================================== oscillation
def _oscillation_reference(codes_sequence, momentum):
    """nbasyl/OFQ TrackOscillation.__call__, element by element in Python."""
    first = np.asarray(codes_sequence[0], dtype=float)
    prev, direction, ema = first.copy(), np.zeros_like(first), np.zeros_like(first)
    events = 0
    for codes in codes_sequence[1:]:
        codes = np.asarray(codes, dtype=float)
        delta = np.round(prev - codes)
        switch = np.sign(delta)
        oscillated = (direction * switch) == -1
        ema = momentum * oscillated + (1 - momentum) * ema
        direction[delta != 0] = switch[delta != 0]
        prev = codes
        events += oscillated.sum()
    return ema, events


def test_track_oscillation_matches_the_reference_statistic():
    layer = nn.Linear(3, 2, bias=False)
    quantizer = LSQ(layer.weight, bits=3)
    with torch.no_grad():
        quantizer.scale.fill_(1.0)  # codes = round(clip(W, -4, 3))
    parametrize.register_parametrization(layer, "weight", quantizer)
    sequence = [
        [[0.0, 1.0, -1.0], [2.0, 0.0, 0.2]],
        [[1.0, 1.0, -1.0], [2.0, 0.0, 0.2]],  # up
        [[0.0, 1.0, -2.0], [2.0, 1.0, 0.2]],  # back down: oscillation
        [[1.0, 1.0, -1.0], [2.0, 1.0, 0.2]],  # up again: oscillation; w[0,2] back up: oscillation
        [[1.0, 2.0, -1.0], [2.0, 0.0, 3.0]],
        [[1.0, 1.0, -1.0], [2.0, 1.0, 3.0]],
    ]
    tracker = TrackOscillation(momentum=0.3)
    with torch.no_grad():
        layer.parametrizations.weight.original.copy_(torch.tensor(sequence[0]))
    tracker.start(layer)
    for codes in sequence[1:]:
        with torch.no_grad():
            layer.parametrizations.weight.original.copy_(torch.tensor(codes))
        tracker.update()
    ema, events = _oscillation_reference(sequence, 0.3)
    np.testing.assert_allclose(tracker.frequencies_["weight"].numpy(), ema, rtol=1e-6)
    rates, overall = tracker.rates()
    assert overall == pytest.approx(events / (6 * 5))
    assert rates == {"weight": pytest.approx(events / 30)}
    assert tracker.summary()["weight"] == pytest.approx(ema.mean())


# ===================================================================== QKR
def test_qkr_product_and_logits_match_standard_attention_in_full_precision():
    torch.manual_seed(0)
    plain = QKReparamAttention(8, num_heads=2, bits=None)
    x = torch.randn(3, 5, 8)
    q = plain.q(x).reshape(3, 5, 2, 4).transpose(1, 2)
    k = plain.k(x).reshape(3, 5, 2, 4).transpose(1, 2)
    logits = q @ k.transpose(-2, -1)
    product = plain.qk_product()
    assert torch.allclose(product[1], plain.q.weight[4:].T @ plain.k.weight[4:])
    via_product = torch.einsum("bnc,hcd,bmd->bhnm", x, product, x)
    assert torch.allclose(logits, via_product, atol=1e-5)
    reference = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([plain.q.weight, plain.k.weight, plain.v.weight]))
        reference.out_proj.weight.copy_(plain.proj.weight)
        plain.v.bias.zero_()
        plain.proj.bias.zero_()
    expected, _ = reference(x, x, x, need_weights=False)
    assert torch.allclose(plain(x), expected, atol=1e-5)


def test_qkr_quantises_the_stacked_product_with_statsq():
    torch.manual_seed(0)
    attention = QKReparamAttention(6, num_heads=3, bits=2)
    x = torch.randn(2, 4, 6)
    stacked = attention.qk_product().reshape(18, 6)
    quantized = statsq_quantize(stacked.detach(), 2).reshape(3, 6, 6)
    logits = torch.einsum("bnc,hcd,bmd->bhnm", x, quantized, x) * 2**-0.5
    v = attention.v(x).reshape(2, 4, 3, 2).transpose(1, 2)
    out = (torch.softmax(logits, -1) @ v).transpose(1, 2).reshape(2, 4, 6)
    assert torch.allclose(attention(x), attention.proj(out), atol=1e-6)
    names = [t.name for t in quantized_weights(attention)]
    assert names == ["qk", "v.weight", "proj.weight"]
    separate = QKReparamAttention(6, num_heads=3, bits=2, qk_reparam=False)
    assert [t.name for t in quantized_weights(separate)] == [
        "q.weight", "k.weight", "v.weight", "proj.weight"
    ]


def test_qkr_bad_input():
    with pytest.raises(ValueError, match="num_heads"):
        QKReparamAttention(6, num_heads=4)
    with pytest.raises(ValueError, match="bits"):
        QKReparamAttention(6, bits=0)
    with pytest.raises(ValueError, match="shape"):
        QKReparamAttention(6)(torch.randn(2, 6))


# ============================================================ prepare_qat
def test_prepare_qat_keeps_first_and_last_layer_in_full_precision():
    model = prepare_qat(MLP(4, 2, hidden_units=(5, 5, 5)), bits=2, method="lsq")
    names = [t.name for t in quantized_weights(model)]
    assert names == ["body.2.weight", "body.4.weight"]
    assert all(isinstance(t.quantizer, LSQ) for t in quantized_weights(model))
    everything = prepare_qat(MLP(4, 2, hidden_units=(5,)), keep_first_last=False)
    assert [t.name for t in quantized_weights(everything)] == ["body.0.weight", "head.weight"]
    chosen = prepare_qat(MLP(4, 2, hidden_units=(5,)), layers=["head"], method="lsq-torch")
    assert quantized_weights(chosen)[0].quantizer.implementation == "torch"


def test_prepare_qat_leaves_qkr_attention_alone():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 4)
            self.attention = QKReparamAttention(4, bits=2)
            self.mid = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.mid(self.attention(self.embed(x))))

    names = [t.name for t in quantized_weights(prepare_qat(Net(), bits=2))]
    assert names == ["attention.qk", "attention.v.weight", "attention.proj.weight", "mid.weight"]
    alone = prepare_qat(QKReparamAttention(4, bits=2), keep_first_last=False)
    assert [t.name for t in quantized_weights(alone)] == ["qk", "v.weight", "proj.weight"]


def test_prepare_qat_bad_input():
    with pytest.raises(TypeError, match="nn.Module"):
        prepare_qat("model")
    with pytest.raises(ValueError, match="bits"):
        prepare_qat(MLP(4, 2), bits=9)
    with pytest.raises(ValueError, match=r"\[2, 8\]"):
        prepare_qat(MLP(4, 2), bits=1, method="lsq")
    with pytest.raises(ValueError, match=r"\[2, 8\]"):
        StatsQ(1)
    with pytest.raises(ValueError, match="method"):
        prepare_qat(MLP(4, 2), method="pact")
    with pytest.raises(ValueError, match="no layer 'nope'"):
        prepare_qat(MLP(4, 2), layers=["nope"])
    with pytest.raises(TypeError, match="ReLU"):
        prepare_qat(MLP(4, 2), layers=["body.1"])
    model = prepare_qat(MLP(4, 2), layers=["head"])
    with pytest.raises(ValueError, match="already"):
        prepare_qat(model, layers=["head"])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: statsq_quantize(torch.ones(3), 2), ValueError, "at least 2 dimensions"),
        (lambda: statsq_quantize(torch.tensor([[1.0, float("nan")]]), 2), ValueError, "NaN"),
        (lambda: statsq_quantize(torch.ones(2, 2, dtype=torch.int64), 2), TypeError, "floating"),
        (lambda: statsq_quantize(np.ones((2, 2)), 2), TypeError, "torch.Tensor"),
        (lambda: statsq_quantize(torch.ones(2, 2), 0), ValueError, "bits"),
        (lambda: lsq_fake_quantize(torch.ones(2, 2), torch.ones(3)), ValueError, "one step size"),
        (lambda: lsq_fake_quantize(torch.ones(2, 2), torch.ones(2), implementation="x"),
         ValueError, "implementation"),
        (lambda: confident_weights(torch.zeros(2), 0.5), ValueError, "boundary_range"),
        (lambda: ConfidenceGuidedAnnealing(boundary_range=0).initialize(), ValueError,
         "boundary_range"),
        (lambda: ConfidenceGuidedAnnealing(epochs=0).initialize(), ValueError, "epochs"),
        (lambda: TrackOscillation(momentum=0).initialize(), ValueError, "momentum"),
        (lambda: TrackOscillation().start(MLP(3, 2)), ValueError, "no quantised weights"),
        (lambda: ConfidenceGuidedAnnealing().begin(MLP(3, 2)), ValueError, "no quantised"),
        (lambda: TrackOscillation().update(), RuntimeError, "start"),
    ],
)
def test_qat_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ============================================== QAT in the skorch nets
def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 2.0 * np.eye(4)[y]
    return X.astype(np.float32), y


def test_qat_callbacks_in_a_skorch_net():
    X, y = _blobs()
    torch.manual_seed(0)
    model = prepare_qat(MLP(4, 3, hidden_units=(16, 16)), bits=2)
    net = NeuralNetClassifier(
        module=model, lr=0.2, max_epochs=5, batch_size=16, random_state=0,
        callbacks=[TrackOscillation(), ConfidenceGuidedAnnealing(epochs=2)],
    ).fit(X, y)
    history = net.history
    for key in ("oscillation", "oscillation_rate", "oscillation_body.2.weight",
                "oscillation_rate_body.2.weight", "cga_frozen"):
        assert len(history[:, key]) == 5
    frozen = history[:, "cga_frozen"]
    assert frozen[:3] == [0.0, 0.0, 0.0] and all(0 < f <= 1 for f in frozen[3:])
    # cosine over the 2 annealing epochs, the optimiser's rate restored afterwards
    assert [group["lr"] for group in net.optimizer_.param_groups] == [0.2]
    # the weights stay quantised; prediction works; skorch's save_params /
    # load_params round trip (torch cannot pickle parametrised modules)
    assert parametrize.is_parametrized(net.module_.body[2])
    assert net.score(X, y) > 0.5
    params = io.BytesIO()
    net.save_params(f_params=params)
    params.seek(0)
    torch.manual_seed(1)
    clone = NeuralNetClassifier(
        module=prepare_qat(MLP(4, 3, hidden_units=(16, 16)), bits=2), classes=[0, 1, 2]
    ).initialize()
    clone.load_params(f_params=params)
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))
    # partial_fit continues the statistics; the last epochs anneal again
    ema = history[-1, "oscillation"]
    net.partial_fit(X, y, epochs=2)
    assert len(net.history) == 7 and all(f > 0 for f in net.history[-2:, "cga_frozen"])
    assert net.history[-1, "oscillation"] <= ema + 0.02


def test_cga_lr_follows_a_cosine_over_the_annealing_epochs():
    X, y = _blobs()
    torch.manual_seed(0)

    class RecordLR(TrackOscillation):
        def on_epoch_begin(self, net, **kwargs):
            net.history.record("lr_now", net.optimizer_.param_groups[0]["lr"])

    net = NeuralNetClassifier(
        module=prepare_qat(MLP(4, 3, hidden_units=(8, 8)), bits=2), lr=0.1, max_epochs=6,
        batch_size=32, random_state=0,
        callbacks=[("cga", ConfidenceGuidedAnnealing(epochs=4)), ("lr", RecordLR())],
    ).fit(X, y)
    expected = [0.1, 0.1] + [0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(net.history[:, "lr_now"], expected, atol=1e-12)


# ================================================================ rounding
def _rtn_reference(W, bits, group_size, sym):
    """auto-round quant_tensor_asym / quant_tensor_sym with v = 0, in float64 NumPy."""
    W = np.asarray(W, dtype=np.float64)
    rows, cols = W.shape
    g = cols if group_size == -1 or group_size >= cols else group_size
    pad = -cols % g
    grouped = np.pad(W, ((0, 0), (0, pad))).reshape(-1, g)
    wmin = np.minimum(grouped.min(1), 0)
    wmax = np.maximum(grouped.max(1), 0)
    if sym:
        maxq = 2 ** (bits - 1)
        s = np.where(wmax < -wmin, -wmin, -wmax) / maxq
        s = np.where(s < 0, np.minimum(s, -1e-8), np.maximum(s, 1e-8))[:, None]
        q = np.clip(np.round(grouped / s), -maxq, maxq - 1)
        out = s * q
    else:
        maxq = 2**bits - 1
        s = np.maximum((wmax - wmin) / maxq, 1e-8)[:, None]
        zp = np.round(-wmin[:, None] / s)
        q = np.clip(np.round(grouped / s) + zp, 0, maxq)
        out = s * (q - zp)
    return out.reshape(rows, -1)[:, :cols]


@pytest.mark.parametrize("sym", [False, True])
@pytest.mark.parametrize("bits, group_size", [(2, -1), (3, 4), (4, 5), (8, 16)])
def test_rtn_matches_the_auto_round_rule(bits, group_size, sym):
    # random values (no exact rounding ties, where float32 and float64 may part)
    W = _weights((3, 11), seed=5)
    W[2] = W[2].abs()  # an all-positive row: the zero point sits at 0
    expected = _rtn_reference(W.numpy(), bits, group_size, sym)
    np.testing.assert_allclose(signround_fake_quantize(W, bits, group_size, sym).numpy(),
                               expected, rtol=1e-5, atol=1e-6)


def test_rtn_by_hand():
    W = torch.tensor([[-1.0, -0.2, 0.4, 2.0]])  # s = 1, zp = 1, codes 0 1 1 3
    assert signround_fake_quantize(W, 2, -1).tolist() == [[-1.0, 0.0, 0.0, 2.0]]
    # symmetric: the larger side (2.0) maps to -2: s = -1, codes round(-W) clipped to [-2, 1]
    assert signround_fake_quantize(W, 2, -1, sym=True).tolist() == [[-1.0, -0.0, -0.0, 2.0]]


def test_default_parameters_are_round_to_nearest_bit_for_bit():
    W = _weights((6, 20))
    n_groups = 6 * 3
    rtn = signround_fake_quantize(W, 3, 8)
    same = signround_fake_quantize(
        W, 3, 8, v=torch.zeros(n_groups, 8), min_scale=torch.ones(n_groups),
        max_scale=torch.ones(n_groups),
    )
    assert torch.equal(rtn, same)


def test_signround_with_zero_iterations_is_rtn_bit_for_bit():
    torch.manual_seed(0)
    model = MLP(10, 3, hidden_units=(20,))
    X = torch.randn(40, 10)
    for sym in (False, True):
        rounding = SignRound(bits=3, group_size=4, sym=sym, iters=0).fit(model, X)
        ours = rounding.quantize(model).state_dict()
        rtn = rtn_quantize(model, bits=3, group_size=4, sym=sym).state_dict()
        assert ours.keys() == rtn.keys()
        for key in ours:
            if isinstance(ours[key], torch.Tensor):
                assert torch.equal(ours[key], rtn[key]), key
        assert all(torch.equal(p["v"], torch.zeros_like(p["v"])) for p in rounding.params_.values())


def test_learned_parameters_stay_in_their_ranges_at_every_step(monkeypatch):
    from weightstats.nn.quantization import _signround

    seen = []
    step = _signround._SignSGD.step

    def recording_step(self, closure=None):
        step(self, closure)
        seen.append([(float(p.detach().min()), float(p.detach().max())) for g in self.param_groups
                     for p in g["params"]])

    monkeypatch.setattr(_signround._SignSGD, "step", recording_step)
    torch.manual_seed(0)
    model = MLP(8, 2, hidden_units=(16,))
    X = torch.randn(64, 8)
    # a large step size pushes against the bounds
    rounding = SignRound(bits=2, group_size=4, iters=30, lr=0.2, random_state=0).fit(model, X)
    assert len(seen) == 2 * 30
    v_extremes = [bounds[0] for bounds in seen]
    assert min(lo for lo, _ in v_extremes) == -0.5 and max(hi for _, hi in v_extremes) == 0.5
    for bounds in seen:
        for lo, hi in bounds[1:]:
            assert 0.0 <= lo and hi <= 1.0
    for params in rounding.params_.values():
        assert float(params["v"].abs().max()) <= 0.5
        for key in ("min_scale", "max_scale"):
            assert 0.0 <= float(params[key].min()) and float(params[key].max()) <= 1.0


@settings(max_examples=25)
@given(
    bits=st.integers(1, 8),
    rows=st.integers(1, 5),
    cols=st.integers(1, 23),
    group_size=st.sampled_from([-1, 1, 3, 4, 8, 32]),
    sym=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_packing_then_dequantising_reproduces_the_fake_quantised_weight(
    bits, rows, cols, group_size, sym, seed
):
    generator = torch.Generator().manual_seed(seed)
    linear = nn.Linear(cols, rows)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(rows, cols, generator=generator))
    g = cols if group_size == -1 or group_size >= cols else group_size
    n_total = rows * math.ceil(cols / g)
    v = torch.rand(n_total, g, generator=generator) - 0.5
    lo = torch.rand(n_total, generator=generator)
    hi = torch.rand(n_total, generator=generator)
    expected = signround_fake_quantize(linear.weight.detach(), bits, group_size, sym, v=v,
                                       min_scale=lo, max_scale=hi)
    qlinear = QuantLinear.from_linear(linear, bits, group_size, sym, v=v, min_scale=lo,
                                      max_scale=hi)
    assert torch.equal(qlinear.weight, expected)
    assert qlinear.qweight.dtype == torch.uint8
    assert qlinear.qweight.shape == (rows, math.ceil(cols * bits / 8))


@settings(max_examples=30)
@given(
    bits=st.integers(1, 8), rows=st.integers(1, 4), n=st.integers(0, 40),
    seed=st.integers(0, 99),
)
def test_pack_unpack_round_trip(bits, rows, n, seed):
    codes = torch.randint(0, 2**bits, (rows, n), generator=torch.Generator().manual_seed(seed))
    packed = pack_codes(codes, bits)
    assert packed.shape == (rows, math.ceil(n * bits / 8))
    assert torch.equal(unpack_codes(packed, bits, n), codes.to(torch.uint8))


def test_nibble_layout_of_four_bit_codes():
    # 4 bits: code j sits in the low nibble for even j, the high nibble for odd j
    assert pack_codes(torch.tensor([[1, 2, 15]]), 4).tolist() == [[0x21, 0x0F]]
    # 3 bits: one little-endian bit stream, codes crossing byte borders
    assert pack_codes(torch.tensor([[7, 0, 5]]), 3).tolist() == [[0b01000111, 0b1]]


# ============================================================ QuantLinear
def test_quant_linear_state_dict_round_trip_and_layout_check():
    torch.manual_seed(0)
    linear = nn.Linear(20, 7)
    qlinear = QuantLinear.from_linear(linear, bits=3, group_size=8)
    fresh = QuantLinear(20, 7, bits=3, group_size=8)
    fresh.load_state_dict(qlinear.state_dict())
    x = torch.randn(5, 20)
    assert torch.equal(fresh(x), qlinear(x))
    buffer = io.BytesIO()
    torch.save(qlinear.state_dict(), buffer)
    buffer.seek(0)
    other = QuantLinear(20, 7, bits=3, group_size=8)
    other.load_state_dict(torch.load(buffer))
    assert torch.equal(other.integer_weights(), qlinear.integer_weights())
    with pytest.raises(ValueError, match="bits=3 .this layer: 4"):
        QuantLinear(20, 7, bits=4, group_size=8).load_state_dict(qlinear.state_dict(),
                                                                  strict=False)
    with pytest.raises(ValueError, match="in_features=20 .this layer: 21"):
        QuantLinear(21, 7, bits=3, group_size=8).load_state_dict(qlinear.state_dict())


def test_quant_linear_dequantize_copy_pickle_and_dtype():
    torch.manual_seed(0)
    linear = nn.Linear(9, 4)
    qlinear = QuantLinear.from_linear(linear, bits=4, group_size=-1)
    x = torch.randn(3, 9)
    dense = qlinear.dequantize()
    assert type(dense) is nn.Linear
    assert torch.equal(dense(x), qlinear(x))
    assert torch.equal(copy.deepcopy(qlinear)(x), qlinear(x))
    assert torch.equal(pickle.loads(pickle.dumps(qlinear))(x), qlinear(x))
    assert qlinear.to(torch.float64)(x.double()).dtype == torch.float64
    assert qlinear.integer_weights().max() <= 15
    assert not list(qlinear.parameters()) == []  # the bias is a parameter
    no_bias = QuantLinear.from_linear(nn.Linear(9, 4, bias=False), bits=2)
    assert no_bias.bias is None and no_bias(x).shape == (3, 4)


def test_quant_linear_bad_input():
    with pytest.raises(TypeError, match="nn.Linear"):
        QuantLinear.from_linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="bits"):
        QuantLinear(4, 2, bits=9)
    with pytest.raises(ValueError, match="group_size"):
        QuantLinear(4, 2, group_size=0)
    with pytest.raises(ValueError, match="scale_dtype"):
        QuantLinear(4, 2, scale_dtype=torch.float64)
    with pytest.raises(ValueError, match="positive"):
        QuantLinear(0, 2)
    layer = QuantLinear(4, 2, bits=2, group_size=-1)
    with pytest.raises(ValueError, match="codes must have shape"):
        layer.set_codes(torch.zeros(2, 3), torch.ones(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        layer.set_codes(torch.full((2, 4), 4), torch.ones(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="NaN"):
        layer.set_codes(torch.zeros(2, 4), torch.full((2, 1), float("inf")), torch.zeros(2, 1))


# =============================================================== SignRound
def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                          nn.Linear(24, 3))
    return model, torch.randn(200, 12, generator=torch.Generator().manual_seed(seed))


def test_signround_lowers_output_error_deterministically_and_leaves_the_model_alone():
    model, X = _model_and_data()
    state = copy.deepcopy(model.state_dict())
    first = SignRound(bits=2, group_size=8, iters=60, random_state=0).fit(model, X)
    second = SignRound(bits=2, group_size=8, iters=60, random_state=0).fit(model, X)
    for name in first.params_:
        assert torch.equal(first.params_[name]["v"], second.params_[name]["v"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    assert first.layers_ == ["0", "2", "4"] and first.blocks_ == [["0"], ["2"], ["4"]]
    assert first.n_samples_ == 128
    for losses in first.losses_.values():
        assert losses["signround"] <= losses["rtn"]
    quantized = first.quantize(model)
    assert all(isinstance(quantized[i], QuantLinear) for i in (0, 2, 4))
    assert isinstance(model[0], nn.Linear)  # not in place by default
    with torch.no_grad():
        error = lambda m: float((m(X) - model(X)).pow(2).mean())  # noqa: E731
        assert error(quantized) < error(rtn_quantize(model, bits=2, group_size=8))
    # plain module, state dict round trip into a freshly quantised copy
    target = rtn_quantize(model, bits=2, group_size=8)
    target.load_state_dict(quantized.state_dict())
    with torch.no_grad():
        assert torch.equal(target(X), quantized(X))
    assert not any(parametrize.is_parametrized(m) for m in quantized.modules())


def test_signround_options_layers_blocks_batches_and_inputs():
    model, X = _model_and_data(1)
    only = SignRound(bits=3, iters=20, layers=["2"], random_state=0).fit(model, X)
    quantized = only.quantize(model)
    assert isinstance(quantized[2], QuantLinear) and isinstance(quantized[0], nn.Linear)
    nested = nn.Sequential(nn.Sequential(model[0], model[1], model[2]), nn.ReLU(), model[4])
    block = SignRound(bits=2, iters=20, blocks=["0"], random_state=0).fit(nested, X)
    assert block.blocks_ == [["0.0", "0.2"], ["2"]] and list(block.losses_) == ["0", "2"]
    assert block.losses_["0"]["signround"] <= block.losses_["0"]["rtn"]
    mini = SignRound(bits=2, iters=20, batch_size=16, n_samples=64, random_state=0)
    # arrays work; with mini-batches of 16 the best step on its batch can be
    # worse than round-to-nearest on all calibration rows: a warning says so
    with pytest.warns(ConvergenceWarning, match="larger calibration error"):
        mini.fit(model, X.numpy())
    assert mini.n_samples_ == 64
    fp_inputs = SignRound(bits=2, iters=20, quantized_inputs=False, random_state=0).fit(model, X)
    assert fp_inputs.losses_["0"] == pytest.approx(
        SignRound(bits=2, iters=20, random_state=0).fit(model, X).losses_["0"]
    )
    no_range = SignRound(bits=2, iters=10, minmax_tuning=False).fit(model, X)
    assert set(no_range.params_["0"]) == {"v"}
    half = SignRound(bits=4, iters=10, scale_dtype=torch.float16).fit(model, X).quantize(model)
    assert half[0].scales.dtype == torch.float16


def test_signround_on_a_fitted_skorch_net():
    X, y = _blobs(200)
    net = NeuralNetClassifier(module__hidden_units=(16,), lr=0.2, max_epochs=10,
                              random_state=0).fit(X, y)
    rounding = SignRound(bits=3, iters=30, random_state=0).fit(net, X)
    quantized = rounding.quantize(net)
    assert isinstance(quantized.module_.head, QuantLinear)
    assert isinstance(net.module_.head, nn.Linear)
    assert quantized.score(X, y) >= net.score(X, y) - 0.05
    same = rtn_quantize(net, bits=8, inplace=True)
    assert same is net and isinstance(net.module_.body[0], QuantLinear)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda m, X: SignRound(bits=0).fit(m, X), ValueError, "bits"),
        (lambda m, X: SignRound(group_size=0).fit(m, X), ValueError, "group_size"),
        (lambda m, X: SignRound(iters=-1).fit(m, X), ValueError, "iters"),
        (lambda m, X: SignRound(n_samples=0).fit(m, X), ValueError, "n_samples"),
        (lambda m, X: SignRound(lr=-1.0).fit(m, X), ValueError, "lr"),
        (lambda m, X: SignRound(scale_dtype="fp8").fit(m, X), ValueError, "scale_dtype"),
        (lambda m, X: SignRound().fit(m, X[:0]), ValueError, "at least one sample"),
        (lambda m, X: SignRound().fit(m, X * float("nan")), ValueError, "NaN"),
        (lambda m, X: SignRound().fit(m, "data"), TypeError, "X_calib"),
        (lambda m, X: SignRound().fit("model", X), TypeError, "nn.Module"),
        (lambda m, X: SignRound(layers=["1"]).fit(m, X), TypeError, "ReLU"),
        (lambda m, X: SignRound(layers=["9"]).fit(m, X), ValueError, "no layer '9'"),
        (lambda m, X: SignRound(blocks=["9"]).fit(m, X), ValueError, "no block"),
        (lambda m, X: SignRound().quantize(m), NotFittedError, "fit"),
        (lambda m, X: SignRound().fit(nn.ReLU(), X), ValueError, "no nn.Linear"),
        (lambda m, X: SignRound(iters=2).fit(m, X).quantize(nn.Sequential(nn.Linear(3, 3))),
         ValueError, "fitted on shape"),
        (lambda m, X: SignRound(iters=2).fit(m, X).quantize(nn.Sequential(nn.Linear(12, 24))),
         ValueError, "no nn.Linear layer '2'"),
        (lambda m, X: rtn_quantize(m, bits=9), ValueError, "bits"),
        (lambda m, X: SignRound(iters=2).fit(m, X * 1e30), ValueError, "non-finite"),
    ],
)
def test_signround_bad_input(make, error, match):
    model, X = _model_and_data()
    with pytest.raises(error, match=match):
        make(model, X)


def test_signround_refuses_parametrised_and_reshaped_layers():
    model, X = _model_and_data()
    rounding = SignRound(iters=2).fit(model, X)
    other = copy.deepcopy(model)
    other[2] = nn.Linear(12, 24)
    with pytest.raises(ValueError, match="fitted on shape"):
        rounding.quantize(other)
    prepare_qat(model, layers=["2"])
    with pytest.raises(ValueError, match="parametrisation"):
        SignRound().fit(model, X)


@pytest.mark.parametrize("device", DEVICES)
def test_quantization_runs_on_the_model_device(device):
    model, X = _model_and_data()
    model, X = model.to(device), X.to(device)
    quantized = SignRound(bits=3, iters=5).fit(model, X).quantize(model)
    assert quantized[0].qweight.device.type == device
    with torch.no_grad():
        assert quantized(X).device.type == device
    qat = prepare_qat(MLP(12, 3, hidden_units=(8, 8)).to(device), bits=2)
    tracker = TrackOscillation().start(qat)
    optimizer = torch.optim.SGD(qat.parameters(), lr=0.1)
    target = torch.zeros(len(X), dtype=torch.long, device=device)
    nn.functional.cross_entropy(qat(X), target).backward()
    ConfidenceGuidedAnnealing().step(qat, optimizer)
    tracker.update()
    attention = QKReparamAttention(8, 2).to(device)
    assert attention(torch.randn(2, 3, 8, device=device)).shape == (2, 3, 8)


# ================================================= cross-check with auto-round
GOLDENS = Path(__file__).parent / "results" / "signround_autoround_goldens.npz"


@pytest.mark.parametrize("sym", ["asym", "sym"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_rounding_matches_stored_auto_round_outputs(bits, sym):
    """auto-round's quant_tensor outputs, stored by tests/results/make_signround_goldens.py."""
    gold = np.load(GOLDENS)
    W = torch.as_tensor(gold["W"])
    ours = signround_fake_quantize(W, bits, 16, sym == "sym")
    np.testing.assert_array_equal(ours.numpy(), gold[f"rtn_{sym}_{bits}"])
    tuned = signround_fake_quantize(
        W, bits, 16, sym == "sym", v=torch.as_tensor(gold["v"]),
        min_scale=torch.as_tensor(gold["min_scale"]), max_scale=torch.as_tensor(gold["max_scale"]),
    )
    np.testing.assert_array_equal(tuned.numpy(), gold[f"tuned_{sym}_{bits}"])


def test_signround_learns_the_rounding_auto_round_learns():
    """auto-round's WrapperLinear + SignSGD on a layer, stored by the same script."""
    gold = np.load(GOLDENS)
    layer = nn.Linear(24, 6)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(gold["layer_weight"]))
        layer.bias.copy_(torch.as_tensor(gold["layer_bias"]))
    X = torch.as_tensor(gold["X"])
    ours = SignRound(bits=2, group_size=8, iters=100, random_state=0).fit(layer, X)
    # Identical where the goldens were made; a CPU with other matmul kernels
    # may flip the sign of a near-zero gradient entry now and then.
    for key, stored in (("v", "value"), ("min_scale", "min_scale"), ("max_scale", "max_scale")):
        same = ours.params_[""][key].numpy() == gold[f"learned_{stored}"]
        assert same.mean() >= 0.99, (key, same.mean())
    assert ours.losses_[""]["signround"] == pytest.approx(float(gold["learned_loss"]), rel=1e-3)


@pytest.mark.requires("auto_round")
@pytest.mark.parametrize("sym", [False, True])
def test_rounding_matches_auto_round_quant_tensor(sym):
    from auto_round.data_type.int import quant_tensor_asym, quant_tensor_sym

    quant = quant_tensor_sym if sym else quant_tensor_asym
    generator = torch.Generator().manual_seed(0)
    for shape, group_size in [((16, 64), -1), ((16, 100), 32), ((8, 128), 128), ((4, 20), 8)]:
        for bits in (2, 3, 4, 8):
            W = torch.randn(shape, generator=generator)
            for scale_dtype, thresh in ((torch.float32, 1e-8), (torch.float16, 1e-5)):
                theirs = quant(W, bits=bits, group_size=group_size, v=0, min_scale=1.0,
                               max_scale=1.0, scale_dtype=scale_dtype, q_scale_thresh=thresh)[0]
                ours = signround_fake_quantize(W, bits, group_size, sym, scale_dtype=scale_dtype)
                assert torch.equal(theirs, ours), (shape, group_size, bits, scale_dtype)
            g = shape[1] if group_size == -1 or group_size >= shape[1] else group_size
            n_total = shape[0] * math.ceil(shape[1] / g)
            v = torch.rand(n_total, g, generator=generator) - 0.5
            lo = torch.rand(n_total, generator=generator)
            hi = torch.rand(n_total, generator=generator)
            theirs = quant(W, bits=bits, group_size=group_size, v=v, min_scale=lo, max_scale=hi,
                           scale_dtype=torch.float32, q_scale_thresh=1e-8)[0]
            ours = signround_fake_quantize(W, bits, group_size, sym, v=v, min_scale=lo,
                                           max_scale=hi)
            assert torch.equal(theirs, ours)


@pytest.mark.requires("auto_round")
def test_signround_matches_auto_round_wrapper_and_sign_sgd_on_a_layer():
    from benchmarks.nn_quantization import auto_round_layer

    torch.manual_seed(0)
    layer = nn.Linear(128, 64)
    X = torch.randn(128, 128, generator=torch.Generator().manual_seed(1))
    for bits in (2, 4):
        theirs, their_loss, _ = auto_round_layer(layer, X, bits=bits, group_size=32, iters=200)
        ours = SignRound(bits=bits, group_size=32, random_state=0).fit(layer, X)
        assert torch.equal(ours.params_[""]["v"], theirs["value"])
        assert torch.equal(ours.params_[""]["min_scale"], theirs["min_scale"].clamp(0, 1))
        assert ours.losses_[""]["signround"] == pytest.approx(their_loss, rel=1e-6)


# ================================================================== slow
@pytest.mark.slow
def test_ofq_experiment_on_digits():
    """2-bit QAT of a digits MLP, three seeds (full table: the user guide).

    Asserted: with StatsQ, CGA stops the oscillation (no weight oscillates
    in its last epochs, on every seed; plain annealing with the same
    learning rates leaves some), and the accuracy after CGA is on average
    at least the accuracy before it (per seed within 3 of the 719 test
    digits). With LSQ the learned scale keeps moving the boundaries of
    frozen weights: CGA lowers the oscillation but not to zero. Not
    asserted: LSQ oscillating more than StatsQ, which does not reproduce at
    this scale (see the user guide).
    """
    runs = [experiments.ofq_digits(seed) for seed in range(3)]
    for run in runs:
        statsq, lsq = run["statsq"], run["lsq"]
        assert statsq["cga_rate"] <= 0.01 * statsq["rate"]
        assert statsq["cga_rate"] < statsq["anneal_rate"]
        assert lsq["cga_rate"] < 0.5 * lsq["rate"]
        for row in (statsq, lsq):
            assert row["acc"] > 0.9
            assert row["cga_acc"] >= row["acc"] - 3.5 / 719
    for method in ("lsq", "statsq"):
        before = np.mean([run[method]["acc"] for run in runs])
        after = np.mean([run[method]["cga_acc"] for run in runs])
        assert after >= before - 1e-9


@pytest.mark.slow
def test_qkr_experiment_lowers_query_key_oscillation():
    for seed in range(3):
        run = experiments.qkr_recall(seed)
        assert run["qkr"]["qk_rate"] < run["separate"]["qk_rate"]
        assert run["qkr"]["acc"] >= run["separate"]["acc"] - 0.02


@pytest.mark.slow
@pytest.mark.parametrize("task", ["digits", "friedman"])
def test_signround_experiment_against_rtn(task):
    runs = [experiments.signround_vs_rtn(task, seed) for seed in range(3)]
    for bits in (2, 3, 4):
        rows = [run[bits] for run in runs]
        # layers after the first: output MSE at least 3x below round-to-nearest
        ratios = np.array([row["ratio"] for row in rows])
        assert np.all(np.exp(np.log(ratios[:, 1:]).mean(axis=0)) >= 3.0)
        # the first layer still gains, if less (it sees raw features)
        assert np.all(ratios[:, 0] > 1.0)
        rtn = np.mean([row["rtn"] for row in rows])
        ours = np.mean([row["signround"] for row in rows])
        assert ours >= rtn - 0.005
    assert np.mean([run[2]["signround"] - run[2]["rtn"] for run in runs]) > 0.01
