"""weightstats.nn: training overhead against skorch and a plain torch loop;
EL2N re-scoring cost; Model Stock on a large state dict against a direct
torch implementation of the same rule (mergekit's formula).

Peers:

* ``skorch.NeuralNetClassifier`` with the same module, loss, optimizer,
  batch size and epochs (ours adds validation, per-row losses and weights,
  seeding, and fetches whole batches by one fancy index instead of per-row
  ``__getitem__`` + collation);
* a hand-written torch loop (the floor: no framework at all);
* Model Stock written directly in torch (float32, per tensor), against ours
  (NumPy float64 arithmetic, converted back).
"""

import numpy as np

from ._timing import best_time


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def training_overhead(quick):
    import skorch
    import torch

    from weightstats.nn import MLP, NeuralNetClassifier

    X, y = _digits()
    epochs = 3 if quick else 10
    params = dict(lr=0.05, max_epochs=epochs, batch_size=64)

    def ours(weighted=False):
        net = NeuralNetClassifier(module__hidden_units=(128, 128), random_state=0, **params)
        return net.fit(X, y, sample_weight=np.ones(len(y)) if weighted else None)

    def peer():
        return skorch.NeuralNetClassifier(
            MLP, module__n_features=64, module__n_outputs=10, module__hidden_units=(128, 128),
            criterion=torch.nn.CrossEntropyLoss, train_split=None, verbose=0,
            iterator_train__shuffle=True, **params,
        ).fit(X, y)

    def plain():
        torch.manual_seed(0)
        model = MLP(64, 10, (128, 128))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
        for _ in range(epochs):
            order = torch.randperm(len(yt))
            for start in range(0, len(yt), 64):
                rows = order[start : start + 64]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(Xt[rows]), yt[rows]).backward()
                optimizer.step()
        return model

    ours_s = best_time(ours)
    weighted_s = best_time(ours, weighted=True)
    rows = []
    for name, func in [("skorch.NeuralNetClassifier", peer), ("plain torch loop", plain)]:
        peer_s = best_time(func)
        rows.append(
            {
                "case": f"digits n=1797, MLP 64-128-128-10, {epochs} epochs",
                "ours_s": round(ours_s, 3),
                "ours_weighted_s": round(weighted_s, 3),
                "peer": name,
                "peer_s": round(peer_s, 3),
                "ratio": round(peer_s / ours_s, 2),
            }
        )
    return rows


def el2n_rescoring(quick):
    from weightstats.nn import ActiveSubsetSampler, DynamicDataPruning, NeuralNetClassifier

    X, y = _digits()
    epochs = 6 if quick else 20

    def run(keep):
        callbacks, extra = [], {}
        if keep < 1:
            callbacks = [DynamicDataPruning(keep=keep, warmup_epochs=3, period=3)]
            extra = {"iterator_train__sampler": ActiveSubsetSampler()}
        return NeuralNetClassifier(
            module__hidden_units=(128, 128), lr=0.05, max_epochs=epochs, batch_size=64,
            random_state=0, callbacks=callbacks, **extra,
        ).fit(X, y)

    full_s = best_time(run, 1.0, repeat=2)
    pruned_s = best_time(run, 0.5, repeat=2)
    return [
        {
            "case": f"keep 50 % vs all rows, {epochs} epochs (scoring included)",
            "ours_s": round(pruned_s, 3),
            "peer": "full-data training",
            "peer_s": round(full_s, 3),
            "ratio": round(full_s / pruned_s, 2),
        }
    ]


def model_stock_state_dict(quick):
    import torch

    from weightstats.nn import model_stock

    width = 512 if quick else 2048
    torch.manual_seed(0)
    base = {f"layer{k}.weight": torch.randn(width, width) for k in range(4)}
    tuned = [{k: v + 0.01 * torch.randn_like(v) for k, v in base.items()} for _ in range(3)]

    def direct():  # the rule written in torch, float32, as mergekit does
        merged = {}
        for key, w0 in base.items():
            offsets = [m[key].flatten() - w0.flatten() for m in tuned]
            cos = [
                torch.dot(offsets[i], offsets[j]) / (offsets[i].norm() * offsets[j].norm())
                for i in range(len(offsets))
                for j in range(i + 1, len(offsets))
            ]
            c = torch.stack(cos).mean()
            t = len(tuned) * c / (1 + (len(tuned) - 1) * c)
            merged[key] = t * sum(m[key] for m in tuned) / len(tuned) + (1 - t) * w0
        return merged

    ours_s = best_time(model_stock, base, tuned)
    peer_s = best_time(direct)
    diff = max(
        float((model_stock(base, tuned)[k] - direct()[k]).abs().max()) for k in base
    )
    return [
        {
            "case": (
                f"4 tensors {width}x{width}, 3 fine-tunes ({4 * width * width / 1e6:.0f}M params)"
            ),
            "ours_s": round(ours_s, 3),
            "peer": "direct torch float32",
            "peer_s": round(peer_s, 3),
            "ratio": round(peer_s / ours_s, 2),
            "max_abs_diff": diff,
        }
    ]


BENCHMARKS = {
    "training_overhead": training_overhead,
    "el2n_rescoring": el2n_rescoring,
    "model_stock_state_dict": model_stock_state_dict,
}


def _collect_subpackage_benchmarks():
    """Add the ``BENCHMARKS`` of every ``benchmarks/nn_<subpackage>.py`` module.

    Each ``weightstats.nn`` subpackage keeps its benchmarks in its own module,
    and all of them run as the one group ``python -m benchmarks nn``.
    """
    import importlib
    import pkgutil
    from pathlib import Path

    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("nn_"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            BENCHMARKS.update(module.BENCHMARKS)


_collect_subpackage_benchmarks()
