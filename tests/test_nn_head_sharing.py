"""TinyTransformer and head-wise shareable attention (Cao, Yang & Zhao, 2024).

Exact rules: the matching against a pair-by-pair loop written as the
reference does; a planted duplicate head is found with cosine 1 and shared
first; tied blocks are one Parameter; the parameter count drops by the
stated amount; ``rate=0`` is the identity; the PostShare penalty and its
skorch callback. The same on a tiny Hugging Face Llama built in code. The
reversal experiment is a slow test (the notebook ``sequence_layers.ipynb``
has the full table).
"""

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import torch.nn.functional as F  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from weightstats.nn import (  # noqa: E402
    MLP,
    HeadSharingPenalty,
    NeuralNetClassifier,
    TinyTransformer,
    head_similarity,
    share_heads,
)

from .strategies import earlier_head_pairs  # noqa: E402

pytestmark = pytest.mark.requires("torch", "skorch")

D, H, HD = 32, 4, 8  # width, heads, head size of the small models below


def _model(seed=0, n_layers=3, **kwargs):
    torch.manual_seed(seed)
    return TinyTransformer(d_model=D, n_layers=n_layers, n_heads=H, **kwargs)


def _block(attn, name, head):
    weight = getattr(attn, name).weight
    rows = slice(head * HD, (head + 1) * HD)
    return weight[:, rows] if name == "o_proj" else weight[rows]


def _plant(model, target, source):
    """Copy the q, k, v, o blocks of head ``source`` into head ``target``."""
    with torch.no_grad():
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            _block(model.layers[target[0]].self_attn, name, target[1]).copy_(
                _block(model.layers[source[0]].self_attn, name, source[1])
            )


def _reference_matches(attentions, strategy="qk"):
    """The reference's findMatch: loop over heads and earlier heads, strict '>'."""

    def vector(attn, head):
        q, k, v = (_block(attn, n, head).detach().double() for n in ("q_proj", "k_proj", "v_proj"))
        if strategy == "total":
            return torch.softmax(q @ k.T / math.sqrt(HD), dim=-1) @ v
        return torch.cat([{"q": q, "k": k, "v": v}[c] for c in strategy])

    result = {}
    for layer in range(1, len(attentions)):
        for head in range(H):
            a = vector(attentions[layer], head).flatten()[None]
            best, where = -math.inf, None
            for other_layer, other_head in itertools.product(range(layer), range(H)):
                b = vector(attentions[other_layer], other_head).flatten()[None]
                cosine = F.cosine_similarity(a, b)[0].item()
                if cosine > best:
                    best, where = cosine, (other_layer, other_head)
            result[layer, head] = (*where, best)
    return result


# ------------------------------------------------------------------ TinyTransformer
def test_tiny_transformer_defaults_and_layout():
    model = TinyTransformer()
    tokens = torch.randint(0, 16, (3, 8))
    assert model(tokens).shape == (3, 8, 16)
    assert len(model.layers) == 3
    attn = model.layers[1].self_attn
    assert (attn.num_heads, attn.head_dim) == (4, 16)
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        assert getattr(attn, name).weight.shape == (64, 64) and getattr(attn, name).bias is None
    pooled = TinyTransformer(n_outputs=3, pooling="mean")
    assert pooled(tokens).shape == (3, 3)
    # whole numbers as floats (what the scikit-learn-style nets pass) are token ids
    torch.testing.assert_close(model(tokens.float()), model(tokens))


