"""Shared plotting helpers (matplotlib is an optional extra)."""

from ..utils._optional import check_matplotlib_support

__all__ = ["get_axes"]


def get_axes(ax=None, *, caller, figsize=None):
    """Return ``(figure, axes)``: ``ax`` itself or a new single-axes figure.

    Parameters
    ----------
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when ``None``.
    caller : str
        Name of the plotting function, for the ImportError message.
    figsize : tuple of float, default=None
        Size of a new figure.

    Returns
    -------
    fig : matplotlib Figure
        The figure of ``ax``.
    ax : matplotlib Axes
        Axes to draw on.
    """
    plt = check_matplotlib_support(caller)
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax
