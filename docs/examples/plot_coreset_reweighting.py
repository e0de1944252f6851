"""
Coreset reweighting: learn weights on a few points, copy them to all
====================================================================

:class:`weightstats.reweighting.CoresetReweighter` selects a small coreset,
learns a weight for each coreset point that minimises a validation loss, and
gives every sample the weight of its nearest coreset point. On an imbalanced
three-class problem with a balanced validation set the learned weights
up-weight the rare classes and move the decision boundaries towards the
frequent class.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from weightstats.reweighting import CoresetReweighter

centers = [[0, 0], [2.5, 0.5], [1.0, 2.5]]
X, y = make_blobs([1500, 120, 60], centers=centers, cluster_std=1.0, random_state=0)
X_val, y_val = make_blobs([40, 40, 40], centers=centers, cluster_std=1.0, random_state=1)
X_test, y_test = make_blobs([500, 500, 500], centers=centers, cluster_std=1.0, random_state=2)

unweighted = LogisticRegression().fit(X, y)
model = CoresetReweighter(LogisticRegression(), coreset_size=0.05, random_state=0)
model.fit(X, y, X_val=X_val, y_val=y_val)
for name, m in [("unweighted", unweighted), ("coreset-reweighted", model)]:
    score = balanced_accuracy_score(y_test, m.predict(X_test))
    print(f"{name:>20}: balanced test accuracy {score:.3f}")

# %%
# Left: the moderate coreset (black rings: per class, the points at middling
# distance from the class median). Right: the propagated weights (colour, log
# scale) and the two decision boundaries.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
axes[0].scatter(*X.T, c=y, s=6, cmap="viridis", alpha=0.5)
core = model.coreset_indices_
axes[0].scatter(*X[core].T, s=40, facecolors="none", edgecolors="k")
axes[0].set_title(f"{len(core)} coreset points")
on_top = np.argsort(model.sample_weights_)  # draw the (rare, heavy) points last
points = axes[1].scatter(*X[on_top].T, c=np.log(model.sample_weights_[on_top]), s=6,
                         cmap="coolwarm")
fig.colorbar(points, ax=axes[1], label="log weight")
grid = np.stack(np.meshgrid(np.linspace(*axes[1].get_xlim(), 300),
                            np.linspace(*axes[1].get_ylim(), 300)))
for m, style in ((unweighted, "--"), (model, "-")):
    labels = m.predict(grid.reshape(2, -1).T).reshape(grid.shape[1:])
    axes[1].contour(grid[0], grid[1], labels, levels=[0.5, 1.5], colors="k", linestyles=style)
axes[1].set_title("weights; unweighted (--) and reweighted (-) fit")
plt.show()
