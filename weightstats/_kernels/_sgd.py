"""Mini-batch SGD on the squared loss, recording the path (numba, with a NumPy reference).

One update per batch of ``batch_size`` consecutive rows (the last batch may be
shorter): with residuals ``r_i = x_i . w + b - y_i`` and sample weights
``s_i``, the recorded batch loss is ``sum_i s_i r_i^2 / m`` (``m`` rows in the
batch) and the update is ``w -= lr * sum_i s_i r_i x_i / m``,
``b -= lr * sum_i s_i r_i / m`` (the gradient of half the batch loss), so a
sample weight scales that sample's step as in scikit-learn's SGD.

``theta`` holds ``[w, b]``; the kernel returns ``theta`` after every update.
Serial by nature: each update depends on the previous one.
"""

import numba
import numpy as np

__all__ = ["sgd_squared_path", "sgd_squared_path_ref"]


@numba.njit(cache=True, nogil=True)
def _sgd_squared_path(X, y, sw, theta, lr, batch_size, fit_intercept, path, losses):
    n, d = X.shape
    w = theta.copy()
    n_batches = path.shape[0]
    for k in range(n_batches):
        start = k * batch_size
        stop = min(start + batch_size, n)
        m = stop - start
        grad = np.zeros(d)
        grad_b = 0.0
        loss = 0.0
        for i in range(start, stop):
            r = w[d]
            for j in range(d):
                r += X[i, j] * w[j]
            r -= y[i]
            sr = sw[i] * r
            loss += sr * r
            grad_b += sr
            for j in range(d):
                grad[j] += sr * X[i, j]
        step = lr / m
        for j in range(d):
            w[j] -= step * grad[j]
        if fit_intercept:
            w[d] -= step * grad_b
        for j in range(d + 1):
            path[k, j] = w[j]
        losses[k] = loss / m


def sgd_squared_path(X, y, sample_weight, theta, *, learning_rate, batch_size, fit_intercept):
    """Run mini-batch SGD over the rows in order and return the path.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows in the order they are visited.
    y : ndarray of shape (n_samples,)
        Targets.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights.
    theta : ndarray of shape (n_features + 1,)
        Starting ``[coef, intercept]``; not modified.
    learning_rate : float
        Constant step size.
    batch_size : int
        Rows per update; the last batch holds the remainder.
    fit_intercept : bool
        Whether the intercept is updated.

    Returns
    -------
    path : ndarray of shape (n_batches, n_features + 1)
        ``[coef, intercept]`` after each update.
    losses : ndarray of shape (n_batches,)
        Weighted batch loss before each update.
    """
    n = X.shape[0]
    n_batches = -(-n // batch_size)
    path = np.empty((n_batches, X.shape[1] + 1))
    losses = np.empty(n_batches)
    _sgd_squared_path(
        np.ascontiguousarray(X, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(sample_weight, dtype=np.float64),
        np.asarray(theta, dtype=np.float64),
        float(learning_rate),
        int(batch_size),
        bool(fit_intercept),
        path,
        losses,
    )
    return path, losses


def sgd_squared_path_ref(X, y, sample_weight, theta, *, learning_rate, batch_size, fit_intercept):
    """NumPy reference for :func:`sgd_squared_path` (one vectorised step per batch)."""
    w = np.array(theta, dtype=float)
    path, losses = [], []
    for start in range(0, X.shape[0], batch_size):
        Xb, yb, sb = (a[start:start + batch_size] for a in (X, y, sample_weight))
        r = Xb @ w[:-1] + w[-1] - yb
        losses.append(np.sum(sb * r**2) / len(yb))
        w[:-1] -= learning_rate * (sb * r) @ Xb / len(yb)
        if fit_intercept:
            w[-1] -= learning_rate * np.sum(sb * r) / len(yb)
        path.append(w.copy())
    return np.array(path).reshape(-1, X.shape[1] + 1), np.array(losses)