def test_tiny_transformer_attention_is_standard_multi_head_attention():
    model = _model(causal=True)
    attn = model.layers[0].self_attn
    x = torch.randn(2, 5, D)
    q, k, v = (getattr(attn, n)(x).view(2, 5, H, HD).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(HD)
    scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), -math.inf)
    expected = attn.o_proj((torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(2, 5, D))
    torch.testing.assert_close(attn(x), expected)
    # causal: changing the last token leaves earlier outputs alone
    tokens = torch.randint(0, 16, (1, 6))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 16
    torch.testing.assert_close(model(tokens)[:, :-1], model(changed)[:, :-1])


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        ({}, torch.zeros(2, 3, 4), r"shape \(batch, T\)"),
        ({}, torch.full((2, 3), 16), r"token ids must be in \[0, 15\]"),
        ({}, torch.full((2, 3), -1), r"token ids must be in"),
        ({}, torch.full((2, 3), 0.5), "whole numbers"),
        ({"max_len": 4}, torch.zeros(2, 5, dtype=torch.long), "exceed max_len=4"),
    ],
)
def test_tiny_transformer_bad_input(kwargs, X, match):
    with pytest.raises(ValueError, match=match):
        TinyTransformer(**kwargs)(X)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_heads": 3}, "must divide"),
        ({"n_layers": 0}, "positive integer"),
        ({"pooling": "max"}, "pooling"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_tiny_transformer_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TinyTransformer(**kwargs)


def test_tiny_transformer_in_a_skorch_net():
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 16, (128, 8), generator=gen)
    y = (X == 3).any(1).long().numpy()  # does token 3 occur?
    net = NeuralNetClassifier(
        TinyTransformer, module__pooling="mean", module__d_model=32, optimizer=torch.optim.Adam,
        lr=3e-3, max_epochs=3, batch_size=32, random_state=0,
    ).fit(X.numpy().astype(np.float32), y)  # arrays are validated and passed as floats
    assert net.predict(X.numpy().astype(np.float32)).shape == (128,)
    assert net.module_.head.out_features == 2


# ---------------------------------------------------------------------- matching
@pytest.mark.parametrize("strategy", ["qk", "q", "k", "v", "qkv", "total"])
def test_head_similarity_matches_the_reference_loop(strategy):
    model = _model(seed=1)
    frame = head_similarity(model, strategy=strategy)
    reference = _reference_matches([layer.self_attn for layer in model.layers], strategy)
    assert len(frame) == (3 - 1) * H
    for row in frame.itertuples():
        match_layer, match_head, cosine = reference[row.layer, row.head]
        assert (row.match_layer, row.match_head) == (match_layer, match_head)
        assert row.cosine == pytest.approx(cosine, abs=1e-5)


def test_ties_go_to_the_earliest_head():
    model = _model(seed=2)
    _plant(model, (1, 2), (0, 1))
    _plant(model, (2, 0), (0, 1))  # (2, 0) now equals both (0, 1) and (1, 2)
    frame = head_similarity(model).set_index(["layer", "head"])
    assert tuple(frame.loc[(2, 0), ["match_layer", "match_head"]]) == (0, 1)


def test_planted_duplicate_is_found_and_shared_first():
    model = _model(seed=3)
    _plant(model, (2, 3), (0, 1))
    frame = head_similarity(model)
    best = frame.sort_values("cosine", ascending=False).iloc[0]
    assert tuple(best[["layer", "head", "match_layer", "match_head"]]) == (2, 3, 0, 1)
    assert best.cosine == pytest.approx(1.0, abs=1e-6)
    assert frame.cosine.drop(best.name).max() < 0.5
    tokens = torch.randint(0, 16, (4, 8))
    before = model(tokens)
    n_before = sum(p.numel() for p in model.parameters())
    model, report = share_heads(model, rate=0.1, return_report=True)  # floor(0.1 * 12) = 1 head
    assert [p[:2] for p in report.pairs] == [((2, 3), (0, 1))]
    assert report.pairs[0][2] == pytest.approx(1.0, abs=1e-6)
    assert report.groups == (((0, 1), (2, 3)),)
    # tied blocks are the very same Parameter objects
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        shared = getattr(model.layers[2].self_attn, name).parametrizations.weight.original3
        source = getattr(model.layers[0].self_attn, name).parametrizations.weight.original1
        assert shared is source
    # the duplicate had the same weights: the model computes the same function
    torch.testing.assert_close(model(tokens), before)
    stated = 4 * HD * D  # q, k, v rows and o columns of one head
    assert report.parameters_saved == stated
    assert n_before - sum(p.numel() for p in model.parameters()) == stated
    assert report.n_parameters_before == n_before


