"""
Weight compander on 200 training digits
=======================================

With only 200 training digits a wide network (64-256-256-10) fits the
training rows perfectly. :class:`~weightstats.nn.WeightCompanding` passes
every weight through ``w = a tanh(g v / a)`` (odd, increasing, bounded by
``a``, slope ``g`` at zero; ``a`` and ``g`` learned per layer). We compare
test accuracy, the largest ``|w|`` and the share of near-zero weights with
and without the compander and weight decay, over three seeds. See the
:ref:`user guide <nn_peft>` for the function (our construction: the
paper's exact function was not available).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from weightstats.nn import NeuralNetClassifier, WeightCompanding

torch.set_num_threads(1)
start = time.perf_counter()
X, y = load_digits(return_X_y=True)
X_small, X_rest, y_small, y_rest = train_test_split(
    (X / 16).astype(np.float32), y, train_size=200, stratify=y, random_state=0
)


def linear_weights(module):
    return torch.cat([m.weight.detach().flatten() for m in module.modules()
                      if isinstance(m, torch.nn.Linear)])


# %%
# SGD with momentum for 60 epochs, with or without the compander (default
# gain 2, bound twice each layer's initial largest weight, both learned) and
# weight decay 5e-4.
rows, weights = [], {}
for companded in (False, True):
    for decay in (0.0, 5e-4):
        for seed in range(3):
            net = NeuralNetClassifier(
                module__hidden_units=(256, 256), lr=0.05, optimizer__momentum=0.9,
                optimizer__weight_decay=decay, max_epochs=60, batch_size=32,
                random_state=seed, callbacks=[WeightCompanding()] if companded else [],
            ).fit(X_small, y_small)
            w = linear_weights(net.module_).abs()
            rows.append({"compander": companded, "weight decay": decay,
                         "train accuracy": net.score(X_small, y_small),
                         "accuracy": net.score(X_rest, y_rest), "max |w|": w.max().item(),
                         "share |w| < 1e-3": (w < 1e-3).float().mean().item()})
            weights[companded, decay] = linear_weights(net.module_).numpy()
compander = pd.DataFrame(rows).groupby(["compander", "weight decay"]).agg(["mean", "std"])
print(compander.round(4).to_string())

# %%
# The bound and gain each layer learned (last net: compander, weight decay).
for name, layer in net.module_.named_modules():
    if hasattr(layer, "parametrizations"):
        print(name, layer.parametrizations.weight[0])

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
for (companded, decay), label in [((False, 0.0), "plain"), ((True, 0.0), "compander")]:
    ax.hist(weights[companded, decay], bins=120, range=(-0.45, 0.45), histtype="step",
            density=True, label=label)
ax.set_xlabel("weight (all linear layers, seed 2, no weight decay)")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
print(f"total time {time.perf_counter() - start:.0f} s")
