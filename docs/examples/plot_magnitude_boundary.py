"""
Boundary detection with weighting vectors
=========================================

The weighting vector ``w`` of a finite point set solves ``Z w = 1`` with
``Z[i, j] = exp(-t d(x_i, x_j))``. For points sampled uniformly from a
region, the weights concentrate on the region's boundary: an interior point
is covered by its neighbours on all sides, a boundary point only on one. This
example samples uniform points in three shapes (the reference code of Bunch et
al. does this with 15,000 points in the unit square and ``t = 50``)
and draws each point with a size and colour given by
:func:`weightstats.magnitude.boundary_scores`, the weights divided by their
average ``Mag / n``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from weightstats.magnitude import boundary_scores

rng = np.random.default_rng(0)
cloud = rng.random((6000, 2)) * 2 - 1
x, y = cloud[:, 0], cloud[:, 1]
radius = np.hypot(x, y)
angle = np.arctan2(y, x)
shapes = {
    "annulus": cloud[(radius < 0.9) & (radius > 0.45)],
    "square with a hole": cloud[
        (np.abs(x) < 0.8) & (np.abs(y) < 0.8) & ~((np.abs(x - 0.2) < 0.3) & (np.abs(y - 0.2) < 0.3))
    ],
    "star": cloud[radius < 0.45 + 0.4 * np.cos(5 * angle) ** 2],
}

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), constrained_layout=True)
for ax, (name, points) in zip(axes, shapes.items()):
    scores = boundary_scores(points, t=10.0)
    order = np.argsort(scores)  # draw the boundary on top
    ax.scatter(*points[order].T, s=2 + 6 * np.clip(scores[order], 0, None), c=scores[order],
               cmap="viridis", vmin=0, vmax=np.quantile(scores, 0.99))
    ax.set_title(f"{name} (n = {len(points)})")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Points sized and coloured by their weight (t = 10)")
plt.show()

# %%
# How much of the weight sits on the boundary? For the annulus, points within
# 0.05 of either circle make up about a fifth of the sample but carry more
# than half of the magnitude. (Some interior weights are slightly negative:
# weights of Euclidean point sets need not be positive.)
points = shapes["annulus"]
scores = boundary_scores(points, t=10.0)
r = np.hypot(*points.T)
near_edge = (r > 0.85) | (r < 0.5)
share = scores[near_edge].sum() / scores.sum()
print(f"points near an edge: {near_edge.mean():.0%}, their share of the magnitude: {share:.0%}")
assert share > 0.5

# %%
# The scale sets what counts as boundary: a small ``t`` sees only the
# overall outline, a large one every gap between neighbouring points.
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), constrained_layout=True)
for ax, t in zip(axes, (3.0, 10.0, 40.0)):
    scores = boundary_scores(points, t=t)
    order = np.argsort(scores)
    ax.scatter(*points[order].T, s=3, c=scores[order], cmap="viridis",
               vmin=np.quantile(scores, 0.01), vmax=np.quantile(scores, 0.99))
    ax.set_title(f"t = {t:g}")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()
