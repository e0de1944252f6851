"""Plots (need the ``plot`` extra: matplotlib).

Each family's plot functions live beside the family and are re-exported here.
"""

from ..balancing._plotting import love_plot

__all__ = ["love_plot"]
