"""weightstats.nn.peft: Bone/Bat, LoRA, PHM/Compacter adapters and the weight compander.

Exact rules on hand-made tensors against independent computations written
here (explicit block loops, ``torch.kron`` sums, ``gradcheck``); peft's MiSS
layer as the reference for Bone and Bat when peft is installed; adapters and
the compander inside the skorch-style nets; slow experiments on digits whose
full multi-seed tables come from ``docs/examples/plot_nn_peft.py`` and
``docs/examples/plot_nn_weight_compander.py``.
"""

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402

from tests.strategies import finite_floats  # noqa: E402
from weightstats.nn import (  # noqa: E402
    MLP,
    AdapterTuning,
    BoneLinear,
    BottleneckAdapter,
    CompacterAdapter,
    Compander,
    LoRALinear,
    NeuralNetClassifier,
    NeuralNetRegressor,
    PHMLinear,
    WeightCompanding,
    adapter_summary,
    add_adapters,
    merge_adapters,
    phm_rule,
    remove_weight_compander,
    unmerge_adapters,
    weight_compander,
)

pytestmark = pytest.mark.requires("torch", "skorch")


def _linear(n_in, n_out, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out).to(dtype)


def _randomise(layer, std=0.1, seed=1):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in layer.parameters():
            if param.requires_grad:
                param.copy_(std * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return layer


# ==========================================================================
# Bone and Bat: the rules


def _bone_delta_by_loops(block, n_in):
    """dW[:, g*r + k] = B[k, :] for every input group g (cut at n_in)."""
    r, n_out = block.shape
    delta = torch.zeros(n_out, n_in, dtype=block.dtype)
    for column in range(n_in):
        delta[:, column] = block[column % r]
    return delta


def _bat_delta_by_loops(weight, blocks):
    """dW_ij = W_ij B_i + B_i for every r x r block of W."""
    n_row_blocks, r, _ = blocks.shape
    delta = torch.zeros_like(weight)
    for i in range(n_row_blocks):
        for j in range(weight.shape[1] // r):
            rows, cols = slice(i * r, (i + 1) * r), slice(j * r, (j + 1) * r)
            delta[rows, cols] = weight[rows, cols] @ blocks[i] + blocks[i]
    return delta


@pytest.mark.parametrize("variant, n_in, n_out, r", [("bone", 10, 6, 4), ("bone", 12, 5, 4),
                                                     ("bat", 12, 8, 4), ("bat", 6, 9, 3)])
def test_zero_blocks_leave_the_output_unchanged(variant, n_in, n_out, r):
    base = _linear(n_in, n_out)
    layer = BoneLinear(copy.deepcopy(base), r=r, variant=variant)
    x = torch.randn(7, n_in)
    assert torch.equal(layer(x), base(x))
    expected_shape = (r, n_out) if variant == "bone" else (n_out // r, r, r)
    assert tuple(layer.block.shape) == expected_shape
    assert [name for name, p in layer.named_parameters() if p.requires_grad] == ["block"]


@pytest.mark.parametrize("n_in", [12, 10])  # 10: the last input group is padded
def test_bone_output_is_the_base_plus_the_tiled_block(n_in):
    layer = _randomise(BoneLinear(_linear(n_in, 5), r=4))
    x = torch.randn(6, n_in)
    delta = _bone_delta_by_loops(layer.block.detach(), n_in)
    expected = x @ (layer.base.weight + delta).T + layer.base.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(layer.delta_weight(), delta, atol=1e-7, rtol=0)


def test_bat_output_is_the_weight_guided_block_update():
    layer = _randomise(BoneLinear(_linear(12, 8), r=4, variant="bat"))
    x = torch.randn(6, 12)
    W = layer.base.weight.detach()
    delta = _bat_delta_by_loops(W, layer.block.detach())
    expected = x @ (W + delta).T + layer.base.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(layer.delta_weight(), delta, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda base: BoneLinear(base, r=8, variant="bone"),
    lambda base: BoneLinear(base, r=8, variant="bat"),
    lambda base: LoRALinear(base, r=4, alpha=8),
])
def test_merge_matches_unmerged_output_and_unmerge_restores_the_weight(make):
    base = _linear(32, 24)
    original = base.weight.detach().clone()
    layer = _randomise(make(base), std=0.2)
    x = torch.randn(9, 32)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)
    layer.merge()  # idempotent
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight, original, atol=1e-5, rtol=0)
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)


