"""
Convex ensemble weights on the diabetes data
============================================

:class:`~weightstats.ensemble.ConvexEnsembleRegressor` weights four
regressors so that their out-of-fold predictions have the smallest squared
error, with weights that are non-negative and sum to one. The weights come
from an exact quadratic programme; a duplicated model shares its weight with
its twin instead of making the problem ill-posed.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from weightstats.ensemble import ConvexEnsembleRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True)
models = [
    ("ridge", RidgeCV()),
    ("gbm", GradientBoostingRegressor(n_estimators=50, max_depth=2, random_state=0)),
    ("knn", KNeighborsRegressor(n_neighbors=10)),
    ("tree", DecisionTreeRegressor(max_depth=3, random_state=0)),
]
ensemble = ConvexEnsembleRegressor(models, cv=5).fit(X, y)
table = ensemble.score_table_
print(table.round(3))

# %%
# The ensemble's out-of-fold MSE is below every single model's (the weights
# were fitted on these predictions, so this number is optimistic; the notebook
# ``notebooks/ensembles.ipynb`` compares models by an outer cross-validation).
fig, (ax_w, ax_mse) = plt.subplots(1, 2, figsize=(9, 3), constrained_layout=True)
ensemble.weights_.plot.bar(ax=ax_w, color="C0")
ax_w.set_ylabel("weight")
ax_w.set_title("convex weights")
table["cv_mse"].plot.barh(ax=ax_mse, color=["C1"] * len(models) + ["C0"])
ax_mse.set_xlim(table["cv_mse"].min() * 0.9, table["cv_mse"].max() * 1.02)
ax_mse.set_xlabel("out-of-fold MSE")
ax_mse.set_title("cross-validated error")

# %%
# An exact copy of a model changes nothing but the split of its weight: the
# two copies share it equally (the minimum-norm optimal weights), and the
# condition number reports the tie.
small = [("ridge", RidgeCV()), ("knn", KNeighborsRegressor(n_neighbors=10))]
print(ConvexEnsembleRegressor(small).fit(X, y).weights_.round(4))
twin = ConvexEnsembleRegressor([*small, ("ridge copy", RidgeCV())]).fit(X, y)
print(twin.weights_.round(4))
print("condition number:", twin.condition_number_)
