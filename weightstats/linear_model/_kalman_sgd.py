"""Kalman-filtered SGD linear regression with minimum-area selection (experimental).

An implementation of the procedure in the abstract of Gokulprasath R.,
"Extended Linear Regression: A Kalman Filter Approach for Minimizing Loss via
Area Under the Curve" (arXiv:2308.12280). Only the abstract is public (no code,
no numbers), so every detail below that the abstract leaves open is our
choice, and the estimator is an experimental heuristic:

1. Mini-batch SGD on the squared loss with a constant learning rate, from
   zero weights, recording ``[coef, intercept]`` and the batch loss after each
   update (``weightstats._kernels._sgd``).
2. A Kalman filter whose state is the "consolidated" weight vector, observed
   through the recorded SGD weights: a random walk (``x_t = x_{t-1} + q``) or
   a local linear trend (level and slope per coordinate), ``z_t = x_t + r``,
   with isotropic noise, so every coordinate shares one gain sequence. The
   filter starts approximately diffuse (mean 0, variance ``1e6 *
   observation_noise``), so it averages the first iterates and then becomes an
   exponential smoother (for the random walk, once the gain has converged, one
   ``scipy.signal.lfilter`` call). Its one-step forecast is the "next
   consolidated weights".
3. For each filtered weight vector, the loss of the prediction at the input
   averages, ``(mean(x) . w + b - mean(y))^2`` (the abstract's reading), or
   the weighted training MSE (``curve_loss="mse"``).
4. The weight-versus-loss curve: the filtered vectors in update order joined
   by straight lines (the two-point formula), with the Euclidean step length
   between consecutive vectors as the abscissa; the area of each segment by
   the trapezoid rule.
5. The Kalman forecast (``selection="last"``, the default) or the vector
   that ends the segment of minimum area (``selection="min_area"``, the
   abstract's rule; segments of length zero do not count) is the fitted
   model. The default is the forecast because it measured best (test MSE on
   diabetes, Friedman #1 and statsmodels' ``fair``; user guide), and because
   with ``curve_loss="input_mean"`` on standardised features the curve loss
   is ``(b - mean(y))^2``, so the area rule would never see the coefficients.

Streaming: the state (weights, the rows of an incomplete batch, the filter's
mean and covariance, the sums that define the curve loss) carries over
between ``partial_fit`` calls, so a stream of chunks gives the same path as
one ``fit`` over their concatenation with ``max_iter=1, shuffle=False``.
"""

import copy
import numbers

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels._sgd import sgd_squared_path
from ..utils import check_sample_weight, fill_doc, progress

__all__ = ["KalmanSGDRegressor"]

# Initial state variance, relative to the observation noise: large enough that
# the first observation sets the state (gain 1 - 1e-6), small enough that
# P - K K' S keeps its precision.
_DIFFUSE = 1e6


def _kalman_init(transition, n_params, process_noise, observation_noise):
    """Filter state: mean (n_states, n_params), shared covariance, noises."""
    n_states = 1 if transition == "random_walk" else 2
    return {
        "mean": np.zeros((n_states, n_params)),
        "cov": np.eye(n_states) * (_DIFFUSE * observation_noise),
        "q": np.asarray(process_noise, dtype=float).reshape(-1),
        "r": float(observation_noise),
    }


def _kalman_filter(state, Z):
    """Filter the rows of ``Z`` in place of ``state``; return the filtered levels.

    Every coordinate has the same model and noise, so the covariance
    recursion is run once (on scalars) and its gain applied to all
    coordinates.
    """
    mean, r = state["mean"], state["r"]
    out = np.empty_like(Z)
    if mean.shape[0] == 1:  # random walk: x_t = x_{t-1} + w_t, z_t = x_t + v_t
        level, p, q = mean[0].copy(), float(state["cov"][0, 0]), float(state["q"][0])
        t = 0
        while t < Z.shape[0]:
            p_pred = p + q
            gain = p_pred / (p_pred + r)
            if abs((1.0 - gain) * p_pred - p) <= 1e-15 * p:
                break  # the variance has converged: the gain is constant from here on
            level += gain * (Z[t] - level)
            p = (1.0 - gain) * p_pred
            out[t] = level
            t += 1
        if t < Z.shape[0]:
            # Steady state: level_t = (1 - gain) level_{t-1} + gain z_t, one IIR
            # filter over the remaining rows (the variance stays at p).
            out[t:], _ = lfilter([gain], [1.0, gain - 1.0], Z[t:], axis=0,
                                 zi=((1.0 - gain) * level)[np.newaxis, :])
            level = out[-1].copy()
        mean[0], state["cov"][0, 0] = level, p
        return out
    # local linear trend: level_t = level + slope + w1, slope_t = slope + w2
    level, slope = mean[0].copy(), mean[1].copy()
    (p00, p01), (_, p11) = state["cov"]
    q_level, q_slope = (state["q"][0], state["q"][-1])
    for t in range(Z.shape[0]):
        level += slope
        p00, p01, p11 = p00 + 2 * p01 + p11 + q_level, p01 + p11, p11 + q_slope
        s = p00 + r
        k0, k1 = p00 / s, p01 / s
        innovation = Z[t] - level
        level += k0 * innovation
        slope += k1 * innovation
        p00, p01, p11 = p00 - k0 * k0 * s, p01 - k0 * k1 * s, p11 - k1 * k1 * s
        out[t] = level
    mean[0], mean[1] = level, slope
    state["cov"][:] = [[p00, p01], [p01, p11]]
    return out