@given(seed=st.integers(0, 2**16), scale=st.floats(0.01, 0.3))
def test_bat_unmerge_inverts_merge_for_any_well_conditioned_blocks(seed, scale):
    layer = _randomise(BoneLinear(_linear(16, 8, seed=seed), r=4, variant="bat"), std=scale,
                       seed=seed)
    original = layer.base.weight.detach().clone()
    layer.merge().unmerge()
    torch.testing.assert_close(layer.base.weight, original, atol=1e-5, rtol=0)


def test_bat_unmerge_of_a_singular_block_raises_and_ill_conditioning_warns():
    layer = BoneLinear(_linear(4, 4), r=2, variant="bat")
    with torch.no_grad():
        layer.block[0] = -torch.eye(2)  # I + B_0 = 0
    layer.merge()
    with pytest.raises(ValueError, match="singular"):
        layer.unmerge()
    layer = BoneLinear(_linear(4, 4), r=2, variant="bat")
    with torch.no_grad():
        layer.block[0] = torch.tensor([[-1.0 + 1e-4, 0.0], [0.0, 0.0]])
    layer.merge()
    with pytest.warns(RuntimeWarning, match=r"cond\(I \+ B_i\) reaches 1\.0e\+04"):
        layer.unmerge()


def test_lora_update_is_the_scaled_low_rank_product():
    layer = _randomise(LoRALinear(_linear(10, 6), r=3, alpha=6.0))
    x = torch.randn(4, 10)
    delta = 2.0 * layer.lora_B.detach() @ layer.lora_A.detach()
    torch.testing.assert_close(layer(x), x @ (layer.base.weight + delta).T + layer.base.bias)
    torch.testing.assert_close(layer.delta_weight(), delta)


def test_merged_state_survives_the_state_dict():
    model = add_adapters(MLP(8, 3, hidden_units=(16,)), "bat", ["body.0"], r=4)
    _randomise(model.body[0])
    x = torch.randn(5, 8)
    y = model(x)
    merge_adapters(model)
    twin = add_adapters(MLP(8, 3, hidden_units=(16,)), "bat", ["body.0"], r=4)
    twin.load_state_dict(model.state_dict())
    assert twin.body[0].merged
    torch.testing.assert_close(twin(x), y, atol=1e-6, rtol=0)
    unmerge_adapters(twin)
    torch.testing.assert_close(twin(x), y, atol=1e-5, rtol=0)


def test_adapter_layers_reject_bad_input():
    with pytest.raises(TypeError, match="adapts torch.nn.Linear"):
        BoneLinear(nn.Conv1d(3, 3, 1))
    with pytest.raises(ValueError, match="r must divide"):
        BoneLinear(nn.Linear(12, 10), r=4, variant="bat")
    with pytest.raises(ValueError, match="exceeds the layer's in_features"):
        BoneLinear(nn.Linear(4, 10), r=8)
    with pytest.raises(ValueError, match="variant"):
        BoneLinear(nn.Linear(4, 4), r=2, variant="bit")
    with pytest.raises(ValueError, match="positive integer"):
        LoRALinear(nn.Linear(4, 4), r=0)
    bad = nn.Linear(4, 4)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        LoRALinear(bad)
    layer = BoneLinear(nn.Linear(4, 4), r=2)
    with torch.no_grad():
        layer.block[0, 0] = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        layer.merge()
    assert not layer.merged and torch.isfinite(layer.base.weight).all()


# ==========================================================================
# PHM layers and Compacter


