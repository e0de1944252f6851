"""The CPU experiments of weightstats.nn.quantization (shared by the slow tests).

Run ``python -m tests._quantization_experiments [seeds]`` for the tables of
the user guide (``docs/user_guide/nn_quantization.rst``); the slow tests in
``tests/test_nn_quantization.py`` run the same functions on three seeds and
assert what holds on every seed.

* :func:`ofq_digits`: 2-bit quantisation-aware training of a digits MLP
  (64-128-128-128-10, first and last layer in full precision) from a
  full-precision start, LSQ against StatsQ; then confidence-guided
  annealing against the same cosine learning-rate decay without freezing.
* :func:`qkr_recall`: a one-layer attention model on associative recall
  (find the value stored with the query key), 2-bit attention weights,
  query and key quantised separately against QKR.
* :func:`signround_vs_rtn`: SignRound against round-to-nearest at 2, 3 and
  4 bits on a digits MLP (accuracy) and a Friedman #1 regression MLP (R^2).
"""

import copy
import math
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits, make_friedman1
from sklearn.model_selection import train_test_split
from torch import nn

from weightstats.nn import (
    MLP,
    ConfidenceGuidedAnnealing,
    QKReparamAttention,
    SignRound,
    TrackOscillation,
    prepare_qat,
    rtn_quantize,
)


def digits(seed=0):
    """Digits scaled to [0, 1], 60/40 stratified split, as tensors."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    parts = train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)
    return [torch.as_tensor(part) for part in parts]


def accuracy(model, X, y):
    model.eval()
    with torch.no_grad():
        value = float((model(X).argmax(1) == y).float().mean())
    model.train()
    return value


def train(model, X, y, epochs, lr, seed, *, loss=nn.functional.cross_entropy, batch_size=64,
          tracker=None, cga=None, cosine=False):
    """Adam on mini-batches; per-epoch oscillation rates ``(per tensor, overall)`` when tracked."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    rates = []
    for epoch in range(epochs):
        if cosine:  # per-epoch cosine decay to 0, as ConfidenceGuidedAnnealing does
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            loss(model(X[rows]), y[rows]).backward()
            if cga is not None:
                cga.step(model, optimizer)
            else:
                optimizer.step()
            if tracker is not None:
                tracker.update()
        if tracker is not None:
            rates.append(tracker.rates())
    return rates


# ----------------------------------------------------------------- OFQ
def ofq_digits(seed, *, qat_epochs=30, cga_epochs=10, lr=1e-3, bits=2):
    """LSQ vs StatsQ oscillation, then CGA vs plain annealing, on a digits MLP."""
    Xtr, Xte, ytr, yte = digits()
    torch.manual_seed(seed)
    fp = MLP(64, 10, hidden_units=(128, 128, 128))
    train(fp, Xtr, ytr, 30, 1e-3, seed + 100)
    result = {"fp_acc": accuracy(fp, Xte, yte)}
    for method in ("lsq", "statsq"):
        model = prepare_qat(copy.deepcopy(fp), bits=bits, method=method)
        tracker = TrackOscillation().start(model)
        history = train(model, Xtr, ytr, qat_epochs, lr, seed, tracker=tracker)
        rates = [overall for _, overall in history]
        row = {
            "acc": accuracy(model, Xte, yte),
            "rate": float(np.mean(rates[-5:])),  # oscillations per weight and step
            "ema": tracker.overall(),
        }
        for mode in ("anneal", "cga"):
            annealed = copy.deepcopy(model)
            tracker = TrackOscillation().start(annealed)
            cga = ConfidenceGuidedAnnealing(epochs=cga_epochs) if mode == "cga" else None
            rates = [overall for _, overall in train(
                annealed, Xtr, ytr, cga_epochs, lr, seed + 7, tracker=tracker, cga=cga,
                cosine=True,
            )]
            row[f"{mode}_acc"] = accuracy(annealed, Xte, yte)
            row[f"{mode}_rate"] = float(np.mean(rates[-3:]))
        result[method] = row
    return result


# ----------------------------------------------------------------- QKR
N_KEYS, N_PAIRS, WIDTH, HEADS = 16, 8, 32, 2


