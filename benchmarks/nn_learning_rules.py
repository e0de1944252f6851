"""weightstats.nn.learning_rules: an epoch of holomorphic EP against an epoch of
recurrent backpropagation (the true gradient at the fixed point).

Digits in [0, 1] (1078 training rows), EquilibriumPropagationClassifier with
one hidden layer of 64 and independent feedback weights, batch 32, Adam; the
net is first trained for 3 epochs (the free phase takes longer once the
weights have grown), then one more epoch is timed per rule, alternately:
hEP with N = 4 nudges (two real and one complex nudged phase), with and
without Jacobian homeostasis, against RBP (adjoint iterated to ``tol``).
``overhead`` = ours / RBP, ``ratio`` its inverse.
"""

import copy
import time
import warnings

import numpy as np


def equilibrium_epoch(quick):
    import torch
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from weightstats.nn import EquilibriumPropagationClassifier

    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split((X / 16).astype(np.float32), y, test_size=0.4,
                                              stratify=y, random_state=0)
    if quick:
        X_train, y_train = X_train[:300], y_train[:300]
    settings = dict(hidden_layer_sizes=(64,), optimizer=torch.optim.Adam, lr=3e-3,
                    batch_size=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        base = EquilibriumPropagationClassifier(max_epochs=3, **settings).fit(X_train, y_train)
    variants = {
        "hEP, N=4": dict(learning_rule="hep", homeostasis=0.0),
        "hEP, N=4, homeostasis 0.5": dict(learning_rule="hep", homeostasis=0.5),
        "RBP": dict(learning_rule="rbp", homeostasis=0.0),
    }

    def epoch(params):
        net = copy.deepcopy(base).set_params(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            net.partial_fit(X_train, y_train, epochs=1)
            return time.perf_counter() - start

    repeat = 1 if quick else 3
    times = {name: [] for name in variants}
    for _ in range(repeat):
        for name, params in variants.items():
            times[name].append(epoch(params))
    rbp = min(times["RBP"])
    rows = []
    for name in ("hEP, N=4", "hEP, N=4, homeostasis 0.5"):
        ours = min(times[name])
        rows.append({"case": f"one epoch, {name}, digits n={len(y_train)}, hidden 64",
                     "ours_s": round(ours, 3), "peer": "one epoch of RBP", "peer_s": round(rbp, 3),
                     "ratio": round(rbp / ours, 3), "overhead": round(ours / rbp, 3)})
    return rows


BENCHMARKS = {"equilibrium_epoch": equilibrium_epoch}