def test_rate_zero_is_the_identity():
    model = _model(seed=4)
    params = list(model.parameters())
    keys = list(model.state_dict())
    tokens = torch.randint(0, 16, (4, 8))
    before = model(tokens)
    shared, report = share_heads(model, rate=0.0, return_report=True)
    assert shared is model and report.pairs == () and report.parameters_saved == 0
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(model(tokens), before)


@pytest.mark.parametrize("rate, n_heads", [(0.1, 1), (0.25, 3), (0.5, 6), (2 / 3, 8)])
def test_number_of_heads_and_parameters_saved(rate, n_heads):
    model = _model(seed=5)
    n_before = sum(p.numel() for p in model.parameters())
    model, report = share_heads(model, rate=rate, return_report=True)
    assert len(report.pairs) == n_heads
    # every head of a group but the first stops owning its four blocks
    members = sum(len(group) - 1 for group in report.groups)
    assert members == n_heads  # matches are earlier, so pairs never close a cycle
    assert report.parameters_saved == n_before - sum(p.numel() for p in model.parameters())
    assert report.parameters_saved == members * 4 * HD * D
    # the shared heads are exactly the ones with the highest similarity
    frame = head_similarity(_model(seed=5))
    top = frame.sort_values(["cosine"], ascending=False).head(n_heads)
    assert {p[0] for p in report.pairs} == set(zip(top["layer"], top["head"], strict=True))


def test_groups_chains_and_repeated_matches_share_one_set_of_weights():
    model = _model(seed=6)
    pairs = [((1, 0), (0, 2)), ((2, 1), (1, 0)), ((2, 2), (0, 2)), ((2, 3), (1, 3))]
    expected_values = _block(model.layers[0].self_attn, "q_proj", 2).detach().clone()
    model, report = share_heads(model, pairs=pairs, return_report=True)
    assert report.groups == (((0, 2), (1, 0), (2, 1), (2, 2)), ((1, 3), (2, 3)))
    q = [layer.self_attn.q_proj.parametrizations.weight for layer in model.layers]
    group = [q[0].original2, q[1].original0, q[2].original1, q[2].original2]
    assert all(p is group[0] for p in group)
    torch.testing.assert_close(group[0], expected_values)  # the earliest head's weights
    assert report.parameters_saved == 4 * 4 * HD * D
    assert np.isnan(report.summary_frame().cosine).all()


def _components(pairs):
    """Connected heads, earliest first (a plain search, independent of the library)."""
    links = {}
    for head, match in pairs:
        links.setdefault(head, set()).add(match)
        links.setdefault(match, set()).add(head)
    seen, groups = set(), []
    for start in sorted(links):
        if start in seen:
            continue
        stack, group = [start], set()
        while stack:
            node = stack.pop()
            if node not in group:
                group.add(node)
                stack.extend(links[node] - group)
        seen |= group
        groups.append(tuple(sorted(group)))
    return tuple(groups)


@given(pairs=earlier_head_pairs(n_layers=4, n_heads=H))
def test_any_pairs_tie_groups_to_their_earliest_head(pairs):
    model = _model(seed=14, n_layers=4)
    expected = copy.deepcopy(model)
    groups = _components(pairs)
    for group in groups:  # the function sharing must compute: every head as the earliest
        for member in group[1:]:
            _plant(expected, member, group[0])
    model, report = share_heads(model, pairs=pairs, return_report=True)
    assert report.groups == groups
    assert report.parameters_saved == sum(len(g) - 1 for g in groups) * 4 * HD * D
    for group in groups:
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            blocks = [
                getattr(getattr(model.layers[layer].self_attn, name).parametrizations.weight,
                        f"original{head}")
                for layer, head in group
            ]
            assert all(block is blocks[0] for block in blocks)
    tokens = torch.arange(16).reshape(2, 8)
    torch.testing.assert_close(model(tokens), expected(tokens))


def test_sharing_again_keeps_earlier_ties():
    model = _model(seed=7)
    share_heads(model, pairs=[((1, 1), (0, 0)), ((2, 0), (1, 1))])
    model, report = share_heads(model, pairs=[((2, 3), (1, 1))], return_report=True)
    q = [layer.self_attn.q_proj.parametrizations.weight for layer in model.layers]
    assert q[0].original0 is q[1].original1 is q[2].original0 is q[2].original3
    assert report.parameters_saved == 4 * HD * D


