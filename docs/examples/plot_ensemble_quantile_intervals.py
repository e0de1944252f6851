"""
Aggregated quantiles and conformal intervals
============================================

Two quantile models of a heteroscedastic curve: linear quantile regression
(the spread grows linearly, but the mean is not linear) and gradient boosting
(flexible, one model per level, so its quantiles may cross).
:class:`~weightstats.ensemble.QuantileAggregator` weights them level by level
to minimise the out-of-fold pinball loss and sorts the result, so the
quantiles never cross. :class:`~weightstats.conformal.ConformalQuantileRegressor`
then calibrates the aggregate's 90% interval on held-out data; the aggregator
is prefit, so it is wrapped in :class:`~sklearn.frozen.FrozenEstimator`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import QuantileRegressor

from weightstats.conformal import ConformalQuantileRegressor
from weightstats.ensemble import PerQuantileRegressor, QuantileAggregator
from weightstats.metrics import interval_coverage, pinball_loss, quantile_crossing_rate

rng = np.random.default_rng(0)
n = 700
X = rng.uniform(0, 4, (n, 1))
y = np.sin(2 * X[:, 0]) + X[:, 0] + (0.1 + 0.25 * X[:, 0]) * rng.standard_normal(n)
fit, cal, test = np.split(rng.permutation(n), [300, 500])

levels = [0.05, 0.25, 0.5, 0.75, 0.95]
linear = PerQuantileRegressor.from_estimator(QuantileRegressor(alpha=0.0), levels)
boosted = PerQuantileRegressor.from_estimator(
    GradientBoostingRegressor(loss="quantile", n_estimators=30, max_depth=2, random_state=0),
    levels,
)
aggregator = QuantileAggregator([("linear", linear), ("gbm", boosted)], quantiles=levels,
                                weighting="per_quantile", cv=3)
aggregator.fit(X[fit], y[fit])
print(aggregator.weights_.round(2))

# %%
# Test-set pinball loss per level, and the share of rows whose quantiles cross.
for name, model in [*aggregator.named_estimators_.items(), ("aggregate", aggregator)]:
    pred = model.predict(X[test], quantiles=levels)
    print(f"{name:9s} pinball {pinball_loss(y[test], pred, levels).round(3)}  "
          f"crossing rate {quantile_crossing_rate(pred):.2f}")

# %%
# Conformal calibration of the aggregate's 90% interval (levels 0.05 and 0.95).
cqr = ConformalQuantileRegressor(FrozenEstimator(aggregator), confidence_level=0.9)
cqr.conformalize(X[cal], y[cal])
grid = np.linspace(0, 4, 200)[:, None]
band = cqr.predict_interval(grid)[:, :, 0]
raw = aggregator.predict(grid, quantiles=[0.05, 0.95])
test_band = cqr.predict_interval(X[test])[:, :, 0]
print("test coverage of the calibrated 90% interval:",
      round(interval_coverage(y[test], test_band[:, 0], test_band[:, 1]), 3))

fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
ax.scatter(X[test, 0], y[test], s=6, color="0.6", label="test data")
ax.plot(grid[:, 0], raw, color="C1", lw=1, label="aggregated 5% / 95%")
ax.fill_between(grid[:, 0], band[:, 0], band[:, 1], color="C0", alpha=0.25,
                label="conformal 90% interval")
ax.plot(grid[:, 0], aggregator.predict(grid, quantiles=0.5), color="C0", label="median")
ax.legend(loc="upper left")
