"""Simulation designs of the PRESTO paper: rare last classes, non-parallel boundaries."""

import numbers

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["make_relaxed_proportional_odds"]


@validate_params(
    {
        "n_samples": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_features": [Interval(numbers.Integral, 1, None, closed="left")],
        "intercepts": ["array-like"],
        "differences": [StrOptions({"sparse", "dense", "none"})],
        "beta": [Interval(numbers.Real, None, None, closed="neither")],
        "dev_size": [Interval(numbers.Real, 0, None, closed="left")],
        "dev_prob": [Interval(numbers.Real, 0, 1, closed="both")],
        "as_frame": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_relaxed_proportional_odds(
    n_samples=2500,
    *,
    n_features=10,
    intercepts=(0.0, 3.0, 5.0),
    differences="sparse",
    beta=1.0,
    dev_size=0.5,
    dev_prob=1 / 3,
    as_frame=False,
    random_state=None,
):
    """Generate ordinal data from a cumulative logit with boundary-specific slopes.

    The designs of Faletto and Bien (2023, sections 4.1 and 4.2, from their
    code): ``X ~ U(-1, 1)^p`` and ``P(Y <= k | x) = sigmoid(intercepts[k] +
    x @ coef[k])``, so with increasing intercepts the last class is rare.

    * ``"sparse"``: ``coef[0]`` has entries ``beta`` kept with probability
      ``dev_prob`` (else 0); each difference ``coef[k] - coef[k-1]`` is
      ``+-dev_size`` (random sign) with probability ``dev_prob``, else 0.
    * ``"dense"``: ``coef[0]`` and every difference are ``U(-dev_size, dev_size)``.
    * ``"none"``: proportional odds, ``coef[k] = coef[0]`` (drawn as for
      ``"sparse"``).

    Coefficients are redrawn until every class probability is non-negative on
    the drawn ``X`` and every class occurs, as in the paper's code.

    Parameters
    ----------
    n_samples : int, default=2500
        Number of rows.
    n_features : int, default=10
        Number of features ``p``.
    intercepts : array-like of shape (n_classes - 1,), default=(0, 3, 5)
        Increasing intercepts; their number sets the number of classes.
    differences : {"sparse", "dense", "none"}, default="sparse"
        How the boundaries' slopes differ (see above).
    beta : float, default=1.0
        Size of the non-zero entries of the first slope vector (``"sparse"``
        and ``"none"``).
    dev_size : float, default=0.5
        Size of the differences (``"sparse"``) or half-width of the uniform
        draws (``"dense"``).
    dev_prob : float, default=1/3
        Probability that an entry is non-zero (``"sparse"`` and ``"none"``).
    as_frame : bool, default=False
        Return pandas objects.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (``X``), ``target`` (classes ``0..K-1``), ``proba`` (true class
        probabilities, shape (n_samples, K)), ``coef`` (true slopes, shape
        (K-1, p)), ``intercept`` and ``feature_names``.

    Raises
    ------
    ValueError
        If the intercepts are not increasing, or 100 draws never gave valid
        probabilities with every class present.

    Examples
    --------
    >>> from weightstats.datasets import make_relaxed_proportional_odds
    >>> sim = make_relaxed_proportional_odds(random_state=0)
    >>> sim.data.shape, sim.proba.shape
    ((2500, 10), (2500, 4))
    >>> bool(sim.proba[:, -1].mean() < 0.02)  # the last class is rare
    True
    """
    intercepts = np.asarray(intercepts, dtype=np.float64)
    if intercepts.ndim != 1 or intercepts.size < 2 or np.any(np.diff(intercepts) <= 0):
        raise ValueError(
            "intercepts must be at least two increasing values (one per boundary); "
            f"got {intercepts}."
        )
    rng = check_random_state(random_state)
    K1, p = intercepts.size, n_features
    for _ in range(100):
        coef = np.empty((K1, p))
        if differences == "dense":
            coef[0] = rng.uniform(-dev_size, dev_size, p)
            steps = rng.uniform(-dev_size, dev_size, (K1 - 1, p))
        else:
            coef[0] = beta * (rng.uniform(size=p) < dev_prob)
            signs = rng.choice([-1.0, 1.0], size=(K1 - 1, p))
            steps = dev_size * (rng.uniform(size=(K1 - 1, p)) < dev_prob) * signs
            if differences == "none":
                steps[:] = 0.0
        coef[1:] = coef[0] + np.cumsum(steps, axis=0)
        X = rng.uniform(-1, 1, (n_samples, p))
        F = expit(intercepts + X @ coef.T)
        proba = np.diff(np.hstack([np.zeros((n_samples, 1)), F, np.ones((n_samples, 1))]), axis=1)
        if np.any(proba < 0):
            continue
        cumulative = np.cumsum(proba, axis=1)[:, :-1]
        y = np.sum(rng.uniform(size=(n_samples, 1)) > cumulative, axis=1)
        if np.unique(y).size == K1 + 1:
            break
    else:
        raise ValueError(
            "100 draws did not give non-negative class probabilities with every class present; "
            "use more samples, wider intercept gaps or smaller differences."
        )
    names = [f"x{j}" for j in range(p)]
    if as_frame:
        X = pd.DataFrame(X, columns=names)
        y = pd.Series(y, name="y")
        proba = pd.DataFrame(proba, columns=[f"P(y={k})" for k in range(K1 + 1)])
    return Bunch(
        data=X, target=y, proba=proba, coef=coef, intercept=intercepts, feature_names=names
    )