@pytest.mark.parametrize("n, n_in, n_out, rank", [(4, 16, 8, 1), (2, 6, 10, 3), (4, 8, 8, None)])
def test_phm_weight_is_the_explicit_sum_of_kronecker_products(n, n_in, n_out, rank):
    torch.manual_seed(0)
    layer = PHMLinear(n_in, n_out, n=n, rank=rank)
    with torch.no_grad():
        layer.bias.normal_()
    A = layer.rule.detach()
    W = layer.W.detach() if rank is None else layer.W_left.detach() @ layer.W_right.detach()
    H = sum(torch.kron(A[i], W[i]) for i in range(n))
    torch.testing.assert_close(layer.weight, H, atol=1e-7, rtol=1e-6)
    x = torch.randn(3, n_in)
    torch.testing.assert_close(layer(x), x @ H + layer.bias, atol=1e-6, rtol=1e-6)
    n_params = sum(p.numel() for p in layer.parameters())
    core = n * (n_in // n + n_out // n) * rank if rank else n_in * n_out // n
    assert n_params == n**3 + core + n_out


def test_phm_rule_sharing_and_fixed_rules():
    rule = phm_rule(4)
    first, second = PHMLinear(8, 8, rule=rule), PHMLinear(8, 4, rule=rule)
    assert first.rule is rule and second.rule is rule
    both = nn.Sequential(first, second)
    assert sum(p.numel() for p in both.parameters()) == 4**3 + 16 + 8 + 12 + 4
    fixed = PHMLinear(8, 8, rule=torch.eye(4).expand(4, 4, 4).clone())
    assert "rule" in dict(fixed.named_buffers())
    assert "rule" not in dict(fixed.named_parameters())
    with pytest.raises(ValueError, match="divisible by n"):
        PHMLinear(10, 8, n=4)
    with pytest.raises(ValueError, match=r"shape \(4, 4, 4\)"):
        PHMLinear(8, 8, rule=torch.zeros(2, 2, 2))


def test_compacter_adapter_rule_and_parameter_count():
    torch.manual_seed(0)
    adapter = CompacterAdapter(32, reduction=4, n=4)
    h = torch.randn(5, 32)
    down, up = adapter.down, adapter.up
    expected = h + (torch.nn.functional.gelu(h @ down.weight + down.bias, approximate="tanh")
                    @ up.weight + up.bias)
    torch.testing.assert_close(adapter(h), expected)
    assert down.rule is up.rule
    # one rule + down (rank*(32+8) + 8) + up (rank*(8+32) + 32)
    assert sum(p.numel() for p in adapter.parameters()) == 64 + 48 + 72
    with pytest.raises(ValueError, match="bottleneck"):
        CompacterAdapter(32, reduction=16, n=4)  # bottleneck 2 < n


def test_compacter_shares_one_rule_across_layers_and_is_ten_times_smaller():
    model = add_adapters(MLP(64, 10, hidden_units=(128, 128)), "compacter",
                         ["body.0", "body.2"], reduction=8)
    rules = {id(m.rule) for m in model.modules() if isinstance(m, PHMLinear)}
    assert len(rules) == 1
    plain = add_adapters(MLP(64, 10, hidden_units=(128, 128)), "adapter",
                         ["body.0", "body.2"], reduction=8)
    compact, dense = adapter_summary(model).n_trainable, adapter_summary(plain).n_trainable
    assert (compact, dense) == (928, 8480)
    assert 8 < dense / compact < 10


def test_bottleneck_adapter_starts_as_the_identity():
    adapter = BottleneckAdapter(16, reduction=4)
    h = torch.randn(3, 16)
    assert torch.equal(adapter(h), h)


# ==========================================================================
# Weight compander: the function


@given(
    values=st.lists(finite_floats(-50, 50), min_size=2, max_size=20),
    bound=st.floats(0.05, 5.0),
    gain=st.floats(0.2, 10.0),
)
def test_compander_is_odd_monotone_and_bounded(values, bound, gain):
    f = Compander(bound, gain, learnable=False, dtype=torch.float64)
    v = torch.tensor(sorted(values), dtype=torch.float64)
    w = f(v)
    torch.testing.assert_close(f(-v), -w, atol=1e-15, rtol=0)
    assert torch.all(w.diff() >= 0)
    a = f.bound.item()
    assert a == pytest.approx(bound, rel=1e-15)
    assert torch.all(w.abs() <= a)
    # strictly below the bound wherever tanh has not rounded to one
    assert torch.all(w.abs()[v.abs() * gain / bound < 15] < a)


def test_compander_slope_is_the_gain_at_zero_and_decays_towards_the_bound():
    f = Compander(0.5, 3.0, learnable=False, dtype=torch.float64)
    v = torch.tensor([0.0, 0.05, 0.2, 1.0], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(f(v).sum(), v)
    assert slope[0].item() == pytest.approx(3.0)
    w = f(v).detach()
    torch.testing.assert_close(slope, 3.0 * (1 - (w / 0.5) ** 2))
    assert torch.all(slope.diff() < 0)


def test_compander_gradient_passes_gradcheck_in_float64():
    f = Compander(0.7, 2.5, learnable=True, dtype=torch.float64)
    v = torch.linspace(-2, 2, 11, dtype=torch.float64).requires_grad_(True)

    def companded(raw, log_bound, log_gain):  # the module's own forward, scalars as inputs
        params = {"log_bound": log_bound, "log_gain": log_gain}
        return torch.func.functional_call(f, params, (raw,))

    scalars = [f.log_bound.detach().clone().requires_grad_(True),
               f.log_gain.detach().clone().requires_grad_(True)]
    assert torch.autograd.gradcheck(companded, (v, *scalars))
    assert torch.autograd.gradgradcheck(companded, (v, *scalars))
    # against the derivatives by hand: u = g v / a, w = a tanh(u)
    a, g = 0.7, 2.5
    u = g * v.detach() / a
    sech2 = 1 - torch.tanh(u) ** 2
    w = f(v)
    dv, = torch.autograd.grad(w.sum(), v, retain_graph=True)
    torch.testing.assert_close(dv, g * sech2)
    d_log_a, d_log_g = torch.autograd.grad(w.sum(), [f.log_bound, f.log_gain])
    torch.testing.assert_close(d_log_a, (a * (torch.tanh(u) - u * sech2)).sum())
    torch.testing.assert_close(d_log_g, (g * v.detach() * sech2).sum())


def test_compander_right_inverse_round_trips_and_checks_the_bound():
    f = Compander(0.4, 2.0, learnable=False, dtype=torch.float64)
    w = torch.tensor([[-0.39, 0.0], [0.1, 0.3]], dtype=torch.float64)
    torch.testing.assert_close(f(f.right_inverse(w)), w)
    with pytest.raises(ValueError, match="must exceed every"):
        f.right_inverse(torch.tensor([0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        f.right_inverse(torch.tensor([float("nan")], dtype=torch.float64))
    with pytest.raises(ValueError, match="positive finite"):
        Compander(bound=0.0)
    with pytest.raises(ValueError, match="positive finite"):
        Compander(gain=float("inf"))


def test_weight_compander_keeps_the_function_and_registers_scalars_per_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    x = torch.randn(5, 2, 4)
    before = model(x)
    largest = {i: model[i].weight.abs().max().item() for i in (0, 3)}
    weight_compander(model, gain=3.0)
    torch.testing.assert_close(model(x), before, atol=1e-6, rtol=1e-5)
    for index in (0, 3):
        compander = model[index].parametrizations.weight[0]
        assert compander.log_bound.shape == () and compander.log_gain.shape == ()
        assert compander.bound.item() == pytest.approx(2 * largest[index])
    names = {name for name, _ in model.named_parameters()}
    assert {"0.parametrizations.weight.0.log_bound", "3.parametrizations.weight.0.log_gain",
            "3.parametrizations.weight.original"} <= names
    fixed = weight_compander(nn.Sequential(nn.Linear(3, 3)), learnable=False, bound=10.0)
    assert {name for name, _ in fixed.named_parameters()} == {
        "0.bias", "0.parametrizations.weight.original"}
    removed = remove_weight_compander(model)
    assert isinstance(removed[3].weight, nn.Parameter)
    torch.testing.assert_close(removed(x), before, atol=1e-6, rtol=1e-5)


def test_weight_compander_default_bound_is_twice_the_largest_weight():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(-0.25, 0.2, 12).reshape(3, 4))
    weight_compander(layer)
    assert layer.parametrizations.weight[0].bound.item() == pytest.approx(0.5)


def test_weight_compander_rejects_bad_input():
    with pytest.raises(ValueError, match="does not exceed the largest"):
        weight_compander(nn.Linear(4, 4), bound=1e-3)
    with pytest.raises(TypeError, match="is a ReLU"):
        weight_compander(nn.Sequential(nn.ReLU()), target_modules=["0"])
    with pytest.raises(ValueError, match="matches no layer"):
        weight_compander(nn.Sequential(nn.ReLU()))
    zero = nn.Linear(3, 3)
    nn.init.zeros_(zero.weight)
    with pytest.raises(ValueError, match="all zeros"):
        weight_compander(zero)
    model = weight_compander(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="already parametrised"):
        weight_compander(model)


# ==========================================================================
# add_adapters / merge_adapters on plain modules


@pytest.mark.parametrize("kind, params", [("bone", {"r": 4}), ("bat", {"r": 4}),
                                          ("lora", {"r": 2}), ("compacter", {"reduction": 4}),
                                          ("adapter", {"reduction": 4})])
def test_add_adapters_freezes_everything_but_the_adapters(kind, params):
    torch.manual_seed(0)
    model = MLP(16, 3, hidden_units=(16, 16))
    x = torch.randn(4, 16)
    before = model(x)
    model = add_adapters(model, kind, r"body\.[02]", **params)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(("body.0" in n or "body.2" in n) and "base" not in n
                             and not n.endswith(".0.weight") and not n.endswith(".0.bias")
                             for n in trainable)
    summary = adapter_summary(model)
    assert list(summary.layers) == (["body.0", "body.2"] if kind in ("bone", "bat", "lora")
                                    else ["body.0.1", "body.2.1"])
    assert summary.n_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    atol = 1e-2 if kind == "compacter" else 0.0  # Compacter starts near, not at, zero
    torch.testing.assert_close(model(x), before, atol=atol, rtol=0)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_add_adapters_target_selection_and_trainable_modules():
    model = add_adapters(MLP(8, 3, hidden_units=(8,)), "lora", None, r=2)
    assert set(adapter_summary(model).layers) == {"body.0", "head"}
    model = add_adapters(MLP(8, 3, hidden_units=(8,)), "lora", ["0"], r=2,
                         trainable_modules=["head"])
    assert set(adapter_summary(model).layers) == {"body.0"}
    assert model.head.weight.requires_grad and not model.body[0].base.weight.requires_grad
    # a second call keeps the first adapters trainable
    model = add_adapters(model, "bone", ["head"], r=2)
    assert model.body[0].lora_A.requires_grad and model.head.block.requires_grad
    assert not model.head.base.weight.requires_grad
    # the module itself as the only target
    wrapped = add_adapters(nn.Linear(4, 4), "bone", r=2)
    assert isinstance(wrapped, BoneLinear)


def test_add_adapters_rejects_bad_input():
    model = MLP(8, 3, hidden_units=(8,))
    with pytest.raises(ValueError, match="kind must be one of"):
        add_adapters(model, "dora")
    with pytest.raises(TypeError, match="unknown"):
        add_adapters(model, "bone", r=2, alpha=3)
    with pytest.raises(TypeError, match="is a ReLU"):
        add_adapters(model, "lora", ["body.1"])
    with pytest.raises(ValueError, match="matches no layer"):
        add_adapters(model, "lora", ["fc9"])
    with pytest.raises(ValueError, match="r must divide"):
        add_adapters(model, "bat", r=4)  # the head has 3 outputs
    assert type(model.body[0]) is nn.Linear  # nothing was changed
    with pytest.raises(TypeError, match="target_modules"):
        add_adapters(model, "lora", 3)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        add_adapters("model")
    adapted = add_adapters(model, "lora", ["head"], r=2)
    with pytest.raises(ValueError, match="already has an adapter"):
        add_adapters(adapted, "lora", ["head"])
    with pytest.raises(ValueError, match="already inside an adapter"):
        add_adapters(adapted, "lora", ["head.base"])


def test_merge_adapters_unload_and_nonlinear_adapters():
    torch.manual_seed(0)
    model = add_adapters(MLP(8, 3, hidden_units=(8, 8)), "bat", ["body.0", "body.2"], r=4)
    model = add_adapters(model, "compacter", ["head"], reduction=1, n=1)
    for sub in model.modules():
        if isinstance(sub, BoneLinear):
            _randomise(sub)
    x = torch.randn(4, 8)
    y = model(x)
    with pytest.warns(UserWarning, match="cannot be merged"):
        merge_adapters(model)
    assert model.body[0].merged and model.body[2].merged
    torch.testing.assert_close(model(x), y, atol=1e-6, rtol=0)
    with pytest.warns(UserWarning, match="cannot be merged"):
        plain = merge_adapters(model, unload=True)
    assert type(plain.body[0]) is nn.Linear and type(plain.body[2]) is nn.Linear
    torch.testing.assert_close(plain(x), y, atol=1e-6, rtol=0)


# ==========================================================================
# Cross-check with peft (MiSS: init_weights=True is Bone, "bat" is Bat)


@pytest.mark.requires("peft")
@pytest.mark.parametrize("variant, sizes, r", [("bone", (20, 12, 6), 4), ("bone", (16, 8, 8), 8),
                                               ("bat", (16, 24, 8), 8)])
def test_bone_and_bat_equal_peft_miss_outputs_gradients_and_merges(variant, sizes, r):
    from peft import MissConfig, inject_adapter_in_model

    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.Tanh(),
                         nn.Linear(sizes[1], sizes[2])).double()
    ours = add_adapters(copy.deepcopy(base), variant, ["0", "2"], r=r)
    config = MissConfig(r=r, init_weights=True if variant == "bone" else "bat",
                        target_modules=["0", "2"])
    theirs = inject_adapter_in_model(config, copy.deepcopy(base))
    with torch.no_grad():
        for name in ("0", "2"):
            block = 0.2 * torch.randn_like(ours.get_submodule(name).block)
            ours.get_submodule(name).block.copy_(block)
            theirs.get_submodule(name).miss_block["default"].copy_(block)
    x_ours = torch.randn(7, sizes[0], dtype=torch.float64, requires_grad=True)
    x_theirs = x_ours.detach().clone().requires_grad_(True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    torch.testing.assert_close(y_ours, y_theirs, atol=1e-6, rtol=0)
    (y_ours**2).sum().backward()
    (y_theirs**2).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, atol=1e-6, rtol=0)
    for name in ("0", "2"):
        torch.testing.assert_close(ours.get_submodule(name).block.grad,
                                   theirs.get_submodule(name).miss_block["default"].grad,
                                   atol=1e-6, rtol=0)
        ours.get_submodule(name).merge()
        theirs.get_submodule(name).merge()
        torch.testing.assert_close(ours.get_submodule(name).base.weight,
                                   theirs.get_submodule(name).base_layer.weight,
                                   atol=1e-6, rtol=0)


@pytest.mark.requires("peft")
def test_lora_equals_peft_lora():
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 4)).double()
    ours = add_adapters(copy.deepcopy(base), "lora", ["0", "2"], r=2, alpha=6)
    theirs = inject_adapter_in_model(
        LoraConfig(r=2, lora_alpha=6, target_modules=["0", "2"]), copy.deepcopy(base))
    with torch.no_grad():
        for name in ("0", "2"):
            mine, peer = ours.get_submodule(name), theirs.get_submodule(name)
            mine.lora_B.normal_()
            peer.lora_A["default"].weight.copy_(mine.lora_A)
            peer.lora_B["default"].weight.copy_(mine.lora_B)
    x = torch.randn(5, 10, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-12, rtol=0)


# ==========================================================================
# In the skorch-style nets


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16 - 0.5).astype(np.float32)  # centred: inverting the pixels negates x
    return train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def pretrained(digits):
    X_train, _, y_train, _ = digits
    net = NeuralNetClassifier(module__hidden_units=(64,), optimizer=torch.optim.Adam, lr=3e-3,
                              max_epochs=10, batch_size=64, random_state=0)
    return net.fit(X_train, y_train).module_


