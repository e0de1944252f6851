"""
Long-tailed digits: logit adjustment and weight balancing
=========================================================

Train a small network on digits where class ``c`` keeps
``100 * 50^(-c/9)`` training rows (100 zeros, 2 nines) and look at the
recall of every class on a balanced test set. A plain cross-entropy network
sacrifices the rare classes; post-hoc logit adjustment
(``logit_adjustment="additive"`` of
:class:`weightstats.nn.WeightBalancingClassifier`) trades a little
head-class recall for much better tail recall, without retraining. The
default one-stage weight-balancing recipe (ETF classifier, feature
regulariser, weight decay, additive adjustment) is shown for comparison.
See the :ref:`user guide <nn>` for the rules and the multi-seed tables.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import recall_score
from skorch.callbacks import LRScheduler

from weightstats.nn import WeightBalancingClassifier

X_all, y_all = load_digits(return_X_y=True)
X_all = (X_all / 16).astype(np.float32)
rng = np.random.default_rng(0)
train, test = [], []
for c in range(10):
    rows = rng.permutation(np.flatnonzero(y_all == c))
    test.extend(rows[:60])
    train.extend(rows[60 : 60 + int(round(100 * 50 ** (-c / 9)))])
X, y, X_test, y_test = X_all[train], y_all[train], X_all[test], y_all[test]
print("training rows per class:", np.bincount(y))

# %%
# A cross-entropy baseline (linear head, no regulariser, no weight decay) and
# the one-stage weight-balancing recipe, both with a linear learning-rate decay.
epochs = 60


def decay():
    return LRScheduler(
        policy=torch.optim.lr_scheduler.LinearLR, start_factor=1.0, end_factor=0.05,
        total_iters=epochs,
    )


common = dict(
    module__hidden_units=(128,), lr=0.05, max_epochs=epochs, batch_size=64, random_state=0
)
ce = WeightBalancingClassifier(
    feature_reg=0.0, logit_adjustment=None, module__head="linear", optimizer__weight_decay=0.0,
    callbacks=[decay()], **common,
).fit(X, y)
wb = WeightBalancingClassifier(callbacks=[decay()], **common).fit(X, y)

# %%
# Logit adjustment is a prediction-time switch: the same trained network.
recalls = {}
recalls["cross-entropy"] = recall_score(y_test, ce.predict(X_test), average=None)
ce.set_params(logit_adjustment="additive")
recalls["cross-entropy + logit adjustment"] = recall_score(y_test, ce.predict(X_test), average=None)
recalls["one-stage weight balancing"] = recall_score(y_test, wb.predict(X_test), average=None)
for name, r in recalls.items():
    print(f"{name:34s} balanced accuracy {r.mean():.3f}   recall of 7-9 {r[-3:].mean():.3f}")

fig, ax = plt.subplots(figsize=(8, 3.5), constrained_layout=True)
width = 0.27
for k, (name, r) in enumerate(recalls.items()):
    ax.bar(np.arange(10) + (k - 1) * width, r, width, label=name)
ax.set_xticks(range(10), [f"{c}\n({n})" for c, n in enumerate(np.bincount(y))])
ax.set_xlabel("class (training rows)")
ax.set_ylabel("test recall")
ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
plt.show()
