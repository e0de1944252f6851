"""
Balancing weights on the Kang-Schafer design
============================================

The Kang-Schafer simulation has no treatment effect, but the naive difference
in means is about -20 because treatment depends on the covariates. Here three
balancers reweight the controls towards the treated (ATT) using only the
*misspecified* covariates: inverse probability weighting with a logistic
model, entropy balancing (exact mean balance) and MMD balancing (distribution
balance, :class:`~weightstats.balancing.IPMBalancer`).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from weightstats.balancing import (
    EntropyBalancer,
    IPMBalancer,
    PropensityBalancer,
    love_plot,
)
from weightstats.datasets import make_kang_schafer

ks = make_kang_schafer(1000, random_state=1, as_frame=True)
X, t, y = ks.data, ks.treatment, ks.target
naive = y[t == 1].mean() - y[t == 0].mean()
print(f"naive difference: {naive:.2f} (true effect 0)")

# %%
# Fit the three balancers and estimate the ATT with 95% intervals.
balancers = {
    "logistic IPW": PropensityBalancer(estimand="ATT"),
    "entropy balancing": EntropyBalancer(estimand="ATT"),
    "MMD balancing": IPMBalancer(estimand="ATT"),
}
results = {}
for name, balancer in balancers.items():
    balancer.fit(X, t)
    results[name] = balancer.estimate_effect(y)
    res = results[name]
    lo, hi = res.conf_int()
    print(f"{name:>18}: {res.effect:6.2f}  [{lo:6.2f}, {hi:6.2f}]  "
          f"control ESS {balancer.ess_['control']:.0f}")

# %%
# The MMD weights balance whole distributions: the Kolmogorov-Smirnov
# statistics drop along with the mean differences. ``solver_info_`` certifies
# the solution of the convex problem.
mmd = balancers["MMD balancing"]
print(mmd.solver_info_["solver"], "| relative duality gap",
      f"{mmd.solver_info_['relative_gap']:.1e}")
print(mmd.balance_table()[["smd_before", "smd_after", "ks_before", "ks_after"]].round(3))

# %%
# Love plots of the standardised mean differences and KS statistics.
fig, axes = plt.subplots(1, 2, figsize=(10, 3), constrained_layout=True)
love_plot(mmd.balance_table(), ax=axes[0])
love_plot(mmd.balance_table(), stat="ks", ax=axes[1])
plt.show()

# %%
# Estimates with their intervals (the true effect is zero).
fig, ax = plt.subplots(figsize=(6, 2.5), constrained_layout=True)
names = list(results)
effects = np.array([results[n].effect for n in names])
cis = np.array([results[n].conf_int() for n in names])
ax.errorbar(effects, range(len(names)), xerr=[effects - cis[:, 0], cis[:, 1] - effects],
            fmt="o", capsize=4)
ax.axvline(0, color="0.3", ls="--")
ax.set_yticks(range(len(names)), names)
ax.set_xlabel("ATT estimate (95% interval)")
plt.show()
