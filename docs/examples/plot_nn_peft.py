"""
Adapters on a frozen digits network
===================================

**Adapters.** A small network is trained on digits (pixels scaled to
``[-0.5, 0.5]``), then frozen; the new task is the same digits with
*inverted pixels* (``1 - x``, i.e. ``-x`` after centring), which the
frozen features handle badly. We fine-tune only a classifier head
(``Freezer``), or the head plus adapters in both hidden layers through the
:class:`~weightstats.nn.AdapterTuning` callback: Bone and Bat
(:class:`~weightstats.nn.BoneLinear`, block size 8), LoRA (rank 5),
Compacter (:class:`~weightstats.nn.CompacterAdapter`, bottleneck 16,
``n=4``) and a dense bottleneck adapter of the same shape; full
fine-tuning is the ceiling. Three seeds (pre-training and fine-tuning).
See the :ref:`user guide <nn_peft>` for the rules.
"""

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Freezer

from weightstats.nn import (
    AdapterTuning,
    NeuralNetClassifier,
    adapter_summary,
    merge_adapters,
)

torch.set_num_threads(1)
start = time.perf_counter()
X, y = load_digits(return_X_y=True)
X = (X / 16 - 0.5).astype(np.float32)  # centred: inverting the pixels negates x
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
pretraining = dict(optimizer=torch.optim.Adam, lr=3e-3, max_epochs=20, batch_size=64)
tuning = dict(pretraining, lr=5e-3, max_epochs=30)

# %%
# Pre-train on the original digits, then fine-tune on inverted pixels with
# comparable trainable-parameter budgets (the head's 1,290 parameters
# included everywhere).
hidden = ["body.0", "body.2"]
methods = {
    "head only": None,
    "Bone r=8": ("bone", {"r": 8}),
    "Bat r=8": ("bat", {"r": 8}),
    "LoRA r=5": ("lora", {"r": 5}),
    "Compacter n=4": ("compacter", {"reduction": 8, "n": 4}),
    "dense adapter": ("adapter", {"reduction": 8}),
    "full fine-tuning": "full",
}
rows = []
for seed in range(3):
    pretrained = NeuralNetClassifier(module__hidden_units=(128, 128), random_state=seed,
                                     **pretraining).fit(X_train, y_train).module_
    for name, method in methods.items():
        if method is None:
            callbacks = [Freezer(lambda param: not param.startswith("head"))]
        elif method == "full":
            callbacks = []
        else:
            kind, params = method
            callbacks = [AdapterTuning(kind, hidden, adapter_params=params,
                                       trainable_modules=["head"])]
        # A net trains a module instance in place: give it a copy (AdapterTuning
        # copies the module itself before adding adapters).
        net = NeuralNetClassifier(copy.deepcopy(pretrained), callbacks=callbacks,
                                  random_state=100 + seed, **tuning).fit(-X_train, y_train)
        trainable = sum(p.numel() for p in net.module_.parameters() if p.requires_grad)
        rows.append({"method": name, "seed": seed, "trainable": trainable,
                     "accuracy": net.score(-X_test, y_test)})
adapters = pd.DataFrame(rows)
table = adapters.groupby("method", sort=False).agg(
    trainable=("trainable", "first"), mean=("accuracy", "mean"), sd=("accuracy", "std"))
print(table.round(3).to_string())
print(adapters.pivot(index="method", columns="seed", values="accuracy").round(3).to_string())

# %%
# The last fine-tuned adapter net, merged: the adapters disappear into the
# weights and predictions do not change (Compacter and the dense adapter are
# nonlinear and cannot be merged; Bone, Bat and LoRA can).
net = NeuralNetClassifier(pretrained, random_state=0, callbacks=[
    AdapterTuning("bat", hidden, adapter_params={"r": 8}, trainable_modules=["head"])],
    **tuning).fit(-X_train, y_train)
print(adapter_summary(net.module_))
before = net.predict_proba(-X_test)
merge_adapters(net.module_)
print("largest change of a probability after merging:",
      f"{np.abs(net.predict_proba(-X_test) - before).max():.1e}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(table.index[::-1], table["mean"][::-1], xerr=table["sd"][::-1], color="C0")
for i, (count, acc) in enumerate(zip(table["trainable"][::-1], table["mean"][::-1], strict=True)):
    ax.text(acc - 0.01, i, f"{count:,} params", va="center", ha="right", color="white",
            fontsize=8)
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("test accuracy on inverted digits (mean, sd over 3 seeds)")
fig.tight_layout()
print(f"total time {time.perf_counter() - start:.0f} s")
