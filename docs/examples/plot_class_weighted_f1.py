"""
Class-weighted F1: where dodrans and entropy sit between macro and micro
========================================================================

Per-class F1 scores can be averaged with any class weights. Macro gives every
class weight 1, support-weighted gives weight ``n_c``; Harbecke et al. (2022)
add *dodrans* (``n_c ** 0.75``) and *entropy* (``-n_c log(n_c / N)``). This
example shows the weights as a function of class size and the resulting
averages on an imbalanced relation-classification-like problem, using
:func:`weightstats.metrics.class_weighted_f1_score`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from weightstats.metrics import class_weighted_f1_score, class_weights

relations = ["no_relation", "per:title", "org:member_of", "per:employer",
             "per:city_of_birth", "org:dissolved"]
support = [700, 160, 80, 40, 15, 5]
recall = [0.95, 0.85, 0.7, 0.55, 0.4, 0.2]
rng = np.random.default_rng(0)
y_true = np.repeat(relations, support)
y_pred = y_true.copy()
for relation, r in zip(relations, recall, strict=True):
    rows = np.flatnonzero(y_true == relation)
    missed = rng.choice(rows, int(round((1 - r) * len(rows))), replace=False)
    y_pred[missed] = (rng.choice(relations[1:], len(missed)) if relation == "no_relation"
                      else "no_relation")

# %%
# Class weights of each scheme (normalised to sum to one). Entropy gives the
# most weight to mid-sized classes: ``-p log p`` peaks at ``p = 1/e``.
schemes = ["macro", "entropy", "dodrans", "weighted"]
weights = pd.DataFrame({s: class_weights(y_true, scheme=s, labels=relations) for s in schemes},
                       index=relations)
print(weights.round(3))

# %%
# Per-class F1 and the averages.
per_class = pd.Series(f1_score(y_true, y_pred, labels=relations, average=None), index=relations)
averages = pd.Series({s: class_weighted_f1_score(y_true, y_pred, scheme=s)
                      for s in ["macro", "entropy", "dodrans", "weighted", "micro"]})
print(averages.round(3))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
weights.plot.bar(ax=ax1, rot=30)
ax1.set_ylabel("class weight")
ax1.set_title("weights by scheme")
per_class.plot.bar(ax=ax2, color="0.7", rot=30, label="per-class F1")
colors = plt.cm.tab10.colors[:len(averages)]
for (name, value), color in zip(averages.items(), colors, strict=True):
    ax2.axhline(value, color=color, label=f"{name} {value:.2f}")
ax2.set_ylim(0, 1)
ax2.set_title("per-class F1 and its averages")
ax2.legend(fontsize=8, loc="lower left")
plt.show()
