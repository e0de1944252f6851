"""Optional dependencies: import them on demand with a message that says how to install."""

import importlib

__all__ = ["import_optional", "check_matplotlib_support"]

# Which extra provides each optional module.
_EXTRAS = {
    "matplotlib": "plot",
    "torch": "torch",
    "skorch": "torch",
    "dask": "dask",
    "distributed": "dask",
}


def import_optional(name, *, purpose=None):
    """Import an optional dependency or raise an ImportError that says how to get it.

    Parameters
    ----------
    name : str
        Module name, e.g. ``"matplotlib.pyplot"``.
    purpose : str, default=None
        What needs it, for the message (e.g. ``"love_plot"``).

    Returns
    -------
    module : module
        The imported module.

    Examples
    --------
    >>> from weightstats.utils import import_optional
    >>> import_optional("math").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = _EXTRAS.get(top)
        needed = f"{purpose} needs {top}" if purpose else f"{top} is required"
        hint = f"pip install weightstats[{extra}]" if extra else f"pip install {top}"
        raise ImportError(f"{needed}, which is not installed: {hint}") from exc


def check_matplotlib_support(caller):
    """Raise an informative ImportError if matplotlib is missing.

    Parameters
    ----------
    caller : str
        Name of the function that needs matplotlib.

    Returns
    -------
    pyplot : module
        ``matplotlib.pyplot``.

    Examples
    --------
    >>> from weightstats.utils import check_matplotlib_support
    >>> try:
    ...     plt = check_matplotlib_support("my_plot")
    ... except ImportError as exc:  # only where matplotlib is not installed
    ...     plt = None
    """
    return import_optional("matplotlib.pyplot", purpose=caller)