def test_tied_parameter_gets_the_sum_of_both_heads_gradients():
    shared = _model(seed=8)
    _plant(shared, (2, 1), (1, 2))
    plain = copy.deepcopy(shared)
    share_heads(shared, pairs=[((2, 1), (1, 2))])
    tokens = torch.randint(0, 16, (4, 8))
    shared(tokens).square().mean().backward()
    plain(tokens).square().mean().backward()
    for name in ("q_proj", "o_proj"):
        param = getattr(shared.layers[1].self_attn, name).parametrizations.weight.original2
        grad = getattr(plain.layers[1].self_attn, name).weight.grad
        grad2 = getattr(plain.layers[2].self_attn, name).weight.grad
        rows = slice(2 * HD, 3 * HD) if name == "q_proj" else (slice(None), slice(2 * HD, 3 * HD))
        rows2 = slice(HD, 2 * HD) if name == "q_proj" else (slice(None), slice(HD, 2 * HD))
        torch.testing.assert_close(param.grad, grad[rows] + grad2[rows2])
    optimizer = torch.optim.SGD(shared.parameters(), lr=0.1)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == sum(
        p.numel() for p in shared.parameters()
    )


def test_state_dict_keeps_plain_keys_and_round_trips():
    model = _model(seed=9)
    plain_keys = list(model.state_dict())
    model, report = share_heads(model, rate=0.5, return_report=True)
    tokens = torch.randint(0, 16, (4, 8))
    expected = model(tokens)
    state = model.state_dict()
    assert sorted(state) == sorted(plain_keys)
    fresh = _model(seed=10)
    fresh.load_state_dict(state)  # the unshared architecture: same function
    torch.testing.assert_close(fresh(tokens), expected)
    rebuilt = share_heads(_model(seed=11), pairs=report.pairs)
    rebuilt.load_state_dict(state)  # the shared architecture: same function and ties
    torch.testing.assert_close(rebuilt(tokens), expected)
    assert sum(p.numel() for p in rebuilt.parameters()) == report.n_parameters_after


def test_random_pairing_is_seeded_and_valid():
    pairs = [
        share_heads(_model(seed=12), 0.5, pairing="random", random_state=3, return_report=True)[1].pairs
        for _ in range(2)
    ]
    assert pairs[0] == pairs[1] and len(pairs[0]) == 6
    assert all(match[0] < head[0] for head, match, _ in pairs[0])
    assert len({head for head, _, _ in pairs[0]}) == 6
    other = share_heads(_model(seed=12), 0.5, pairing="random", random_state=4, return_report=True)
    assert other[1].pairs != pairs[0]


def test_works_on_a_fitted_skorch_net():
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 16, (64, 8), generator=gen).float().numpy()
    y = (X[:, 0] > 7).astype(int)
    net = NeuralNetClassifier(
        TinyTransformer, module__pooling="last", module__d_model=D, max_epochs=1, random_state=0
    ).fit(X, y)
    assert len(head_similarity(net)) == 8
    proba = net.predict_proba(X)
    share_heads(net, rate=0.25)
    assert net.predict_proba(X).shape == proba.shape


