"""The Kang-Schafer (2007) simulation design, a standard stress test for weights."""

import numbers

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_kang_schafer"]

_PS_COEF = np.array([-1.0, 0.5, -0.25, -0.1])
_OUTCOME_COEF = np.array([27.4, 13.7, 13.7, 13.7])


@validate_params(
    {
        "n_samples": [Interval(numbers.Integral, 2, None, closed="left")],
        "misspecified": ["boolean"],
        "overlap": [Interval(numbers.Real, 0, None, closed="left")],
        "noise": [Interval(numbers.Real, 0, None, closed="left")],
        "as_frame": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_kang_schafer(
    n_samples=1000, *, misspecified=True, overlap=1.0, noise=1.0, as_frame=False, random_state=None
):
    """Generate the Kang-Schafer (2007) simulation design.

    Latent covariates ``Z ~ N(0, I_4)``; treatment
    ``T ~ Bernoulli(expit(overlap * (-Z1 + 0.5 Z2 - 0.25 Z3 - 0.1 Z4)))``;
    outcome ``y = 210 + 27.4 Z1 + 13.7 (Z2 + Z3 + Z4) + N(0, noise^2)``,
    independent of ``T`` given ``Z``, so every treatment effect is zero. The
    naive difference in means is biased (about -20 at ``overlap=1``). With
    ``misspecified=True`` the observed covariates are Kang and Schafer's
    nonlinear transforms ``X1 = exp(Z1/2)``, ``X2 = Z2/(1 + exp(Z1)) + 10``,
    ``X3 = (Z1 Z3/25 + 0.6)^3``, ``X4 = (Z2 + Z4 + 20)^2``, so linear models
    in ``X`` are wrong for both the propensity and the outcome.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of units.
    misspecified : bool, default=True
        Return the transformed covariates (``True``) or ``Z`` itself.
    overlap : float, default=1.0
        Multiplies the propensity's linear predictor; larger values mean
        less overlap (2.0 is the common low-overlap variant).
    noise : float, default=1.0
        Standard deviation of the outcome noise.
    as_frame : bool, default=False
        Return pandas objects instead of arrays.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (observed covariates, shape (n_samples, 4)),
        ``treatment`` (0/1), ``target`` (outcome), ``latent`` (``Z``),
        ``propensity`` (true treatment probabilities) and ``true_effect``
        (0.0 for ATE, ATT and ATC).

    Examples
    --------
    >>> from weightstats.datasets import make_kang_schafer
    >>> ks = make_kang_schafer(2000, random_state=0)
    >>> ks.data.shape, ks.true_effect
    ((2000, 4), 0.0)
    >>> naive = ks.target[ks.treatment == 1].mean() - ks.target[ks.treatment == 0].mean()
    >>> bool(-25 < naive < -15)
    True
    """
    rng = check_random_state(random_state)
    Z = rng.standard_normal((n_samples, 4))
    propensity = expit(overlap * (Z @ _PS_COEF))
    treatment = (rng.uniform(size=n_samples) < propensity).astype(np.int64)
    target = 210.0 + Z @ _OUTCOME_COEF + noise * rng.standard_normal(n_samples)
    if misspecified:
        X = np.column_stack(
            [
                np.exp(Z[:, 0] / 2),
                Z[:, 1] / (1 + np.exp(Z[:, 0])) + 10,
                (Z[:, 0] * Z[:, 2] / 25 + 0.6) ** 3,
                (Z[:, 1] + Z[:, 3] + 20) ** 2,
            ]
        )
    else:
        X = Z.copy()
    names = ["X1", "X2", "X3", "X4"]
    if as_frame:
        X = pd.DataFrame(X, columns=names)
        Z = pd.DataFrame(Z, columns=["Z1", "Z2", "Z3", "Z4"])
        treatment = pd.Series(treatment, name="treatment")
        target = pd.Series(target, name="y")
        propensity = pd.Series(propensity, name="propensity")
    return Bunch(
        data=X,
        treatment=treatment,
        target=target,
        latent=Z,
        propensity=propensity,
        feature_names=names,
        true_effect=0.0,
    )
