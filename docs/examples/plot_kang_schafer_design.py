"""
The Kang-Schafer design: why weighting is needed
================================================

Kang and Schafer's simulation is the standard test for weighting methods:
the treatment depends on the covariates, so treated and control units differ
before treatment and the naive difference in means is biased, although the
true effect is zero. This example draws the design with
:func:`weightstats.datasets.make_kang_schafer` and shows the imbalance that
balancing weights must remove.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from weightstats.datasets import make_kang_schafer

ks = make_kang_schafer(2000, random_state=0, as_frame=True)
X, t, y = ks.data, ks.treatment, ks.target
naive = y[t == 1].mean() - y[t == 0].mean()
print(f"naive difference in means: {naive:.2f} (the true effect is {ks.true_effect})")

# %%
# Standardised mean differences of the observed (transformed) covariates:
pooled_sd = np.sqrt((X[t == 1].var() + X[t == 0].var()) / 2)
smd = (X[t == 1].mean() - X[t == 0].mean()) / pooled_sd
print(smd.round(3))

# %%
# The covariate distributions by group. Matching the means alone would not
# make these alike; the balancing methods in weightstats match whole
# distributions.
fig, axes = plt.subplots(1, 4, figsize=(11, 2.8), constrained_layout=True)
for ax, column in zip(axes, X.columns):
    bins = np.histogram_bin_edges(X[column], bins=30)
    ax.hist(X.loc[t == 0, column], bins=bins, alpha=0.6, density=True, label="control")
    ax.hist(X.loc[t == 1, column], bins=bins, alpha=0.6, density=True, label="treated")
    ax.set_title(column)
axes[0].legend()
plt.show()