def _kalman_forecast(state):
    """One-step-ahead forecast of the level (the "next consolidated weights")."""
    mean = state["mean"]
    return mean[0] + mean[1] if mean.shape[0] == 2 else mean[0].copy()


@fill_doc
class KalmanSGDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by SGD, Kalman smoothing and minimum-area selection.

    **Experimental heuristic.** Implements the procedure of the abstract of
    arXiv:2308.12280 (no code or results are public): record the SGD
    trajectory of ``[coef, intercept]``, filter it with a Kalman filter,
    score every filtered weight vector by a loss, join the (weights, loss)
    points into a piecewise-linear curve and (``selection="min_area"``) pick
    the vector ending the segment of smallest trapezoid area. By default the
    fitted model is the filter's forecast of the next weights
    (``selection="last"``), which measured better. The details the abstract
    leaves open are listed in the user guide (:ref:`kalman_sgd`).

    Scale the features (e.g. ``StandardScaler``): SGD with a constant step
    needs it.

    Parameters
    ----------
    learning_rate : float, default=0.01
        Constant SGD step size.
    max_iter : int, default=20
        Passes (epochs) over the data in :meth:`fit`.
    batch_size : int, default=1
        Rows per SGD update. ``trajectory_`` holds one row per update, so
        large data sets want larger batches.
    shuffle : bool, default=True
        Shuffle the rows before each epoch in :meth:`fit`
        (:meth:`partial_fit` keeps the given order).
    fit_intercept : bool, default=True
        Whether to learn an intercept.
    transition : {"random_walk", "local_linear"}, default="random_walk"
        State model of the Kalman filter: a random walk of the weights, or a
        local linear trend (level and slope per coordinate).
    process_noise : float or array-like of shape (2,), default=1e-4
        State noise variance; for ``"local_linear"`` a pair (level, slope)
        or one value for both. Only its ratio to ``observation_noise``
        changes the filtered weights: smaller means smoother.
    observation_noise : float, default=1.0
        Variance of the SGD weights around the consolidated weights.
    curve_loss : {"input_mean", "mse"}, default="input_mean"
        Loss of a candidate ``(w, b)`` on the weight-versus-loss curve:
        ``(mean(x) . w + b - mean(y))^2``, the squared error of the
        prediction at the input averages (the abstract's rule), or the
        weighted training mean squared error. Only ``selection="min_area"``
        uses it. On standardised features ``mean(x) = 0``, so
        ``"input_mean"`` reduces to ``(b - mean(y))^2`` and ignores the
        coefficients.
    selection : {"last", "min_area"}, default="last"
        ``"last"``: the Kalman forecast of the next weights (a smoothed
        average of the late SGD iterates); ``"min_area"``: the filtered
        weights that end the segment of the weight-versus-loss curve with the
        smallest area (the abstract's rule). ``"last"`` measured best on
        three held-out regression sets (see the user guide).
    {random_state}
    {verbose}

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Selected coefficients.
    intercept_ : float
        Selected intercept.
    selected_update_ : int
        The update (1-based row of ``trajectory_``) whose filtered weights
        were selected; ``n_updates_ + 1`` for the forecast.
    kalman_forecast_ : ndarray of shape (n_features + 1,)
        The filter's one-step forecast ``[coef, intercept]``.
    n_updates_ : int
        Number of SGD updates so far.
    n_iter_ : int
        Passes over the data: ``max_iter`` after :meth:`fit`, plus one per
        :meth:`partial_fit` call.
    trajectory_ : pandas.DataFrame
        One row per update: batch loss, SGD weights ``sgd[...]``, filtered
        weights ``kalman[...]``, ``curve_loss`` and ``area`` of the segment
        ending there.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    sklearn.linear_model.SGDRegressor : Plain SGD linear regression.

    Notes
    -----
    The rows of an incomplete last batch are kept and processed with the
    next :meth:`partial_fit` call; until then the fitted attributes include
    them as a provisional shorter batch, which is also what :meth:`fit` does
    at the end of its data.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.linear_model import KalmanSGDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 3.0
    >>> reg = KalmanSGDRegressor(random_state=0).fit(X, y)
    >>> reg.coef_.round(2), round(reg.intercept_, 2)
    (array([ 1. , -2. ,  0.5]), 3.0)
    >>> reg.trajectory_.shape
    (4000, 11)
    """

    _parameter_constraints = {
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "fit_intercept": ["boolean"],
        "transition": [StrOptions({"random_walk", "local_linear"})],
        "process_noise": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "observation_noise": [Interval(numbers.Real, 0, None, closed="neither")],
        "curve_loss": [StrOptions({"input_mean", "mse"})],
        "selection": [StrOptions({"last", "min_area"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        learning_rate=0.01,
        max_iter=20,
        batch_size=1,
        shuffle=True,
        fit_intercept=True,
        transition="random_walk",
        process_noise=1e-4,
        observation_noise=1.0,
        curve_loss="input_mean",
        selection="last",
        random_state=None,
        verbose=0,
    ):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.fit_intercept = fit_intercept
        self.transition = transition
        self.process_noise = process_noise
        self.observation_noise = observation_noise
        self.curve_loss = curve_loss
        self.selection = selection
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit by ``max_iter`` passes of SGD, then filter and select.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights; ``None`` gives every sample weight 1.
            A weight scales that row's SGD step and its share of the curve loss.

        Returns
        -------
        self : KalmanSGDRegressor
            The fitted estimator.
        """
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=True)
        self._stream = self._new_stream(X.shape[1])
        rng = check_random_state(self.random_state)
        # The curve losses are means over the data: repeated passes leave them
        # unchanged, so the sums are taken once.
        self._accumulate(X, y, sample_weight)
        for _ in progress(range(self.max_iter), verbose=self.verbose, desc="SGD epochs"):
            order = rng.permutation(X.shape[0]) if self.shuffle else np.arange(X.shape[0])
            self._consume(X[order], y[order], sample_weight[order], accumulate=False)
        self.n_iter_ = self.max_iter
        self._finalize()
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Continue with one pass over ``X`` in the given order.

        A stream of ``partial_fit`` calls gives the same result as one
        ``fit(..., max_iter=1, shuffle=False)`` on the concatenated chunks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights; ``None`` gives every sample weight 1.
            A weight scales that row's SGD step and its share of the curve loss.

        Returns
        -------
        self : KalmanSGDRegressor
            The updated estimator.
        """
        first = not hasattr(self, "_stream")
        # A stream may deliver single rows; fit needs two to define a regression.
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=first, min_samples=1)
        if first:
            self._stream = self._new_stream(X.shape[1])
            self.n_iter_ = 0
        self._consume(X, y, sample_weight)
        self.n_iter_ += 1
        self._finalize()
        return self

    def predict(self, X):
        """Predict with the selected linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``X @ coef_ + intercept_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_

    @property
    def trajectory_(self):
        """One row per SGD update: losses, SGD and filtered weights, areas."""
        check_is_fitted(self)
        names = [str(n) for n in getattr(self, "feature_names_in_",
                                          [f"x{j}" for j in range(self.n_features_in_)])]
        names.append("intercept")
        path = self._path
        frame = pd.DataFrame(
            np.column_stack([path["batch_loss"], path["sgd"], path["kalman"],
                             path["curve_loss"], path["area"]]),
            columns=["batch_loss", *(f"sgd[{n}]" for n in names),
                     *(f"kalman[{n}]" for n in names), "curve_loss", "area"],
        )
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="update")
        return frame

    # -- internals -------------------------------------------------------

    def _validate(self, X, y, sample_weight, *, reset, min_samples=2):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=True,
                             ensure_min_samples=min_samples)
        sample_weight = check_sample_weight(sample_weight, X)
        noise = np.asarray(self.process_noise, dtype=float).reshape(-1)
        size = 1 if self.transition == "random_walk" else (1, 2)
        if noise.size not in np.atleast_1d(size) or np.any(noise < 0) or not np.all(
                np.isfinite(noise)):
            raise ValueError(
                f"process_noise must be one non-negative variance"
                f"{' or a (level, slope) pair' if self.transition == 'local_linear' else ''}"
                f" for transition={self.transition!r}; got {self.process_noise!r}."
            )
        return X, y, sample_weight

    def _new_stream(self, n_features):
        n_params = n_features + 1
        return {
            "theta": np.zeros(n_params),
            "pending": (np.empty((0, n_features)), np.empty(0), np.empty(0)),
            "kalman": _kalman_init(self.transition, n_params, self.process_noise,
                                   self.observation_noise),
            "sgd": [],
            "batch_loss": [],
            "kalman_path": [],
            # Weighted sums defining the curve losses: sum s, s*[x,1], s*y,
            # s*[x,1][x,1]', s*y*[x,1], s*y^2.
            "stats": {"s": 0.0, "sx": np.zeros(n_params), "sy": 0.0,
                      "sxx": np.zeros((n_params, n_params)), "sxy": np.zeros(n_params),
                      "syy": 0.0},
        }

    def _accumulate(self, X, y, sample_weight):
        stats = self._stream["stats"]
        Xt = np.column_stack([X, np.ones(X.shape[0])])
        sXt = Xt * sample_weight[:, None]
        stats["s"] += sample_weight.sum()
        stats["sx"] += sXt.sum(axis=0)
        stats["sy"] += sample_weight @ y
        stats["sxx"] += Xt.T @ sXt
        stats["sxy"] += sXt.T @ y
        stats["syy"] += sample_weight @ (y * y)

    def _run_sgd(self, theta, X, y, sample_weight, first_update):
        path, losses = sgd_squared_path(
            X, y, sample_weight, theta, learning_rate=self.learning_rate,
            batch_size=self.batch_size, fit_intercept=self.fit_intercept,
        )
        if not np.all(np.isfinite(path)) or not np.all(np.isfinite(losses)):
            bad = first_update + int(np.argmin(np.all(np.isfinite(path), axis=1)
                                               & np.isfinite(losses)))
            raise ValueError(
                f"SGD diverged (non-finite weights or loss) at update {bad}; lower "
                f"learning_rate (now {self.learning_rate}) or standardise X, e.g. with "
                "StandardScaler."
            )
        return path, losses

    def _consume(self, X, y, sample_weight, accumulate=True):
        stream = self._stream
        if accumulate:
            self._accumulate(X, y, sample_weight)
        pX, py, ps = stream["pending"]
        X, y, sample_weight = np.vstack([pX, X]), np.concatenate([py, y]), np.concatenate(
            [ps, sample_weight])
        n_full = (X.shape[0] // self.batch_size) * self.batch_size
        if n_full:
            n_done = sum(len(a) for a in stream["batch_loss"])
            path, losses = self._run_sgd(stream["theta"], X[:n_full], y[:n_full],
                                         sample_weight[:n_full], n_done + 1)
            stream["sgd"].append(path)
            stream["batch_loss"].append(losses)
            stream["kalman_path"].append(_kalman_filter(stream["kalman"], path))
            stream["theta"] = path[-1].copy()
        stream["pending"] = (X[n_full:], y[n_full:], sample_weight[n_full:])

    def _curve_loss(self, thetas):
        stats = self._stream["stats"]
        if self.curve_loss == "input_mean":
            return (thetas @ stats["sx"] - stats["sy"]) ** 2 / stats["s"] ** 2
        quad = np.einsum("ij,jk,ik->i", thetas, stats["sxx"], thetas)
        mse = (quad - 2 * thetas @ stats["sxy"] + stats["syy"]) / stats["s"]
        return np.maximum(mse, 0.0)  # rounding can push a perfect fit below zero

    def _finalize(self):
        stream = self._stream
        sgd, batch_loss, filtered = list(stream["sgd"]), list(stream["batch_loss"]), list(
            stream["kalman_path"])
        kalman = stream["kalman"]
        pX, py, ps = stream["pending"]
        if pX.shape[0]:
            # The incomplete batch as a provisional last update, on copies.
            kalman = copy.deepcopy(kalman)
            n_done = sum(len(a) for a in batch_loss)
            path, losses = self._run_sgd(stream["theta"], pX, py, ps, n_done + 1)
            sgd.append(path)
            batch_loss.append(losses)
            filtered.append(_kalman_filter(kalman, path))
        sgd, batch_loss, filtered = (np.concatenate(a) for a in (sgd, batch_loss, filtered))
        start = np.zeros((1, filtered.shape[1]))  # SGD starts from zero weights
        points = np.vstack([start, filtered])
        loss = self._curve_loss(points)
        steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
        area = 0.5 * (loss[:-1] + loss[1:]) * steps
        self.kalman_forecast_ = _kalman_forecast(kalman)
        if self.selection == "min_area":
            # A segment of length zero (a batch of zero-weight rows at the start)
            # has zero area whatever its loss and repeats the previous vector:
            # it is not a candidate.
            moved = steps > 0
            best = int(np.argmin(np.where(moved, area, np.inf))) if moved.any() else len(area) - 1
            chosen = filtered[best]
            self.selected_update_ = best + 1
        else:
            chosen = self.kalman_forecast_
            self.selected_update_ = len(filtered) + 1
        if not self.fit_intercept:
            chosen = chosen.copy()
            chosen[-1] = 0.0
        self.coef_ = chosen[:-1].copy()
        self.intercept_ = float(chosen[-1])
        self.n_updates_ = len(filtered)
        self._path = {"batch_loss": batch_loss, "sgd": sgd, "kalman": filtered,
                      "curve_loss": loss[1:], "area": area}
