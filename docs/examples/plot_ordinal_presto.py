"""
Rare ordinal outcomes with PRESTO
=================================

PRESTO fits one slope vector per decision boundary of an ordinal outcome and
shrinks the differences between adjacent boundaries to zero with an L1
penalty, so a rare last class borrows strength from the common ones. This
example draws the sparse-differences design of Faletto and Bien (2023),
chooses the penalty by cross-validation, and compares the rare-class
probabilities with the proportional-odds model and with logistic regression of
the rare class against the rest.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from weightstats.datasets import make_relaxed_proportional_odds
from weightstats.ordinal import PRESTOClassifierCV, ProportionalOddsClassifier

sim = make_relaxed_proportional_odds(2500, random_state=3)
X, y = sim.data, sim.target
print("class counts:", np.bincount(y))

presto = PRESTOClassifierCV().fit(X, y)
po = ProportionalOddsClassifier().fit(X, y)
logit = LogisticRegression(C=np.inf, max_iter=1000).fit(X, y == 3)
print(f"alpha_ = {presto.alpha_:.4f} (alpha_max = {presto.alpha_max_:.4f})")

# %%
# The cross-validated Brier score along the path (largest penalty first), and
# the slopes of the rare-class boundary: at ``alpha_max`` they equal the
# proportional-odds slopes; below it the boundary-specific differences enter.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
presto.plot_cv(ax=axes[0])
presto.plot_path(ax=axes[1])
axes[1].legend(ncol=2, fontsize="x-small")
plt.show()

# %%
# Estimated against true differences between adjacent boundaries. The penalty
# sets most of them exactly to zero; the large true differences survive.
true_diff = np.diff(sim.coef, axis=0)
est_diff = np.diff(presto.coef_, axis=0)
fig, ax = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
for k, marker in enumerate("os"):
    ax.scatter(true_diff[k], est_diff[k], marker=marker, label=f"boundary {k + 2} - {k + 1}")
ax.axline((0, 0), slope=1, color="grey", lw=1)
ax.set_xlabel("true difference")
ax.set_ylabel("PRESTO estimate")
ax.legend()
plt.show()

# %%
# The rare-class probabilities against the truth (the paper's metric is their
# mean squared error).
truth = sim.proba[:, -1]
estimates = {
    "PRESTO": presto.predict_proba(X)[:, -1],
    "proportional odds": po.predict_proba(X)[:, -1],
    "logistic (rare vs rest)": logit.predict_proba(X)[:, 1],
}
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True, constrained_layout=True)
for ax, (name, p) in zip(axes, estimates.items(), strict=True):
    ax.scatter(truth, p, s=4, alpha=0.4)
    ax.axline((0, 0), slope=1, color="grey", lw=1)
    ax.set_title(f"{name}\nMSE = {np.mean((p - truth) ** 2):.2e}")
    ax.set_xlabel("true P(Y = 4)")
axes[0].set_ylabel("estimated P(Y = 4)")
plt.show()