def test_adapter_tuning_trains_only_adapters_of_a_copy(digits, pretrained):
    X_train, X_test, y_train, y_test = digits
    state = copy.deepcopy(pretrained.state_dict())
    tuning = AdapterTuning("bat", ["body.0"], adapter_params={"r": 8}, trainable_modules=["head"])
    net = NeuralNetClassifier(pretrained, optimizer=torch.optim.Adam, lr=3e-3, max_epochs=3,
                              batch_size=64, random_state=0, callbacks=[tuning])
    net.fit(-X_train, y_train)
    # the pretrained module is untouched, the frozen base weight did not move
    assert all(torch.equal(state[k], v) for k, v in pretrained.state_dict().items())
    layer = net.module_.body[0]
    assert isinstance(layer, BoneLinear) and layer.block.abs().sum() > 0
    torch.testing.assert_close(layer.base.weight, state["body.0.weight"], rtol=0, atol=0)
    assert not torch.equal(net.module_.head.weight, state["head.weight"])
    # refitting (the same net or a clone) starts from the pretrained module again
    proba = net.predict_proba(-X_test)
    np.testing.assert_array_equal(net.fit(-X_train, y_train).predict_proba(-X_test), proba)
    again = clone(net).fit(-X_train, y_train)
    np.testing.assert_array_equal(again.predict_proba(-X_test), proba)
    # pickling restores the adapted module, and a merged one stays merged
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(-X_test), net.predict_proba(-X_test))
    merge_adapters(net.module_)
    merged = pickle.loads(pickle.dumps(net))
    assert merged.module_.body[0].merged
    np.testing.assert_allclose(merged.predict_proba(-X_test), restored.predict_proba(-X_test),
                               atol=1e-5)


