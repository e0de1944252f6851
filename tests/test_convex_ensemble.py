"""ConvexEnsembleRegressor: acceptance on diabetes, weights, sample weights, API."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor, StackingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from weightstats.ensemble import ConvexEnsembleRegressor
from weightstats.ensemble._simplex_qp import solve_simplex_ls_cvxpy

X_DIAB, Y_DIAB = load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def diabetes_ensemble():
    models = [
        ("ridge", RidgeCV()),
        ("rf", RandomForestRegressor(n_estimators=50, min_samples_leaf=3, random_state=0)),
        ("gbr", GradientBoostingRegressor(n_estimators=100, max_depth=2, random_state=0)),
        ("knn", KNeighborsRegressor(n_neighbors=10)),
    ]
    return ConvexEnsembleRegressor(models, cv=5).fit(X_DIAB, Y_DIAB)


def test_diabetes_ensemble_beats_the_best_single_model(diabetes_ensemble):
    table = diabetes_ensemble.score_table_
    singles = table.drop(index="convex ensemble")
    assert table.loc["convex ensemble", "cv_mse"] <= singles["cv_mse"].min()
    # The weights are not a single vertex: the combination strictly improves.
    assert table.loc["convex ensemble", "cv_mse"] < singles["cv_mse"].min() - 1.0
    assert (diabetes_ensemble.weights_ > 0).sum() >= 2
    assert diabetes_ensemble.weights_.sum() == pytest.approx(1.0)


def test_diabetes_weights_match_an_independent_qp(diabetes_ensemble):
    P = diabetes_ensemble.cv_predictions_
    reference = solve_simplex_ls_cvxpy(P, Y_DIAB)
    np.testing.assert_allclose(diabetes_ensemble.coef_, reference.weights, atol=1e-6)
    assert diabetes_ensemble.qp_objective_ == pytest.approx(reference.objective, rel=1e-8)
    assert diabetes_ensemble.qp_objective_ == pytest.approx(
        diabetes_ensemble.score_table_.loc["convex ensemble", "cv_mse"], rel=1e-12
    )


def test_cv_predictions_are_out_of_fold_like_cross_val_predict(diabetes_ensemble):
    for j, (_, est) in enumerate(diabetes_ensemble.estimators):
        expected = cross_val_predict(est, X_DIAB, Y_DIAB, cv=KFold(5))
        np.testing.assert_allclose(diabetes_ensemble.cv_predictions_[:, j], expected, rtol=1e-10)


def test_predict_is_the_weighted_sum_of_refitted_models(diabetes_ensemble):
    X = X_DIAB[:7]
    expected = sum(
        w * est.predict(X)
        for w, est in zip(diabetes_ensemble.coef_, diabetes_ensemble.estimators_, strict=True)
    )
    np.testing.assert_allclose(diabetes_ensemble.predict(X), expected)
    np.testing.assert_allclose(diabetes_ensemble.transform(X) @ diabetes_ensemble.coef_, expected)


def test_integer_sample_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + np.sin(3 * X[:, 0]) + 0.3 * rng.standard_normal(60)
    counts = rng.integers(1, 4, 60)
    folds = np.arange(60) % 4
    # Base models whose own sample_weight equals repeating rows (trees are not:
    # scikit-learn's split search differs).
    models = [("ridge", Ridge(alpha=3.0)),
              ("krr", KernelRidge(alpha=1.0, kernel="rbf", gamma=0.5)),
              ("lr", LinearRegression())]
    splits_w = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(4)]
    folds_r = np.repeat(folds, counts)
    splits_r = [(np.flatnonzero(folds_r != k), np.flatnonzero(folds_r == k)) for k in range(4)]
    weighted = ConvexEnsembleRegressor(models, cv=splits_w).fit(X, y, sample_weight=counts)
    repeated = ConvexEnsembleRegressor(models, cv=splits_r).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-9)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)
    assert (weighted.coef_ > 0).sum() >= 2


def test_sample_weight_changes_the_weights():
    v = np.where(Y_DIAB > np.median(Y_DIAB), 2.0, 1.0)
    models = [("ridge", Ridge(alpha=0.1)), ("tree", DecisionTreeRegressor(max_depth=3))]
    plain = ConvexEnsembleRegressor(models).fit(X_DIAB, Y_DIAB)
    weighted = ConvexEnsembleRegressor(models).fit(X_DIAB, Y_DIAB, sample_weight=v)
    assert not np.allclose(plain.coef_, weighted.coef_, atol=1e-6)


def test_models_without_sample_weight_are_fitted_unweighted_with_a_warning():
    """A kNN base model used to make the weighted fit impossible. Now it is fitted
    unweighted (said once), the ridge gets the weights, and the QP always uses them."""
    v = np.where(Y_DIAB > np.median(Y_DIAB), 3.0, 1.0)
    models = [("ridge", Ridge(alpha=0.1)), ("knn", KNeighborsRegressor(10))]
    with pytest.warns(UserWarning, match=r"'knn' \(KNeighborsRegressor\) does not accept "
                                         r"sample_weight .* fitted without it; sample_weight "
                                         r"still weights the squared errors of the QP") as record:
        ens = ConvexEnsembleRegressor(models).fit(X_DIAB, Y_DIAB, sample_weight=v)
    assert len([w for w in record if "sample_weight" in str(w.message)]) == 1
    cv = KFold(5)
    ridge = cross_val_predict(Ridge(alpha=0.1), X_DIAB, Y_DIAB, cv=cv, params={"sample_weight": v})
    knn = cross_val_predict(KNeighborsRegressor(10), X_DIAB, Y_DIAB, cv=cv)
    np.testing.assert_allclose(ens.cv_predictions_, np.column_stack([ridge, knn]), rtol=1e-10)
    qp = solve_simplex_ls_cvxpy(ens.cv_predictions_, Y_DIAB, v)
    np.testing.assert_allclose(ens.coef_, qp.weights, atol=1e-6)
    unweighted_qp = solve_simplex_ls_cvxpy(ens.cv_predictions_, Y_DIAB, None)
    assert not np.allclose(ens.coef_, unweighted_qp.weights, atol=1e-3)
    # Refitted on all data: ridge with the weights, kNN without.
    np.testing.assert_allclose(
        ens.named_estimators_["ridge"].coef_,
        Ridge(alpha=0.1).fit(X_DIAB, Y_DIAB, sample_weight=v).coef_,
    )
    # Pipelines are judged by their last step; no warning without sample_weight.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ConvexEnsembleRegressor(models).fit(X_DIAB, Y_DIAB)
        ConvexEnsembleRegressor(
            [("ridge", make_pipeline(StandardScaler(), Ridge()))]
        ).fit(X_DIAB, Y_DIAB, sample_weight=v)


def test_frozen_models_are_not_refitted_and_predict_out_of_sample():
    first, second = X_DIAB[:200], X_DIAB[200:]
    prefit = Ridge(alpha=0.5).fit(first, Y_DIAB[:200])
    ens = ConvexEnsembleRegressor(
        [("prefit", FrozenEstimator(prefit)), ("knn", KNeighborsRegressor(15))]
    ).fit(second, Y_DIAB[200:])
    np.testing.assert_array_equal(ens.cv_predictions_[:, 0], prefit.predict(second))
    assert ens.named_estimators_["prefit"].estimator is prefit


def test_duplicated_models_split_their_weight():
    ens = ConvexEnsembleRegressor(
        [("a", Ridge(alpha=0.1)), ("b", Ridge(alpha=0.1)), ("knn", KNeighborsRegressor(10))]
    ).fit(X_DIAB, Y_DIAB)
    assert ens.weights_["a"] == pytest.approx(ens.weights_["b"], abs=1e-12)
    assert np.isinf(ens.condition_number_)


def test_pandas_pipeline_and_nested_params():
    frame = pd.DataFrame(X_DIAB, columns=load_diabetes().feature_names)
    frame["group"] = np.where(frame["sex"] > 0, "a", "b")  # a string column
    pre = ColumnTransformer([("num", StandardScaler(), list(frame.columns[:10]))])
    ens = ConvexEnsembleRegressor(
        [("ridge", make_pipeline(pre, Ridge())),
         ("knn", make_pipeline(pre, KNeighborsRegressor()))],
        passthrough=False,
    )
    ens.fit(frame, Y_DIAB)
    assert list(ens.feature_names_in_) == list(frame.columns)
    assert "ridge__ridge__alpha" in ens.get_params()
    search = GridSearchCV(ens, {"knn__kneighborsregressor__n_neighbors": [5, 20]}, cv=3)
    search.fit(frame, Y_DIAB)
    assert search.best_params_["knn__kneighborsregressor__n_neighbors"] in (5, 20)
    # sample weights reach the last step of a pipeline
    ConvexEnsembleRegressor([("ridge", make_pipeline(pre, Ridge()))]).fit(
        frame, Y_DIAB, sample_weight=np.ones(len(frame))
    )


def test_transform_and_passthrough_with_pandas_output():
    ens = ConvexEnsembleRegressor(
        [("ridge", Ridge()), ("lr", LinearRegression())], passthrough=True
    ).set_output(transform="pandas")
    frame = pd.DataFrame(X_DIAB[:, :3], columns=["age", "sex", "bmi"])
    out = ens.fit(frame, Y_DIAB).transform(frame)
    assert list(out.columns) == ["ridge", "lr", "age", "sex", "bmi"]
    np.testing.assert_allclose(out["bmi"], frame["bmi"])


def test_drop_entries_and_stacking_like_usage():
    ens = ConvexEnsembleRegressor([("ridge", Ridge()), ("skip", "drop")]).fit(X_DIAB, Y_DIAB)
    assert list(ens.weights_.index) == ["ridge"] and ens.coef_.tolist() == [1.0]
    # Usable as a StackingRegressor base model.
    stack = StackingRegressor([("convex", ConvexEnsembleRegressor([("r", Ridge())], cv=3))], cv=3)
    assert stack.fit(X_DIAB, Y_DIAB).predict(X_DIAB[:2]).shape == (2,)


@pytest.mark.parametrize("solver", ["active_set", "cvxpy", "auto"])
def test_solvers_agree(solver):
    models = [("ridge", Ridge(alpha=0.1)), ("knn", KNeighborsRegressor(10)),
              ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))]
    ens = ConvexEnsembleRegressor(models, solver=solver).fit(X_DIAB, Y_DIAB)
    reference = ConvexEnsembleRegressor(models).fit(X_DIAB, Y_DIAB)
    np.testing.assert_allclose(ens.coef_, reference.coef_, atol=1e-6)


@pytest.mark.parametrize(
    "estimators, error, match",
    [
        ([("a", Ridge()), ("a", LinearRegression())], ValueError, "unique"),
        ([("a__b", Ridge())], ValueError, "__"),
        ([("a", Ridge)], TypeError, "instance"),
        ([("a", StandardScaler())], TypeError, "predict"),
        ([Ridge()], TypeError, r"\(name, estimator\)"),
        ([("a", "drop")], ValueError, "at least one"),
    ],
)
def test_bad_estimators_raise_clear_errors(estimators, error, match):
    with pytest.raises(error, match=match):
        ConvexEnsembleRegressor(estimators).fit(X_DIAB[:50], Y_DIAB[:50])


def test_bad_cv_and_weights_raise_clear_errors():
    with pytest.raises(ValueError, match="exactly one test fold"):
        ConvexEnsembleRegressor([("r", Ridge())], cv=ShuffleSplit(3, random_state=0)).fit(
            X_DIAB[:50], Y_DIAB[:50]
        )
    with pytest.raises(ValueError, match="n_splits=5"):
        ConvexEnsembleRegressor([("r", Ridge())]).fit(X_DIAB[:3], Y_DIAB[:3])
    with pytest.raises(ValueError, match="NaN"):
        ConvexEnsembleRegressor([("r", Ridge())]).fit(X_DIAB[:50], np.r_[np.nan, Y_DIAB[1:50]])
