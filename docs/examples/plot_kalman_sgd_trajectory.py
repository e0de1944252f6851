"""
Kalman-filtered SGD: the weight path and the minimum-area choice
================================================================

:class:`weightstats.linear_model.KalmanSGDRegressor` (an experimental
heuristic, see the user guide) records the SGD path of the weights, smooths
it with a Kalman filter, scores every smoothed vector by a loss and picks the
one ending the segment of smallest area under the weight-versus-loss curve.
``trajectory_`` holds every step; here it is plotted for the diabetes data.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from weightstats.linear_model import KalmanSGDRegressor

data = load_diabetes(as_frame=True)
X = StandardScaler().set_output(transform="pandas").fit_transform(data.data)
y = data.target
reg = KalmanSGDRegressor(learning_rate=0.01, max_iter=5, curve_loss="mse",
                         random_state=0).fit(X, y)
traj = reg.trajectory_
print(f"{reg.n_updates_} updates; selected update {reg.selected_update_}")
print(traj[["batch_loss", "sgd[bmi]", "kalman[bmi]", "curve_loss", "area"]].tail())

# %%
# Left: the raw SGD path of two coefficients (thin) and the filtered path
# (thick), with the selected update marked. Middle: the curve, the loss of
# each filtered vector against the path length in weight space. Right: the
# areas of its segments (log scale) and the minimum.
kalman = traj.filter(like="kalman").to_numpy()
points = np.vstack([np.zeros(kalman.shape[1]), kalman])
path_length = np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), constrained_layout=True)
for name, color in (("bmi", "C0"), ("s5", "C1")):
    axes[0].plot(traj.index, traj[f"sgd[{name}]"], color=color, lw=0.4, alpha=0.5)
    axes[0].plot(traj.index, traj[f"kalman[{name}]"], color=color, lw=2, label=name)
axes[0].axvline(reg.selected_update_, color="k", ls=":", label="selected")
axes[0].set_xlabel("update")
axes[0].set_title("coefficients")
axes[0].legend()
axes[1].plot(path_length, traj["curve_loss"])
axes[1].set_yscale("log")
axes[1].set_xlabel("path length of the filtered weights")
axes[1].set_title("training MSE along the curve")
axes[2].semilogy(traj.index, traj["area"], lw=0.6)
axes[2].plot(reg.selected_update_, traj["area"].min(), "ko")
axes[2].set_xlabel("update")
axes[2].set_title("segment area")
plt.show()