def recall_data(n, seed):
    """Associative recall: 8 (key, value) tokens, then a query key; target its value.

    A token is ``onehot(key) | onehot(value) | is_query`` (33 features).
    """
    rng = np.random.default_rng(seed)
    keys = np.stack([rng.permutation(N_KEYS)[:N_PAIRS] for _ in range(n)])
    values = rng.integers(0, N_KEYS, size=(n, N_PAIRS))
    asked = rng.integers(0, N_PAIRS, size=n)
    X = np.zeros((n, N_PAIRS + 1, 2 * N_KEYS + 1), np.float32)
    rows, slots = np.arange(n)[:, None], np.arange(N_PAIRS)[None]
    X[rows, slots, keys] = 1
    X[rows, slots, N_KEYS + values] = 1
    X[np.arange(n), N_PAIRS, keys[np.arange(n), asked]] = 1
    X[:, N_PAIRS, 2 * N_KEYS] = 1
    return torch.as_tensor(X), torch.as_tensor(values[np.arange(n), asked])


class Recall(nn.Module):
    """Embedding (full precision), one attention layer, head on the query token (full precision)."""

    def __init__(self, bits=None, qk_reparam=True):
        super().__init__()
        self.embed = nn.Linear(2 * N_KEYS + 1, WIDTH)
        self.attention = QKReparamAttention(WIDTH, HEADS, bits=bits, qk_reparam=qk_reparam)
        self.head = nn.Linear(WIDTH, N_KEYS)

    def forward(self, x):
        hidden = self.embed(x)
        return self.head((hidden + self.attention(hidden))[:, -1])


def load_float_weights(model, fp):
    """Copy a full-precision Recall into one with quantised attention."""
    with torch.no_grad():
        model.embed.load_state_dict(fp.embed.state_dict())
        model.head.load_state_dict(fp.head.state_dict())
        for name in ("q", "k", "v", "proj"):
            source, target = getattr(fp.attention, name), getattr(model.attention, name)
            weights = getattr(target, "parametrizations", None)
            (weights.weight.original if weights is not None else target.weight).copy_(source.weight)
            if source.bias is not None:
                target.bias.copy_(source.bias)
    return model


def qkr_recall(seed, *, epochs=10, lr=2e-3, bits=2, n_train=1500):
    """q/k oscillation with separate quantisation against QKR."""
    Xtr, ytr = recall_data(n_train, 0)
    Xte, yte = recall_data(1000, 1)
    torch.manual_seed(seed)
    fp = Recall(bits=None)
    train(fp, Xtr, ytr, epochs, 3e-3, seed + 50)
    result = {"fp_acc": accuracy(fp, Xte, yte)}
    for name, qk_reparam in (("separate", False), ("qkr", True)):
        model = load_float_weights(Recall(bits=bits, qk_reparam=qk_reparam), fp)
        start = accuracy(model, Xte, yte)
        tracker = TrackOscillation().start(model)
        history = train(model, Xtr, ytr, epochs, lr, seed, tracker=tracker)
        per_tensor = [rates for rates, _ in history]
        qk_names = ["attention.qk"] if qk_reparam else ["attention.q.weight", "attention.k.weight"]
        # q and k (or the stacked products) have the same number of weights
        # when heads = 2, so the plain mean is the per-weight rate.
        qk_rate = float(np.mean([[epoch[name] for name in qk_names] for epoch in per_tensor]))
        result[name] = {"acc_start": start, "acc": accuracy(model, Xte, yte), "qk_rate": qk_rate}
    return result


# ------------------------------------------------------------ SignRound
def _fit_float(task, seed):
    torch.manual_seed(seed)
    if task == "digits":
        Xtr, Xte, ytr, yte = digits(seed)
        model, loss = MLP(64, 10, (128, 128)), nn.functional.cross_entropy
    else:
        X, y = make_friedman1(n_samples=2000, n_features=10, noise=0.5, random_state=seed)
        y = (y - y.mean()) / y.std()
        parts = train_test_split(X.astype(np.float32), y.astype(np.float32), test_size=0.4,
                                 random_state=seed)
        Xtr, Xte, ytr, yte = [torch.as_tensor(part) for part in parts]
        model = MLP(10, 1, (64, 64))

        def loss(output, target):
            return nn.functional.mse_loss(output.squeeze(1), target)

    train(model, Xtr, ytr, 60, 1e-3, seed, loss=loss)
    return model.eval(), Xtr, Xte, yte


def _score(task, model, X, y):
    with torch.no_grad():
        output = model(X)
    if task == "digits":
        return float((output.argmax(1) == y).float().mean())
    residual = output.squeeze(1) - y
    return float(1 - residual.pow(2).mean() / y.var(unbiased=False))


