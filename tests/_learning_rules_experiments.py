"""The CPU experiment of weightstats.nn.learning_rules (shared by the slow test).

Run ``python -m tests._learning_rules_experiments`` for the table of the
user guide (``docs/user_guide/nn_learning_rules.rst``); the slow test in
``tests/test_nn_learning_rules.py`` runs the quick protocol on three seeds
and asserts what holds on every seed.

:func:`equilibrium_digits`: digits in [0, 1] (60/40 stratified split per
seed), :class:`EquilibriumPropagationClassifier` with one hidden layer and
independent forward and feedback weights, holomorphic EP (N = 4 nudges,
|beta| = 0.5), Adam, with and without Jacobian homeostasis (coefficient
0.5). After every epoch: the Jacobian symmetry ``s / (s + a)`` and the
cosine between the hEP gradient and the true gradient (recurrent
backpropagation, adjoint iterated to convergence) on 256 fixed training
rows; at the end the test accuracy.
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from weightstats.nn import EquilibriumPropagationClassifier

FULL = dict(n_train=None, hidden=(64,), epochs=12)
QUICK = dict(n_train=500, hidden=(32,), epochs=5)


def _flat_gradient(module, X, y, **kwargs):
    module.zero_grad()
    module.accumulate_gradients(X, y, **kwargs)
    grads = torch.cat([p.grad.flatten() for name, p in module.named_parameters()
                       if not name.startswith("readout")])
    module.zero_grad()
    return grads


class GradientAlignment(Callback):
    """Records ``gradient_cosine``: hEP against recurrent backpropagation, per epoch.

    The readout is left out: both rules give it the same exact gradient.
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def on_epoch_end(self, net, **kwargs):
        X = torch.as_tensor(self.X, dtype=torch.float32)
        y = torch.as_tensor(net._encode_target(self.y))
        hep = _flat_gradient(net.module_, X, y, rule="hep", beta=net.beta,
                             n_nudges=net.n_nudges, n_nudged_steps=net.n_nudged_steps)
        true = _flat_gradient(net.module_, X, y, rule="rbp", n_nudged_steps=2000)
        net.history.record("gradient_cosine", float(hep @ true / (hep.norm() * true.norm())))


def equilibrium_digits(seeds=(0, 1, 2), quick=False, homeostasis=(0.0, 0.5)):
    """One row per (seed, homeostasis): accuracy, symmetry and gradient cosines."""
    setting = QUICK if quick else FULL
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    rows = []
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.4, stratify=y, random_state=seed)
        if setting["n_train"]:
            X_train, y_train = X_train[:setting["n_train"]], y_train[:setting["n_train"]]
        for coefficient in homeostasis:
            net = EquilibriumPropagationClassifier(
                hidden_layer_sizes=setting["hidden"], homeostasis=coefficient,
                optimizer=torch.optim.Adam, lr=3e-3, batch_size=32,
                max_epochs=setting["epochs"], random_state=seed,
                callbacks=[GradientAlignment(X_train[:256], y_train[:256])],
            )
            start = time.perf_counter()
            net.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            cosines = np.array(net.history[:, "gradient_cosine"])
            rows.append({
                "seed": seed,
                "homeostasis": coefficient,
                "accuracy": net.score(X_test, y_test),
                "symmetry": net.history[-1, "jacobian_symmetry"],
                "mean_cosine": float(cosines.mean()),
                "final_cosine": float(cosines[-1]),
                "free_steps": net.history[-1, "free_steps"],
                "unsettled": net.history[-1, "unsettled"],
                "seconds": seconds,
            })
    return pd.DataFrame(rows)


if __name__ == "__main__":
    torch.set_num_threads(1)
    quick = "--quick" in sys.argv
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        table = equilibrium_digits(quick=quick)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
        summary = table.groupby("homeostasis")[["accuracy", "symmetry", "mean_cosine",
                                                "final_cosine", "seconds"]]
        print(summary.agg(["mean", "std"]).round(3).to_string())