def test_bad_input():
    model = _model()
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\]"):
        share_heads(model, rate=1.5)
    with pytest.raises(ValueError, match="largest rate is 0.6667"):
        share_heads(model, rate=0.9)
    with pytest.raises(ValueError, match="strategy must be one of"):
        head_similarity(model, strategy="qv")
    with pytest.raises(ValueError, match="pairing must be one of"):
        share_heads(model, rate=0.2, pairing="nearest")
    with pytest.raises(ValueError, match="earlier layer"):
        share_heads(model, pairs=[((1, 0), (1, 2))])
    with pytest.raises(ValueError, match="each pair must be"):
        share_heads(model, pairs=[(1, 0)])
    with pytest.raises(TypeError, match="no attention modules"):
        head_similarity(MLP(4, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        share_heads("model")
    with pytest.raises(ValueError, match="at least two attention layers"):
        head_similarity(_model(n_layers=1))
    other = _model()
    parametrize.register_parametrization(
        other.layers[1].self_attn.q_proj, "weight", torch.nn.Identity()
    )
    with pytest.raises(TypeError, match="already has a parametrization"):
        share_heads(other, pairs=[((1, 0), (0, 0))])


# ----------------------------------------------------------------------- PostShare
@pytest.mark.parametrize("output_projection", [False, True])
def test_penalty_is_the_reference_weight_loss(output_projection):
    model = _model(seed=13)
    penalty = HeadSharingPenalty(rate=0.25, weight=0.3, output_projection=output_projection)
    penalty.select(model)
    assert len(penalty.pairs_) == 3
    names = ("q_proj", "k_proj", "v_proj") + (("o_proj",) if output_projection else ())
    expected = 0.0
    for (layer, head), (match_layer, match_head), _ in penalty.pairs_:
        for name in names:  # the reference: q, k, v only
            a = _block(model.layers[layer].self_attn, name, head)
            b = _block(model.layers[match_layer].self_attn, name, match_head)
            expected += torch.norm(a.flatten() - b.flatten())
    expected = expected / 3
    torch.testing.assert_close(penalty.penalty(model), expected)
    task = torch.tensor(2.0)
    torch.testing.assert_close(penalty.loss(task, model), 0.7 * task + 0.3 * expected)
    _, report = penalty.share(model, return_report=True)
    assert report.pairs == penalty.pairs_
    assert penalty.penalty(model).item() == 0.0  # tied heads are equal


def test_penalty_callback_gives_the_gradient_of_the_postshare_loss():
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 16, (48, 8), generator=gen).float().numpy()
    y = (X[:, :4].sum(1) > 30).astype(int)
    params = dict(
        module=TinyTransformer, module__pooling="mean", module__d_model=D, module__n_heads=H,
        optimizer=torch.optim.SGD, lr=0.5, batch_size=48, random_state=0,
    )
    start = NeuralNetClassifier(max_epochs=0, **params).fit(X, y).module_
    callback = HeadSharingPenalty(rate=0.25, weight=0.4)
    net = NeuralNetClassifier(max_epochs=1, callbacks=[callback], **params).fit(X, y)
    # one full-batch SGD step on the PostShare loss, by hand
    manual = copy.deepcopy(start)
    pairs = HeadSharingPenalty(rate=0.25).select(start).pairs_
    assert callback.pairs_ == pairs
    loss = F.cross_entropy(manual(torch.as_tensor(X)), torch.as_tensor(y))
    total = 0.6 * loss + 0.4 * HeadSharingPenalty(rate=0.25).select(manual).penalty(manual)
    total.backward()
    with torch.no_grad():
        for p in manual.parameters():
            p -= 0.5 * p.grad
    for a, b in zip(manual.parameters(), net.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert net.history[-1, "batches", 0]["head_sharing_penalty"] > 0


def test_penalty_callback_waits_for_start_epoch():
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 16, (32, 8), generator=gen).float().numpy()
    y = (X[:, 0] > 7).astype(int)
    callback = HeadSharingPenalty(rate=0.25, start_epoch=2)
    net = NeuralNetClassifier(
        TinyTransformer, module__pooling="mean", module__d_model=D, max_epochs=3,
        batch_size=16, random_state=0, callbacks=[callback],
    ).fit(X, y)
    recorded = [["head_sharing_penalty" in b for b in row["batches"]] for row in net.history]
    assert recorded == [[False, False], [False, False], [True, True]]
    assert len(callback.pairs_) == 3


def test_penalty_bad_settings():
    with pytest.raises(ValueError, match="weight must be in"):
        HeadSharingPenalty(weight=1.0).select(_model())
    with pytest.raises(ValueError, match="start_epoch"):
        HeadSharingPenalty(start_epoch=-1).initialize()
    with pytest.raises(RuntimeError, match="select"):
        HeadSharingPenalty().penalty(_model())


# ------------------------------------------------------------------ Hugging Face
def _llama(seed=0, kv_heads=H):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32, hidden_size=D, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=H, num_key_value_heads=kv_heads, max_position_embeddings=16,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


@pytest.mark.requires("transformers")
def test_llama_attention_is_treated_like_tiny_transformer():
    model = _llama()
    attentions = [layer.self_attn for layer in model.model.layers]
    frame = head_similarity(model)
    reference = _reference_matches(attentions)
    for row in frame.itertuples():
        assert (row.match_layer, row.match_head) == reference[row.layer, row.head][:2]
        assert row.cosine == pytest.approx(reference[row.layer, row.head][2], abs=1e-5)
    # a planted duplicate is shared first, without changing the model's outputs
    with torch.no_grad():
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            _block(attentions[2], name, 0).copy_(_block(attentions[1], name, 3))
    tokens = torch.randint(0, 32, (2, 6))
    before = model(tokens).logits
    keys = list(model.state_dict())
    model, report = share_heads(model, rate=0.1, return_report=True)
    assert report.pairs[0][:2] == ((2, 0), (1, 3)) and report.pairs[0][2] == pytest.approx(1.0)
    assert report.parameters_saved == 4 * HD * D
    assert attentions[2].o_proj.parametrizations.weight.original0 is (
        attentions[1].o_proj.parametrizations.weight.original3
    )
    torch.testing.assert_close(model(tokens).logits, before)
    assert list(model.state_dict()) == keys  # loads into LlamaForCausalLM as usual
    fresh = _llama(seed=1)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(tokens).logits, before)