def test_adapter_tuning_with_skops_and_a_regressor():
    skops_io = pytest.importorskip("skops.io")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 8)).astype(np.float32)
    y = X @ rng.normal(size=8)
    net = NeuralNetRegressor(module__hidden_units=(8,), lr=0.05, max_epochs=5, random_state=0,
                             callbacks=[AdapterTuning("lora", adapter_params={"r": 2})]).fit(X, y)
    assert set(adapter_summary(net.module_).layers) == {"body.0", "head"}
    buffer = io.BytesIO()
    skops_io.dump(net, buffer)
    trusted = skops_io.get_untrusted_types(data=buffer.getvalue())
    loaded = skops_io.loads(buffer.getvalue(), trusted=trusted)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_adapter_tuning_needs_a_weightstats_net(digits, pretrained):
    import skorch

    X_train, _, y_train, _ = digits
    net = skorch.NeuralNetClassifier(copy.deepcopy(pretrained), criterion=nn.CrossEntropyLoss,
                                     max_epochs=1, train_split=None,
                                     callbacks=[AdapterTuning("lora")])
    with pytest.raises(RuntimeError, match="use it with weightstats.nn.NeuralNetClassifier"):
        net.fit(X_train, y_train)


def test_non_finite_training_loss_raises_with_the_callbacks():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = 1e3 * X.sum(axis=1)
    for callback in (AdapterTuning("lora", adapter_params={"r": 2}), WeightCompanding()):
        net = NeuralNetRegressor(module__hidden_units=(8,), lr=1e6, max_epochs=20,
                                 random_state=0, callbacks=[callback])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the divergence warning before the stop
            with pytest.raises(ValueError, match="training loss is non-finite"):
                net.fit(X, y)


