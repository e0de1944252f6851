"""Data sets: the LaLonde job-training data and the Kang-Schafer simulation."""

from ._kang_schafer import make_kang_schafer
from ._lalonde import load_lalonde

__all__ = ["load_lalonde", "make_kang_schafer"]
