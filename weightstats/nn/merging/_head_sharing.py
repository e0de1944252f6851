"""Head-wise shareable attention: DirectShare and PostShare.

Cao, Yang & Zhao, "Head-wise Shareable Attention for Large Language
Models" (Findings of EMNLP 2024); reference zouyingcao/DirectShare
(``find_match.py``, ``DirectShare/direct_share.py``,
``PostShare/LLaMA-Factory/src/llmtuner/train/pt/workflow.py``).

* Matching (``findMatch``): for every head ``h`` of layer ``l >= 1``, the
  head of an earlier layer ``l' < l`` whose weights have the largest cosine
  similarity with it; with strategy "qk" the compared vector is the
  flattened ``[W_q^h; W_k^h]`` (rows ``h * d : (h + 1) * d`` of ``q_proj``
  and ``k_proj``).
* DirectShare (``getHeadIndex``, ``DirectShare``): rank the heads by that
  best similarity and share the top ``floor(rate * L * H)`` (``L`` layers,
  ``H`` heads; layer 0 is counted though it has no earlier layer): each
  selected head uses the query, key, value and output-projection weights of
  its match.
* PostShare (``CustomTrainer.compute_loss``): before sharing, train with
  ``0.5 * loss + 0.5 * mean over pairs (||dW_q|| + ||dW_k|| + ||dW_v||)``
  (Frobenius norms of the differences between paired heads). The reference
  leaves out the output projection although DirectShare ties it too; here
  its difference ``||dW_o||`` is added by default (``output_projection``):
  without it the paired heads still differ there and sharing can break the
  model (measured in the tests' reversal task).

Tying a head means tying a block of rows (``q_proj``, ``k_proj``,
``v_proj``) or columns (``o_proj``) of a weight. Each projection of an
affected layer is re-parametrised with ``torch.nn.utils.parametrize`` as the
concatenation of one parameter per head; tied heads hold the same parameter
object, so the model and its optimizer see it once and its gradient is the
sum over the heads that use it. The reference instead copies each matched
head into a new shared list per pair; when several selected heads match the
same head, or a selected head is itself the match of another, its copies
are not tied together. Here the pairs are merged into groups (every head
connected by pairs shares one set of weights, those of the group's earliest
head), which is the same as the reference whenever the pairs are disjoint.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from sklearn.utils import check_random_state
from torch import nn
from torch.nn.utils import parametrize

from .._core import EpochsSinceFit

__all__ = ["HeadSharingPenalty", "HeadSharingReport", "head_similarity", "share_heads"]

_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
_STRATEGIES = ("q", "k", "v", "qk", "qkv", "total")
_PAIRINGS = ("similarity", "random")


# --------------------------------------------------------------------- model layout
@dataclass(frozen=True)
class _Layout:
    """The attention modules of a model, in layer order, and their head geometry."""

    modules: tuple
    names: tuple
    num_heads: int
    head_dim: int

    @property
    def n_layers(self):
        return len(self.modules)


def _as_module(model):
    module = getattr(model, "module_", model)  # a fitted skorch net
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module or a fitted skorch net; got {type(model)}.")
    return module


def _config_value(module, name):
    value = getattr(module, name, None)
    if value is None:
        value = getattr(getattr(module, "config", None), name, None)
    return value


def _layout(model):
    """Find the attention modules: those with Linear q_proj, k_proj, v_proj, o_proj."""
    module = _as_module(model)
    found = [
        (name, sub)
        for name, sub in module.named_modules()
        if all(isinstance(getattr(sub, p, None), nn.Linear) for p in _PROJECTIONS)
    ]
    if not found:
        raise TypeError(
            f"{type(module).__name__} has no attention modules with Linear q_proj, k_proj, "
            "v_proj and o_proj (the layout of weightstats.nn.TinyTransformer and Hugging Face "
            "Llama); head sharing supports only that layout."
        )
    geometry = set()
    for name, attn in found:
        num_heads = _config_value(attn, "num_heads") or _config_value(attn, "num_attention_heads")
        if num_heads is None:
            raise TypeError(
                f"the attention module {name!r} has no num_heads (or config.num_attention_heads)."
            )
        num_heads = int(num_heads)
        head_dim = int(getattr(attn, "head_dim", None) or attn.q_proj.out_features // num_heads)
        width = num_heads * head_dim
        if attn.k_proj.out_features != width or attn.v_proj.out_features != width:
            raise ValueError(
                f"the attention module {name!r} has {attn.k_proj.out_features // head_dim} key/value "
                f"heads for {num_heads} query heads; head sharing needs one key and value head per "
                "query head (grouped-query attention is not supported)."
            )
        if attn.q_proj.out_features != width or attn.o_proj.in_features != width:
            raise ValueError(
                f"the projections of {name!r} do not match {num_heads} heads of size {head_dim}."
            )
        geometry.add((num_heads, head_dim, attn.q_proj.in_features))
    if len(geometry) > 1:
        raise ValueError(
            f"the attention layers differ in (heads, head size, width): {sorted(geometry)}; "
            "heads can only be compared between layers of one shape."
        )
    num_heads, head_dim, _ = geometry.pop()
    return _Layout(tuple(m for _, m in found), tuple(n for n, _ in found), num_heads, head_dim)


def _head_weights(layout, name):
    """(L, H, head_dim, width) blocks per layer and head (o_proj: its columns, transposed)."""
    L, H, d = layout.n_layers, layout.num_heads, layout.head_dim
    weights = torch.stack([getattr(attn, name).weight for attn in layout.modules])
    if name == "o_proj":
        weights = weights.transpose(1, 2)
    return weights.reshape(L, H, d, -1)


def _features(layout, strategy):
    """The flattened vector compared between heads, (L * H, n)."""
    with torch.no_grad():
        q, k, v = (
            _head_weights(layout, n).float() if n[0] in strategy or strategy == "total" else None
            for n in ("q_proj", "k_proj", "v_proj")
        )
        if strategy == "total":  # softmax(W_q W_k^T / sqrt(d)) W_v, as the reference
            scores = q @ k.transpose(-1, -2) / layout.head_dim**0.5
            blocks = torch.softmax(scores, dim=-1) @ v
        else:
            blocks = torch.cat([b for b in (q, k, v) if b is not None], dim=2)
        return blocks.reshape(layout.n_layers * layout.num_heads, -1)


def _check_strategy(strategy):
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}; got {strategy!r}.")


def _cosines(layout, strategy):
    """Cosine similarity between every two heads, (L * H, L * H), as float64 NumPy."""
    unit = F.normalize(_features(layout, strategy), dim=1)
    return (unit @ unit.T).double().cpu().numpy()


def _best_matches(cosine, layout):
    """Best earlier-layer match of every head: (match index, cosine) arrays over L * H heads."""
    layer = np.repeat(np.arange(layout.n_layers), layout.num_heads)
    earlier = np.where(layer[None, :] < layer[:, None], cosine, -np.inf)
    index = earlier.argmax(axis=1)  # the first maximum: earliest layer, then head
    return index, earlier[np.arange(len(index)), index]


def head_similarity(model, strategy="qk"):
    """Best match of every attention head among the heads of earlier layers.

    For each head ``h`` of layer ``l >= 1`` the head of a layer ``l' < l``
    with the largest cosine similarity between the flattened weight blocks
    named by ``strategy`` (DirectShare's matching; ties go to the earliest
    layer, then the lowest head).

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        A model whose attention modules have Linear ``q_proj``, ``k_proj``,
        ``v_proj`` and ``o_proj`` and ``num_heads`` (or
        ``config.num_attention_heads``): :class:`TinyTransformer`, Hugging
        Face Llama. Attention modules are taken in registration order.
    strategy : {"qk", "q", "k", "v", "qkv", "total"}, default="qk"
        The compared weights of head ``h`` (rows ``h * head_dim`` to
        ``(h + 1) * head_dim``): ``[W_q^h; W_k^h]`` stacked ("qk", the
        paper's choice), one of them, all three, or ``softmax(W_q^h
        W_k^h^T / sqrt(head_dim)) W_v^h`` ("total").

    Returns
    -------
    similarity : pandas.DataFrame
        One row per head of layers 1 to L - 1, columns ``layer``, ``head``,
        ``match_layer``, ``match_head`` and ``cosine``.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import TinyTransformer, head_similarity
    >>> _ = torch.manual_seed(0)
    >>> model = TinyTransformer(n_layers=3, n_heads=4)
    >>> with torch.no_grad():  # make head 2 of layer 2 a copy of head 1 of layer 0
    ...     for name in ("q_proj", "k_proj"):
    ...         source = getattr(model.layers[0].self_attn, name).weight
    ...         getattr(model.layers[2].self_attn, name).weight[32:48] = source[16:32]
    >>> sim = head_similarity(model)
    >>> sim.shape
    (8, 5)
    >>> sim.sort_values("cosine").iloc[-1].round(6).tolist()
    [2.0, 2.0, 0.0, 1.0, 1.0]
    """
    _check_strategy(strategy)
    layout = _layout(model)
    if layout.n_layers < 2:
        raise ValueError("head similarity needs at least two attention layers.")
    H = layout.num_heads
    index, cosine = _best_matches(_cosines(layout, strategy), layout)
    rows = np.arange(H, layout.n_layers * H)
    return pd.DataFrame(
        {
            "layer": rows // H,
            "head": rows % H,
            "match_layer": index[rows] // H,
            "match_head": index[rows] % H,
            "cosine": cosine[rows],
        }
    )


# --------------------------------------------------------------------------- pairs
def _n_shared(rate, layout):
    if not isinstance(rate, (int, float, np.integer, np.floating)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be a number in [0, 1]; got {rate!r}.")
    L, H = layout.n_layers, layout.num_heads
    n = int(np.floor(rate * L * H + 1e-9))
    if n > (L - 1) * H:
        raise ValueError(
            f"rate={rate} shares {n} of {L * H} heads, but only the {(L - 1) * H} heads after the "
            f"first layer have an earlier head to share with; the largest rate is "
            f"{(L - 1) / L:.4g}."
        )
    return n


def _select_pairs(layout, rate, strategy, pairing, random_state):
    """DirectShare's pairs ``((layer, head), (match_layer, match_head), cosine)``."""
    _check_strategy(strategy)
    if pairing not in _PAIRINGS:
        raise ValueError(f"pairing must be one of {_PAIRINGS}; got {pairing!r}.")
    n = _n_shared(rate, layout)
    if n == 0:
        return ()
    H = layout.num_heads
    cosines = _cosines(layout, strategy)
    index, cosine = _best_matches(cosines, layout)
    candidates = np.arange(H, layout.n_layers * H)
    if pairing == "similarity":
        # highest similarity first; ties to the earlier (layer, head)
        chosen = candidates[np.lexsort((candidates, -cosine[candidates]))[:n]]
        matches = index[chosen]
    else:
        rng = check_random_state(random_state)
        chosen = np.sort(rng.choice(candidates, size=n, replace=False))
        matches = np.array([rng.randint((c // H) * H) for c in chosen])
    return tuple(
        ((int(c // H), int(c % H)), (int(m // H), int(m % H)), float(cosines[c, m]))
        for c, m in zip(chosen, matches, strict=True)
    )


def _check_pairs(pairs, layout):
    checked = []
    L, H = layout.n_layers, layout.num_heads
    for pair in pairs:
        try:
            (layer, head), (match_layer, match_head) = pair[0], pair[1]
            layer, head, match_layer, match_head = (
                int(layer), int(head), int(match_layer), int(match_head)
            )
        except (TypeError, ValueError, IndexError):
            raise ValueError(
                f"each pair must be ((layer, head), (match_layer, match_head)); got {pair!r}."
            ) from None
        if not (0 <= match_layer < layer < L and 0 <= head < H and 0 <= match_head < H):
            raise ValueError(
                f"pair {pair!r} is not a head of layers 1..{L - 1} matched to a head of an "
                f"earlier layer (heads 0..{H - 1})."
            )
        cosine = float(pair[2]) if len(pair) > 2 else float("nan")
        checked.append(((layer, head), (match_layer, match_head), cosine))
    return tuple(checked)


# ------------------------------------------------------------------------- tying
class _HeadBlocks(nn.Module):
    """Parametrisation: a weight as the concatenation of one block per head."""

    def __init__(self, num_heads, dim):
        super().__init__()
        self.num_heads, self.dim = num_heads, dim

    def forward(self, *blocks):
        return torch.cat(blocks, dim=self.dim)

    def right_inverse(self, weight):
        return tuple(block.clone() for block in weight.chunk(self.num_heads, dim=self.dim))


def _parametrized(linear, tensor_name, num_heads, dim):
    """The per-head parameters of ``linear.<tensor_name>``, re-parametrising it if needed."""
    if parametrize.is_parametrized(linear, tensor_name):
        chain = linear.parametrizations[tensor_name]
        if len(chain) != 1 or not isinstance(chain[0], _HeadBlocks) or chain[0].dim != dim:
            raise TypeError(
                f"{type(linear).__name__}.{tensor_name} already has a parametrization "
                f"({[type(p).__name__ for p in chain]}); share heads before adding others."
            )
    else:
        parametrize.register_parametrization(linear, tensor_name, _HeadBlocks(num_heads, dim))
        linear.register_state_dict_post_hook(_plain_state_dict)
        linear.register_load_state_dict_pre_hook(_load_plain_state_dict)
    return linear.parametrizations[tensor_name]


def _plain_state_dict(module, state_dict, prefix, local_metadata):
    # Save the composed weight under its usual key, so that checkpoints of a
    # shared model load into the unshared architecture (tied heads repeated).
    for name, chain in module.parametrizations.items():
        keys = [f"{prefix}parametrizations.{name}.original{i}" for i in range(chain[0].num_heads)]
        if all(key in state_dict for key in keys):
            state_dict[prefix + name] = chain[0](*(state_dict.pop(key) for key in keys))


def _load_plain_state_dict(module, state_dict, prefix, *args):
    for name, chain in module.parametrizations.items():
        key = prefix + name
        if key in state_dict:
            blocks = state_dict.pop(key).chunk(chain[0].num_heads, dim=chain[0].dim)
            for i, block in enumerate(blocks):
                state_dict[f"{prefix}parametrizations.{name}.original{i}"] = block


def _head_params(attn, head, layout):
    """The per-head parameters of one head: [(chain, attribute name), ...] over projections."""
    slots = []
    for name in _PROJECTIONS:
        linear = getattr(attn, name)
        dim = 1 if name == "o_proj" else 0
        slots.append((_parametrized(linear, "weight", layout.num_heads, dim), f"original{head}"))
        if name != "o_proj" and linear.bias is not None:
            slots.append((_parametrized(linear, "bias", layout.num_heads, 0), f"original{head}"))
    return slots


def _count(module):
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class HeadSharingReport:
    """What :func:`share_heads` tied.

    Parameters
    ----------
    pairs : tuple of ((int, int), (int, int), float)
        The selected ``((layer, head), (match_layer, match_head), cosine)``
        pairs (cosine NaN for pairs given explicitly without one). Pass
        them back as ``share_heads(model, pairs=report.pairs)`` to rebuild
        the sharing on a fresh model.
    groups : tuple of tuple of (int, int)
        Heads sharing one set of weights; the first is the head whose
        weights they all use (the earliest).
    n_parameters_before : int
        Distinct parameters of the model before sharing.
    n_parameters_after : int
        Distinct parameters after sharing.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import TinyTransformer, share_heads
    >>> _ = torch.manual_seed(0)
    >>> model, report = share_heads(TinyTransformer(), rate=0.25, return_report=True)
    >>> len(report.pairs), report.parameters_saved
    (3, 12288)
    >>> list(report.summary_frame().columns)
    ['layer', 'head', 'match_layer', 'match_head', 'cosine']
    """

    pairs: tuple
    groups: tuple
    n_parameters_before: int
    n_parameters_after: int

    @property
    def parameters_saved(self):
        """Number of parameters no longer stored (``before - after``)."""
        return self.n_parameters_before - self.n_parameters_after

    def summary_frame(self):
        """The pairs as a DataFrame (``layer, head, match_layer, match_head, cosine``).

        Returns
        -------
        frame : pandas.DataFrame
            One row per pair.
        """
        return pd.DataFrame(
            [(*head, *match, cosine) for head, match, cosine in self.pairs],
            columns=["layer", "head", "match_layer", "match_head", "cosine"],
        )

    def __str__(self):
        shared = sum(len(g) - 1 for g in self.groups)
        return (
            f"{shared} attention heads share the weights of an earlier head ({len(self.groups)} "
            f"groups); parameters {self.n_parameters_before:,} -> {self.n_parameters_after:,} "
            f"({self.parameters_saved:,} saved, "
            f"{self.parameters_saved / max(self.n_parameters_before, 1):.1%})."
        )


def share_heads(
    model,
    rate=0.3,
    strategy="qk",
    pairing="similarity",
    random_state=None,
    *,
    pairs=None,
    return_report=False,
):
    """Share attention-head weights across layers (DirectShare), in place.

    Ranks the heads of layers 1 to L - 1 by the cosine similarity to their
    best match in an earlier layer (:func:`head_similarity`) and ties the
    top ``floor(rate * L * H)`` to their matches: the query, key and value
    rows and the output-projection columns of a tied head become the same
    parameters as its match's (their current values). Heads linked through
    several pairs form one group using the weights of its earliest head.
    Each projection of an affected layer is re-parametrised (with
    ``torch.nn.utils.parametrize``) as the concatenation of per-head
    parameters, and tied heads hold one parameter object: ``parameters()``
    lists it once, an optimizer updates it once with the gradient summed
    over its heads.

    The state dict keeps the usual keys (``q_proj.weight`` etc., tied blocks
    repeated), so it loads into the unshared architecture; to restore the
    sharing, call ``share_heads(new_model, pairs=report.pairs)`` before or
    after loading.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        A model with Llama-layout attention (see :func:`head_similarity`);
        modified in place.
    rate : float, default=0.3
        Fraction of all ``L * H`` heads to share, in ``[0, (L - 1) / L]``;
        0 leaves the model untouched.
    strategy : {"qk", "q", "k", "v", "qkv", "total"}, default="qk"
        Weights compared (see :func:`head_similarity`).
    pairing : {"similarity", "random"}, default="similarity"
        "similarity" is DirectShare; "random" ties the same number of
        randomly chosen heads to random heads of earlier layers (the
        baseline).
    random_state : int, RandomState instance or None, default=None
        Seed of the random pairing.
    pairs : sequence of ((layer, head), (match_layer, match_head)), default=None
        Tie exactly these pairs (a third element, the cosine, is kept in
        the report); ``rate``, ``strategy`` and ``pairing`` are then
        ignored.
    return_report : bool, default=False
        Also return a :class:`HeadSharingReport`.

    Returns
    -------
    model : torch.nn.Module or skorch net
        The same object, shared.
    report : HeadSharingReport
        Only with ``return_report``: pairs, groups and the parameter count
        before and after.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import TinyTransformer, share_heads
    >>> _ = torch.manual_seed(0)
    >>> model = TinyTransformer(d_model=64, n_layers=3, n_heads=4)
    >>> model, report = share_heads(model, rate=0.25, return_report=True)
    >>> len(report.pairs), report.parameters_saved  # 3 heads x 4 blocks of 16 x 64
    (3, 12288)
    >>> (head, match, _), attn = report.pairs[0], model.layers
    >>> q = attn[head[0]].self_attn.q_proj.parametrizations.weight
    >>> q_match = attn[match[0]].self_attn.q_proj.parametrizations.weight
    >>> getattr(q, f"original{head[1]}") is getattr(q_match, f"original{match[1]}")
    True
    """
    layout = _layout(model)
    if pairs is None:
        if layout.n_layers < 2 and rate > 0:
            raise ValueError("head sharing needs at least two attention layers.")
        pairs = _select_pairs(layout, rate, strategy, pairing, random_state)
    else:
        pairs = _check_pairs(pairs, layout)
    module = _as_module(model)
    before = _count(module)
    groups = _groups(pairs, layout)
    for group in groups:
        root_layer, root_head = group[0]
        root_attn = layout.modules[root_layer]
        root_slots = _head_params(root_attn, root_head, layout)
        shared = [getattr(chain, attr) for chain, attr in root_slots]
        for layer, head in group[1:]:
            for (chain, attr), param in zip(
                _head_params(layout.modules[layer], head, layout), shared, strict=True
            ):
                setattr(chain, attr, param)
    report = HeadSharingReport(tuple(pairs), groups, before, _count(module))
    return (model, report) if return_report else model


def _groups(pairs, layout):
    """Connected heads (new pairs plus ties already present), earliest head first."""
    parent = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for head, match, _ in pairs:
        union(head, match)
    # heads tied by an earlier call hold the same query-block parameter
    owners = {}
    for layer, attn in enumerate(layout.modules):
        chain = getattr(getattr(attn.q_proj, "parametrizations", None), "weight", None)
        if chain is not None and isinstance(chain[0], _HeadBlocks):
            for head in range(layout.num_heads):
                owner = owners.setdefault(id(getattr(chain, f"original{head}")), (layer, head))
                if owner != (layer, head):
                    union(owner, (layer, head))
    members = {}
    for head in parent:
        members.setdefault(find(head), []).append(head)
    return tuple(tuple(sorted(m)) for _, m in sorted(members.items()) if len(m) > 1)


# ------------------------------------------------------------------------ PostShare
class HeadSharingPenalty(Callback):
    """PostShare: pull paired heads together during training, then share them.

    Selects the pairs DirectShare would tie at ``rate`` (from the weights
    when the penalty starts) and trains on::

        (1 - weight) * loss
        + weight * mean over pairs (||dW_q|| + ||dW_k|| + ||dW_v|| + ||dW_o||)

    with ``dW`` the difference between the two heads' query, key and value
    rows and output-projection columns (Frobenius norms); ``weight=0.5`` is
    the reference's equal weighting. Afterwards :meth:`share` ties the pairs
    (:func:`share_heads` with these pairs), now with little left to lose.

    The reference's penalty has no ``||dW_o||`` term (``output_projection=
    False``), although sharing ties the output columns as well. On the
    reversal task of the user guide (3 layers, 4 heads, half the heads
    shared) one model kept 12 % token accuracy after sharing with the
    reference's penalty and 100 % with the output term.

    As a skorch callback it adds the penalty's gradient (and rescales the
    loss's) in ``on_grad_computed``, recording the penalty in the batch
    history as ``head_sharing_penalty``; ``start_epoch`` epochs of plain
    training may come first. On a plain module, call :meth:`select` once
    and use :meth:`loss` in the training loop.

    Parameters
    ----------
    rate : float, default=0.3
        Fraction of all heads to share (see :func:`share_heads`).
    weight : float, default=0.5
        Weight of the penalty, in ``[0, 1)``; the loss gets ``1 - weight``.
    strategy : {"qk", "q", "k", "v", "qkv", "total"}, default="qk"
        Weights compared when selecting pairs.
    pairing : {"similarity", "random"}, default="similarity"
        How pairs are selected.
    random_state : int, RandomState instance or None, default=None
        Seed of the random pairing.
    start_epoch : int, default=0
        Epochs of the training call before the penalty starts (the pairs
        are selected at the start of that epoch).
    output_projection : bool, default=True
        Penalise the difference of the output-projection columns too;
        False is the reference's penalty (query, key and value only).

    Attributes
    ----------
    pairs_ : tuple of ((int, int), (int, int), float)
        The selected pairs (as in :class:`HeadSharingReport`).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import HeadSharingPenalty, TinyTransformer
    >>> _ = torch.manual_seed(0)
    >>> model = TinyTransformer()
    >>> penalty = HeadSharingPenalty(rate=0.25).select(model)
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    >>> tokens = torch.randint(0, 16, (32, 8))
    >>> start = penalty.penalty(model).item()
    >>> for _ in range(20):
    ...     optimizer.zero_grad()
    ...     logits = model(tokens)
    ...     task = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens.flip(1))
    ...     penalty.loss(task, model).backward()
    ...     optimizer.step()
    >>> penalty.penalty(model).item() < start
    True
    >>> model, report = penalty.share(model, return_report=True)
    >>> report.parameters_saved
    12288
    """

    def __init__(
        self,
        rate=0.3,
        weight=0.5,
        strategy="qk",
        pairing="similarity",
        random_state=None,
        start_epoch=0,
        output_projection=True,
    ):
        self.rate = rate
        self.weight = weight
        self.strategy = strategy
        self.pairing = pairing
        self.random_state = random_state
        self.start_epoch = start_epoch
        self.output_projection = output_projection

    def _check_params(self):
        if not 0.0 <= self.weight < 1.0:
            raise ValueError(f"weight must be in [0, 1); got {self.weight!r}.")
        if int(self.start_epoch) < 0:
            raise ValueError(f"start_epoch must be non-negative; got {self.start_epoch!r}.")

    def initialize(self):
        """Forget the pairs (a fresh skorch fit selects them again).

        Returns
        -------
        self : HeadSharingPenalty
            This callback.
        """
        self._check_params()
        self.pairs_ = None
        return self

    def select(self, model):
        """Select the pairs from the model's current weights.

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            The model (Llama-layout attention).

        Returns
        -------
        self : HeadSharingPenalty
            With ``pairs_`` set.
        """
        self._check_params()
        layout = _layout(model)
        self.pairs_ = _select_pairs(
            layout, self.rate, self.strategy, self.pairing, self.random_state
        )
        return self

    def _pairs(self):
        pairs = getattr(self, "pairs_", None)
        if pairs is None:
            raise RuntimeError(
                "HeadSharingPenalty has no pairs yet: call select(model) first (a skorch net "
                "does so when the penalty starts)."
            )
        return pairs

    def penalty(self, model):
        """Mean over pairs of the summed Frobenius distances of the heads' blocks.

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            The model the pairs were selected on.

        Returns
        -------
        penalty : torch.Tensor
            A differentiable scalar (0 without pairs).
        """
        pairs = self._pairs()
        layout = _layout(model)
        if not pairs:
            return layout.modules[0].q_proj.weight.new_zeros(())
        device = layout.modules[0].q_proj.weight.device
        heads = torch.tensor([[*h, *m] for h, m, _ in pairs], device=device)
        names = ("q_proj", "k_proj", "v_proj", "o_proj")[: 4 if self.output_projection else 3]
        total = 0
        for name in names:
            blocks = _head_weights(layout, name)
            diff = blocks[heads[:, 0], heads[:, 1]] - blocks[heads[:, 2], heads[:, 3]]
            total = total + torch.linalg.vector_norm(diff.flatten(1), dim=1)
        return total.mean()

    def loss(self, loss, model):
        """``(1 - weight) * loss + weight * penalty(model)``.

        Parameters
        ----------
        loss : torch.Tensor
            The task loss.
        model : torch.nn.Module or fitted skorch net
            The model.

        Returns
        -------
        total : torch.Tensor
            The PostShare training loss.
        """
        return (1 - self.weight) * loss + self.weight * self.penalty(model)

    def share(self, model, return_report=False):
        """Tie the selected pairs (:func:`share_heads` with ``pairs=pairs_``).

        Parameters
        ----------
        model : torch.nn.Module or fitted skorch net
            The model, modified in place. For a skorch net, re-create its
            optimizer (``net.initialize_optimizer()``) before training on.
        return_report : bool, default=False
            Also return the :class:`HeadSharingReport`.

        Returns
        -------
        model : torch.nn.Module or skorch net
            The same object, shared.
        report : HeadSharingReport
            Only with ``return_report``.
        """
        return share_heads(model, pairs=self._pairs(), return_report=return_report)

    # skorch hooks -------------------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Start counting the epochs of this training call.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X, y : array-like or None, default=None
            The training data (unused).
        **kwargs : dict
            Other arguments skorch passes.
        """
        self._epochs = EpochsSinceFit(net)
        self._active = False

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Select the pairs when the penalty starts (unless already selected).

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        dataset_train, dataset_valid : Dataset or None, default=None
            The epoch's datasets (unused).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if self._epochs.epoch(net) >= int(self.start_epoch) and not self._active:
            if getattr(self, "pairs_", None) is None:
                self.select(net.module_)
            self._active = True

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        """Turn the loss's gradient into the PostShare loss's gradient.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        named_parameters : iterable of (str, torch.nn.Parameter)
            The parameters whose ``.grad`` the step will use.
        batch : tuple or None, default=None
            The batch (unused).
        training : bool, default=False
            Whether this is a training step (validation steps are left alone).
        **kwargs : dict
            Other arguments skorch passes.
        """
        if not (training and self._active):
            return
        with torch.enable_grad():
            penalty = self.penalty(net.module_)
        for _, param in named_parameters:
            if param.grad is not None:
                param.grad.mul_(1 - self.weight)
        if penalty.requires_grad:
            (self.weight * penalty).backward()
        net.history.record_batch("head_sharing_penalty", float(penalty.detach()))
