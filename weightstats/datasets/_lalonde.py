"""The LaLonde (NSW) job-training data shipped with weightstats."""

from importlib import resources

import numpy as np
import pandas as pd
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

__all__ = ["load_lalonde"]

COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
_INTEGER_COLUMNS = ["treat", "age", "educ", "black", "hisp", "marr", "nodegree"]


def _read_csv(name):
    with resources.files(__package__).joinpath("data", name).open("rb") as fh:
        frame = pd.read_csv(fh)
    return frame.astype({col: np.int64 for col in _INTEGER_COLUMNS})


@validate_params(
    {"controls": [StrOptions({"nsw", "cps"})], "as_frame": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_lalonde(*, controls="nsw", as_frame=True):
    """Load the LaLonde NSW job-training data (Dehejia-Wahba sample).

    The 185 NSW treated men with either the 260 experimental controls
    (``controls="nsw"``, a randomised experiment, ATT = $1,794.34) or 15,992
    CPS-1 survey respondents (``controls="cps"``, the classic hard
    observational benchmark). Read more in :ref:`lalonde_dataset`.

    Parameters
    ----------
    controls : {"nsw", "cps"}, default="nsw"
        Which comparison group to pair with the NSW treated.
    as_frame : bool, default=True
        Return pandas objects (``data`` DataFrame, ``treatment`` and
        ``target`` Series); otherwise NumPy arrays.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With fields ``data`` (the 8 pre-treatment covariates), ``treatment``
        (1 = NSW treated), ``target`` (1978 earnings, ``re78``), ``frame``
        (all columns; ``None`` when ``as_frame=False``), ``feature_names``,
        ``experimental_att`` (1794.34) and ``DESCR``.

    Examples
    --------
    >>> from weightstats.datasets import load_lalonde
    >>> nsw = load_lalonde()
    >>> nsw.data.shape, int(nsw.treatment.sum())
    ((445, 8), 185)
    >>> float(round(nsw.target[nsw.treatment == 1].mean() - nsw.target[nsw.treatment == 0].mean(), 2))
    1794.34
    >>> load_lalonde(controls="cps").data.shape
    (16177, 8)
    """
    nsw = _read_csv("lalonde_nsw.csv")
    if controls == "nsw":
        frame = nsw
    else:
        cps = _read_csv("lalonde_cps_controls.csv")
        frame = pd.concat([nsw[nsw["treat"] == 1], cps], ignore_index=True)
    frame = frame.reset_index(drop=True)
    data, treatment, target = frame[COVARIATES], frame["treat"], frame["re78"]
    if not as_frame:
        data, treatment, target = data.to_numpy(float), treatment.to_numpy(), target.to_numpy()
    descr = resources.files(__package__).joinpath("descr", "lalonde.rst").read_text()
    return Bunch(
        data=data,
        treatment=treatment,
        target=target,
        frame=frame if as_frame else None,
        feature_names=list(COVARIATES),
        experimental_att=1794.34,
        DESCR=descr,
    )
