"""Plots (need the ``plot`` extra: matplotlib).

Each family's plot functions live beside the family and are re-exported here.
"""

__all__ = []
