"""weightstats.nn.sparse: training overhead of sparse momentum and ST-3 against
dense training; pruning and reporting a 10M-parameter model.

Peers:

* dense training of the same net (same data, epochs, batch size, optimizer,
  seed) without the callback: the overhead ratio is ours / dense per epoch.
  Timed as the process's CPU time (one torch thread): on a shared machine
  the wall time of these short fits mostly measures the other jobs;
* ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured`` for
  one-shot global magnitude pruning of a 10M-parameter MLP (ours ranks with
  a NumPy partial sort and writes the masks with ``custom_from_mask``).
"""

import time

import numpy as np

from ._timing import best_time

__all__ = ["BENCHMARKS"]


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _interleaved(funcs, repeat):
    """Least CPU time of each function over ``repeat`` rounds, the functions interleaved.

    CPU time of this process (one thread) rather than wall time, and
    interleaving, so that other jobs on the machine weigh on all alike.
    """
    times = {name: [] for name in funcs}
    for func in funcs.values():
        func()
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.process_time()
            func()
            times[name].append(time.process_time() - start)
    return {name: min(values) for name, values in times.items()}


def _digits_cnn():
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        """Two 3x3 convolutions (16, 32 channels) and a linear head on 8x8 digits."""

        def __init__(self, n_features=64, n_outputs=10):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                nn.Flatten(),
            )
            self.head = nn.Linear(32 * 64, n_outputs)

        def forward(self, X):
            return self.head(self.body(X.reshape(-1, 1, 8, 8)))

    torch.manual_seed(0)
    return DigitsCNN


def training_overhead(quick):
    """Per-epoch time with each sparse-training callback over dense training."""
    from weightstats.nn import (
        MLP,
        GradualMagnitudePruning,
        NeuralNetClassifier,
        SoftThresholdSparsity,
        SparseMomentum,
    )

    X, y = _digits()
    epochs = 3 if quick else 10
    mlp = {"module": MLP, "module__hidden_units": (300, 100)}
    cases = [("digits n=1797, MLP 64-300-100-10, batch 100", X, y, mlp, 100)]
    if not quick:
        cnn = {"module": _digits_cnn()}
        cases.append(("digits n=1797, CNN conv16-conv32-linear, batch 100", X, y, cnn, 100))
        rng = np.random.default_rng(0)
        Xw = rng.standard_normal((2048, 256)).astype(np.float32)
        yw = (Xw[:, :10].argmax(axis=1)).astype(np.int64)
        wide = {"module": MLP, "module__hidden_units": (512, 512)}
        cases.append(("synthetic n=2048, MLP 256-512-512-10, batch 128", Xw, yw, wide, 128))
    makers = {
        "SparseMomentum(density=0.1)": lambda: SparseMomentum(density=0.1),
        "SoftThresholdSparsity(0.9) (ST-3)": lambda: SoftThresholdSparsity(final_sparsity=0.9),
        "GradualMagnitudePruning(0.9)": lambda: GradualMagnitudePruning(final_sparsity=0.9),
    }
    rows = []
    for case, Xc, yc, module, batch in cases:

        def fit(make=None, Xc=Xc, yc=yc, module=module, batch=batch):
            net = NeuralNetClassifier(
                lr=0.05, optimizer__momentum=0.9, max_epochs=epochs, batch_size=batch,
                random_state=0, callbacks=None if make is None else [make()], **module,
            )
            return net.fit(Xc, yc)

        funcs = {"dense": fit, **{name: (lambda make=make: fit(make)) for name, make in makers.items()}}
        best = _interleaved(funcs, repeat=2 if quick else 5)
        for name in makers:
            rows.append(
                {
                    "case": f"{case}, {epochs} epochs: {name}",
                    "ours_s": round(best[name], 3),
                    "peer": "dense training",
                    "peer_s": round(best["dense"], 3),
                    "ratio": round(best["dense"] / best[name], 2),
                    "overhead": round(best[name] / best["dense"], 2),
                }
            )
    return rows


def _big_mlp():
    import torch

    from weightstats.nn import MLP

    torch.manual_seed(0)
    # 512*4096 + 4096*2048 + 2048*512 + 512*100 weights: 11.6M parameters.
    return MLP(512, 100, hidden_units=(4096, 2048, 512))


def pruning_10m(quick):
    """One-shot global magnitude pruning and the report on a ~10M-parameter MLP."""
    import torch
    from torch.nn.utils import prune

    from weightstats.nn import magnitude_prune, sparsity_report

    model = _big_mlp()
    n_params = sum(p.numel() for p in model.parameters())
    base = {k: v.clone() for k, v in model.state_dict().items()}

    def fresh():
        m = _big_mlp()
        m.load_state_dict(base)
        return m

    def ours():
        magnitude_prune(fresh(), 0.9, scope="global")

    def peer():
        m = fresh()
        layers = [(layer, "weight") for layer in m.modules() if isinstance(layer, torch.nn.Linear)]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.9)

    def build():
        fresh()

    repeat = 1 if quick else 3
    build_s = best_time(build, repeat=repeat)
    ours_s = best_time(ours, repeat=repeat) - build_s
    peer_s = best_time(peer, repeat=repeat) - build_s
    pruned = magnitude_prune(fresh(), 0.9, scope="global")
    report_s = best_time(sparsity_report, pruned, repeat=repeat)
    return [
        {
            "case": f"MLP 512-4096-2048-512-100 ({n_params / 1e6:.1f}M parameters), global 90 %",
            "ours_s": round(ours_s, 3),
            "peer": "prune.global_unstructured(L1Unstructured)",
            "peer_s": round(peer_s, 3),
            "ratio": round(peer_s / ours_s, 2),
        },
        {
            "case": f"sparsity_report of that pruned model ({n_params / 1e6:.1f}M parameters)",
            "ours_s": round(report_s, 3),
        },
    ]


BENCHMARKS = {
    "sparse_training_overhead": training_overhead,
    "sparse_pruning_10m": pruning_10m,
}
