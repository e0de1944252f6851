"""Optimally weighted convex ensembles of regression models (Echtenbruck et al.)."""

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import RegressorMixin, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    _num_samples,
    check_array,
    check_is_fitted,
    validate_data,
)

from ..utils import fill_doc
from ._base import (
    NamedEstimatorsMixin,
    check_meta_input,
    check_predict_input,
    checked_cv,
    combine_input_tags,
    fit_estimator,
    out_of_fold,
    validate_named_estimators,
    warn_unweighted,
)
from ._simplex_qp import solve_simplex_ls, solve_simplex_ls_cvxpy

__all__ = ["ConvexEnsembleRegressor"]

_ENSEMBLE_ROW = "convex ensemble"


def _predict(estimator, X):
    return np.asarray(estimator.predict(X), dtype=float).reshape(_num_samples(X))


@fill_doc
class ConvexEnsembleRegressor(TransformerMixin, RegressorMixin, NamedEstimatorsMixin):
    """Convex combination of regressors with exact QP-optimal weights.

    The weights ``w`` (non-negative, summing to one) minimise the
    (sample-weighted) squared error of the models' out-of-fold predictions,
    as in Echtenbruck et al. (2022). Out-of-fold predictions come from
    cross-validation as in :class:`~sklearn.ensemble.StackingRegressor`; the
    models are then refitted on all data (prefit models wrapped in
    :class:`~sklearn.frozen.FrozenEstimator` are used as they are, and their
    predictions on the training data count as out-of-sample).

    The quadratic programme is solved exactly by an active-set method
    (Wolfe's minimum-norm-point algorithm) on a scaled problem; when models
    are duplicated or collinear, so that several weightings fit equally well,
    the minimum-norm weights are returned (duplicates share their weight).
    Read more in the :ref:`User Guide <ensembles>`.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The base regressors, by name. ``"drop"`` skips an entry. Wrap prefit
        models in :class:`~sklearn.frozen.FrozenEstimator`.
    cv : int, cross-validation generator or iterable, default=5
        How out-of-fold predictions are made: an int is the number of
        :class:`~sklearn.model_selection.KFold` folds, not shuffled (as in
        :func:`~sklearn.model_selection.cross_val_predict`; pass
        ``KFold(n, shuffle=True, random_state=...)`` for data sorted in a
        meaningful order); a splitter or an iterable of (train, test) index
        arrays must put every row in exactly one test fold.
    solver : {"auto", "active_set", "cvxpy"}, default="auto"
        The QP solver. ``"active_set"`` is the exact solver; ``"cvxpy"``
        solves the same scaled problem with CLARABEL (for cross-checking);
        ``"auto"`` picks ``"active_set"``.
    passthrough : bool, default=False
        Whether :meth:`transform` appends the input features to the base
        models' predictions (as in ``StackingRegressor``). The ensemble's
        predictions never use the features directly: a convex combination
        only weights models.
    {n_jobs}
        Cross-validation fits run in parallel over (model, fold) pairs.
    verbose : int, default=0
        Verbosity of the joblib loops over (model, fold) fits: 0 is silent,
        higher values report progress.

    Attributes
    ----------
    estimators_ : list of estimators
        The base models fitted on all data (frozen ones as given).
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The same, by name.
    weights_ : pandas.Series
        The convex weights, indexed by model name.
    coef_ : ndarray of shape (n_models,)
        The weights as an array, in the order of ``estimators_``.
    cv_predictions_ : ndarray of shape (n_samples, n_models)
        Out-of-fold predictions the weights were fitted on.
    score_table_ : pandas.DataFrame
        Weight and cross-validated MSE, RMSE, MAE and R^2 (sample-weighted)
        of each model and of the ensemble. The ensemble row evaluates the
        weights on the predictions they were fitted on, so it is optimistic;
        use an outer cross-validation for an honest comparison.
    condition_number_ : float
        Condition number of the scaled QP on the simplex tangent space;
        ``inf`` when models are (affinely) collinear and ties were broken.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    sklearn.ensemble.StackingRegressor : Learned linear combination without the
        simplex constraint.
    sklearn.ensemble.VotingRegressor : Fixed user-given weights.

    References
    ----------
    .. [1] Echtenbruck, P., Echtenbruck, M., Batenburg, J., Bäck, T., Naujoks, B.
       and Emmerich, M. (2022). Optimally weighted ensembles of regression
       models: exact weight optimization and applications. arXiv:2206.11263.
    .. [2] Wolfe, P. (1976). Finding the nearest point in a polytope.
       Mathematical Programming 11, 128-149.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> from weightstats.ensemble import ConvexEnsembleRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> ens = ConvexEnsembleRegressor(
    ...     [("ridge", Ridge(alpha=0.1)), ("knn", KNeighborsRegressor(10))]
    ... ).fit(X, y)
    >>> ens.weights_.round(3)
    ridge    0.796
    knn      0.204
    Name: weight, dtype: float64
    >>> ens.predict(X[:2]).round(1)
    array([198.2,  78.1])
    """

    _parameter_constraints = {
        "estimators": [list],
        "cv": ["cv_object"],
        "solver": [StrOptions({"auto", "active_set", "cvxpy"})],
        "passthrough": ["boolean"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimators, *, cv=5, solver="auto", passthrough=False, n_jobs=None,
                 verbose=0):
        self.estimators = estimators
        self.cv = cv
        self.solver = solver
        self.passthrough = passthrough
        self.n_jobs = n_jobs
        self.verbose = verbose

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the base models, their out-of-fold predictions and the weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed unchanged to the base models.
        y : array-like of shape (n_samples,)
            Target values.
        {sample_weight}
            Data-point weights of the QP, and passed to every base model that
            accepts ``sample_weight`` (the last step of a pipeline); a model
            that does not is fitted without it, with a warning, as R's
            SuperLearner does with its ``obsWeights``.

        Returns
        -------
        self : ConvexEnsembleRegressor
            The fitted ensemble.
        """
        names, estimators = validate_named_estimators(
            self.estimators, owner="ConvexEnsembleRegressor"
        )
        X, y, sample_weight = check_meta_input(X, y, sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        warn_unweighted("ConvexEnsembleRegressor", names, estimators, sample_weight,
                        still_used="weights the squared errors of the QP")
        cv = checked_cv(self.cv, y)
        oof = out_of_fold(
            estimators, X, y, sample_weight, cv=cv, predict=_predict, n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        self.cv_predictions_ = np.column_stack(oof)
        solve = solve_simplex_ls_cvxpy if self.solver == "cvxpy" else solve_simplex_ls
        result = solve(self.cv_predictions_, y, sample_weight)
        self.coef_ = result.weights
        self.condition_number_ = result.condition_number
        self.qp_objective_ = result.objective
        self.estimators_ = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(fit_estimator)(clone(est), X, y, sample_weight) for est in estimators
        )
        self.model_names_ = np.asarray(names, dtype=object)
        self.cv_scores_ = _scores(
            np.column_stack([self.cv_predictions_, self.cv_predictions_ @ self.coef_]),
            y,
            sample_weight,
        )
        return self

    @property
    def weights_(self):
        """The convex weights as a pandas Series indexed by model name."""
        check_is_fitted(self, "coef_")
        return pd.Series(self.coef_, index=list(self.model_names_), name="weight")

    @property
    def score_table_(self):
        """Cross-validated scores of each model and of the ensemble (a DataFrame)."""
        check_is_fitted(self, "cv_scores_")
        index = [*self.model_names_, _ENSEMBLE_ROW]
        table = pd.DataFrame(self.cv_scores_, index=index)
        table.insert(0, "weight", np.append(self.coef_, 1.0))
        table.index.name = "model"
        return table

    def _base_predictions(self, X):
        check_predict_input(self, X, "coef_")
        return np.column_stack([_predict(est, X) for est in self.estimators_])

    def predict(self, X):
        """Predict with the weighted combination of the base models.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``sum_j weights_[j] * estimators_[j].predict(X)``.
        """
        check_predict_input(self, X, "coef_")
        used = np.flatnonzero(self.coef_ > 0)
        return sum(self.coef_[j] * _predict(self.estimators_[j], X) for j in used)

    def transform(self, X):
        """Return the base models' predictions (and ``X`` with ``passthrough``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        predictions : ndarray of shape (n_samples, n_models) or \
                (n_samples, n_models + n_features)
            One column per base model, then the features when
            ``passthrough=True``.
        """
        predictions = self._base_predictions(X)
        if not self.passthrough:
            return predictions
        features = check_array(X, accept_sparse=True, dtype=float, ensure_all_finite=False)
        if sp.issparse(features):
            features = features.toarray()
        return np.hstack([predictions, features])

    def get_feature_names_out(self, input_features=None):
        """Names of the :meth:`transform` output columns.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input feature names (used with ``passthrough=True``).

        Returns
        -------
        feature_names_out : ndarray of str
            The model names, then the input features with ``passthrough``.
        """
        check_is_fitted(self, "coef_")
        names = [str(name) for name in self.model_names_]
        if self.passthrough:
            names += list(_check_feature_names_in(self, input_features))
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        return combine_input_tags(super().__sklearn_tags__(), self.estimators)


def _scores(predictions, y, sample_weight):
    """Weighted MSE, RMSE, MAE and R^2 of each prediction column."""
    v = np.ones_like(y) if sample_weight is None else sample_weight
    v = v / v.sum()
    residual = predictions - y[:, None]
    mse = v @ residual**2
    mae = v @ np.abs(residual)
    total = float(v @ (y - v @ y) ** 2)
    r2 = 1.0 - mse / total if total > 0 else np.where(mse == 0, 1.0, 0.0)
    return {"cv_mse": mse, "cv_rmse": np.sqrt(mse), "cv_mae": mae, "cv_r2": r2}
