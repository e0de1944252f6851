"""weightstats.nn.robust: cost of a training step with AWP / RWP against plain
adversarial training, and of the poisoning audit.

* one PGD-10 adversarial training step (batch 64 of digits, MLP
  64-256-256-10, SGD) with AWP (one ascent step) and RWP (ten ascent steps)
  against the same step without weight perturbation (``overhead`` = ours /
  plain AT, ``ratio`` its inverse); the plain step against a standard
  (non-adversarial) step for scale;
* :func:`~weightstats.nn.scan_for_triggers` over a 300-token vocabulary
  (500 documents, EmbeddingBagClassifier).

Calls are timed alternately with their peer; the times are the best of
each, the overhead the median ratio of neighbouring calls.
"""

import time

import numpy as np

from ._timing import overhead_row, paired_best






def adversarial_training_step(quick):
    import torch
    from sklearn.datasets import load_digits

    from weightstats.nn import MLP, AdversarialTraining

    X, y = load_digits(return_X_y=True)
    X = torch.as_tensor(X[:64] / 16, dtype=torch.float32)
    y = torch.as_tensor(y[:64])
    torch.manual_seed(0)
    model = MLP(64, 10, (256, 256))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the same weights each call
    steps = {name: AdversarialTraining(eps=0.1, weight_perturbation=name, bounds=(0, 1))
             .initialize() for name in (None, "awp", "rwp")}

    def step(name):
        return lambda: steps[name].train_step(model, optimizer, X, y)

    def standard():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()

    repeat = 5 if quick else 30
    rows = []
    for name in ("awp", "rwp"):
        ours, peer, overhead = paired_best(step(name), step(None), repeat)
        rows.append(overhead_row(f"PGD-10 step with {name.upper()}, MLP 64-256-256-10, batch 64", ours,
                         "the same step without weight perturbation", peer, overhead))
    ours, peer, overhead = paired_best(step(None), standard, repeat)
    rows.append(overhead_row("PGD-10 adversarial step (plain AT), same net and batch", ours,
                     "a standard training step", peer, overhead))
    return rows


def trigger_scan(quick):
    import torch

    from weightstats.nn import EmbeddingBagClassifier, scan_for_triggers

    rng = np.random.default_rng(0)
    X = rng.integers(1, 300, size=(500, 30))
    y = rng.integers(0, 2, 500)
    torch.manual_seed(0)
    model = EmbeddingBagClassifier(300, 2, 32)
    with torch.no_grad():
        y = model(torch.as_tensor(X)).argmax(1).numpy()  # every row "correct"
    repeat = 2 if quick else 5
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        scan_for_triggers(model, X, y, vocabulary=range(1, 300))
        times.append(time.perf_counter() - start)
    return [{"case": "scan_for_triggers, 299 tokens x 500 documents of 30 tokens",
             "ours_s": round(min(times), 4)}]


BENCHMARKS = {
    "adversarial_training_step": adversarial_training_step,
    "trigger_scan": trigger_scan,
}