@pytest.mark.requires("transformers")
def test_llama_grouped_query_attention_is_refused():
    with pytest.raises(ValueError, match="grouped-query attention is not supported"):
        head_similarity(_llama(kv_heads=2))


# -------------------------------------------------------------------- experiment
def reversal_batch(n, length=8, vocab=16, generator=None):
    """Random token sequences and their reversals."""
    X = torch.randint(0, vocab, (n, length), generator=generator)
    return X, X.flip(1)


def token_accuracy(model, X, y):
    with torch.no_grad():
        return (model(X).argmax(-1) == y).float().mean().item()


def train_reversal(model, steps, seed, weight_decay=0.0, penalty=None, batch=128):
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=weight_decay)
    for _ in range(steps):
        X, y = reversal_batch(batch, generator=gen)
        loss = F.cross_entropy(model(X).transpose(1, 2), y)
        if penalty is not None:
            loss = penalty.loss(loss, model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.slow
def test_reversal_similarity_pairing_and_postshare():
    # 6 layers x 4 heads of 8 learn to reverse 8 of 16 tokens (100 % token
    # accuracy); share a quarter and half of the heads without retraining.
    X, y = reversal_batch(1000, generator=torch.Generator().manual_seed(999))
    for seed in range(3):
        torch.manual_seed(seed)
        base = TinyTransformer(d_model=32, n_layers=6, n_heads=4)
        train_reversal(base, 600, seed, weight_decay=0.1)
        assert token_accuracy(base, X, y) > 0.99
        results = {}
        for rate in (0.25, 0.5):
            results[rate] = (
                token_accuracy(share_heads(copy.deepcopy(base), rate), X, y),
                np.mean([
                    token_accuracy(
                        share_heads(copy.deepcopy(base), rate, pairing="random", random_state=r),
                        X, y,
                    )
                    for r in range(5)
                ]),
            )
        similarity, random = results[0.5]
        assert similarity > random + 0.03  # similarity pairing degrades accuracy less
        assert results[0.25][0] >= results[0.25][1]
        assert similarity < 0.99  # half the heads do cost accuracy
        post = copy.deepcopy(base)
        penalty = HeadSharingPenalty(rate=0.5).select(post)
        train_reversal(post, 200, 100 + seed, weight_decay=0.1, penalty=penalty)
        penalty.share(post)
        recovered = token_accuracy(post, X, y) - similarity
        assert recovered > 0.5 * (1 - similarity)  # PostShare recovers most of the gap