def test_weight_companding_in_a_net(digits):
    X_train, X_test, y_train, _ = digits
    callback = WeightCompanding(gain=2.0)
    net = NeuralNetClassifier(module__hidden_units=(32,), lr=0.1, max_epochs=3, random_state=0,
                              callbacks=[callback]).fit(X_train, y_train)
    trained = dict(net.module_.named_parameters())
    assert "body.0.parametrizations.weight.0.log_bound" in trained
    compander = net.module_.body[0].parametrizations.weight[0]
    assert compander.gain.item() != pytest.approx(2.0)  # learned
    assert net.module_.body[0].weight.abs().max() < compander.bound
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X_test), net.predict_proba(X_test))
    fixed = NeuralNetClassifier(module__hidden_units=(32,), lr=0.1, max_epochs=3, random_state=0,
                                callbacks=[WeightCompanding(learnable=False)]).fit(X_train, y_train)
    assert fixed.module_.body[0].parametrizations.weight[0].gain.item() == pytest.approx(2.0)


# ==========================================================================
# Slow experiments: the protocols of docs/examples/plot_nn_peft.py and
# plot_nn_weight_compander.py (same seeds, so the same numbers), fewer arms.


@pytest.mark.slow
def test_adapters_beat_head_only_on_inverted_digits(digits):
    from skorch.callbacks import Freezer

    X_train, X_test, y_train, y_test = digits
    torch.set_num_threads(1)
    pretraining = dict(optimizer=torch.optim.Adam, lr=3e-3, max_epochs=20, batch_size=64)
    tuning = dict(pretraining, lr=5e-3, max_epochs=30)
    arms = {"head": None, "bat": {"r": 8}, "lora": {"r": 5}, "compacter": {"reduction": 8}}
    results = {arm: [] for arm in arms}
    for seed in range(3):
        pretrained = NeuralNetClassifier(module__hidden_units=(128, 128), random_state=seed,
                                         **pretraining).fit(X_train, y_train)
        assert pretrained.score(X_test, y_test) > 0.95
        for arm, params in arms.items():
            callback = (Freezer(lambda name: not name.startswith("head")) if params is None
                        else AdapterTuning(arm, ["body.0", "body.2"], adapter_params=params,
                                           trainable_modules=["head"]))
            net = NeuralNetClassifier(copy.deepcopy(pretrained.module_), callbacks=[callback],
                                      random_state=100 + seed, **tuning).fit(-X_train, y_train)
            results[arm].append(net.score(-X_test, y_test))
    head = np.array(results["head"])  # seen: 0.857, 0.910, 0.904
    for arm in ("bat", "lora", "compacter"):  # seen: +0.057, +0.058, +0.072 on average
        accuracy = np.array(results[arm])
        assert np.all(accuracy > head) and accuracy.mean() > head.mean() + 0.03, results