def layer_outputs(model, X):
    """Output of every Linear / QuantLinear layer, by name."""
    outputs, handles = {}, []
    for name, module in model.named_modules():
        if type(module).__name__ in ("Linear", "QuantLinear"):
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: outputs.__setitem__(name, out.detach())
            ))
    with torch.no_grad():
        model(X)
    for handle in handles:
        handle.remove()
    return outputs


def signround_vs_rtn(task, seed, bits_list=(2, 3, 4)):
    """Score and per-layer output MSE on held-out rows, RTN against SignRound."""
    model, Xtr, Xte, yte = _fit_float(task, seed)
    reference = layer_outputs(model, Xte)
    result = {"fp": _score(task, model, Xte, yte)}
    for bits in bits_list:
        rtn = rtn_quantize(model, bits=bits)
        start = time.perf_counter()
        rounding = SignRound(bits=bits, random_state=seed).fit(model, Xtr)
        seconds = time.perf_counter() - start
        signround = rounding.quantize(model)
        mse = {}
        for name, quantized in (("rtn", rtn), ("signround", signround)):
            outputs = layer_outputs(quantized, Xte)
            mse[name] = [float((outputs[k] - reference[k]).pow(2).mean()) for k in reference]
        result[bits] = {
            "rtn": _score(task, rtn, Xte, yte),
            "signround": _score(task, signround, Xte, yte),
            "mse_rtn": mse["rtn"],
            "mse_signround": mse["signround"],
            "ratio": [a / b for a, b in zip(mse["rtn"], mse["signround"], strict=True)],
            "seconds": seconds,
        }
    return result


# ---------------------------------------------------------------- tables
def _mean_sd(values, fmt=".4f"):
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():{fmt}} ± {sd:{fmt}}"


def main(seeds=5):
    torch.set_num_threads(1)
    seeds = range(int(seeds))
    start = time.perf_counter()
    print(f"## OFQ on digits, 2-bit weights, {len(seeds)} seeds (mean ± sd)\n")
    runs = [ofq_digits(seed) for seed in seeds]
    print("| quantiser | acc after QAT | osc. rate, last 5 QAT epochs | EMA freq. | "
          "acc after anneal | osc. rate, anneal | acc after CGA | osc. rate, CGA |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("lsq", "statsq"):
        rows = [run[method] for run in runs]
        cells = [_mean_sd([r[key] for r in rows], ".2e" if key in ("rate", "ema") or "_rate" in key
                          else ".4f")
                 for key in ("acc", "rate", "ema", "anneal_acc", "anneal_rate", "cga_acc",
                             "cga_rate")]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\nfull precision: {_mean_sd([run['fp_acc'] for run in runs])}")
    print(f"\n## QKR on associative recall, 2-bit attention weights, {len(seeds)} seeds\n")
    runs = [qkr_recall(seed) for seed in seeds]
    print("| q/k quantisation | acc at start | acc after QAT | q/k osc. rate |")
    print("|---|---|---|---|")
    for name in ("separate", "qkr"):
        rows = [run[name] for run in runs]
        cells = [_mean_sd([r[key] for r in rows], ".2e" if key == "qk_rate" else ".4f")
                 for key in ("acc_start", "acc", "qk_rate")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    ratios = [run["separate"]["qk_rate"] / run["qkr"]["qk_rate"] for run in runs]
    print(f"\nseparate / QKR q-k oscillation per seed: {np.round(ratios, 2).tolist()}; "
          f"full precision acc {_mean_sd([run['fp_acc'] for run in runs])}")
    for task, metric in (("digits", "accuracy"), ("friedman", "R^2")):
        print(f"\n## SignRound vs RTN, {task} ({metric}), {len(seeds)} seeds\n")
        runs = [signround_vs_rtn(task, seed) for seed in seeds]
        print(f"full precision {metric}: {_mean_sd([run['fp'] for run in runs])}\n")
        print(f"| bits | RTN {metric} | SignRound {metric} | MSE ratio RTN/SignRound per layer "
              "(geometric mean, min over seeds) | calibration s |")
        print("|---|---|---|---|---|")
        for bits in (2, 3, 4):
            rows = [run[bits] for run in runs]
            ratio = np.array([r["ratio"] for r in rows])
            geo = np.exp(np.log(ratio).mean(axis=0))
            cells = [
                _mean_sd([r["rtn"] for r in rows]), _mean_sd([r["signround"] for r in rows]),
                " / ".join(
                    f"{g:.1f} (min {m:.1f})" for g, m in zip(geo, ratio.min(axis=0), strict=True)
                ),
                f"{np.mean([r['seconds'] for r in rows]):.2f}",
            ]
            print(f"| {bits} | " + " | ".join(cells) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