@pytest.mark.slow
def test_compander_caps_weights_and_thins_out_near_zero_weights():
    X, y = load_digits(return_X_y=True)
    X_small, X_rest, y_small, y_rest = train_test_split(
        (X / 16).astype(np.float32), y, train_size=200, stratify=y, random_state=0)
    torch.set_num_threads(1)
    stats = {False: [], True: []}
    for companded in (False, True):
        for seed in range(3):
            net = NeuralNetClassifier(
                module__hidden_units=(256, 256), lr=0.05, optimizer__momentum=0.9,
                max_epochs=60, batch_size=32, random_state=seed,
                callbacks=[WeightCompanding()] if companded else [],
            ).fit(X_small, y_small)
            weights = torch.cat([m.weight.detach().flatten() for m in net.module_.modules()
                                 if isinstance(m, nn.Linear)]).abs()
            stats[companded].append((net.score(X_rest, y_rest), weights.max().item(),
                                     (weights < 1e-3).float().mean().item()))
    plain, comp = np.array(stats[False]), np.array(stats[True])
    assert np.all(comp[:, 1] < 0.7 * plain[:, 1]), (plain, comp)  # max |w| capped (0.32/0.58)
    assert np.all(comp[:, 2] < 0.5 * plain[:, 2]), (plain, comp)  # near-zero share (0.004/0.013)
    assert np.all(comp[:, 0] > 0.9), (plain, comp)  # still a working classifier (0.925)
