"""Data sets: the LaLonde job-training data and the Kang-Schafer simulation."""

from ._kang_schafer import make_kang_schafer
from ._lalonde import load_lalonde
from ._relaxed_proportional_odds import make_relaxed_proportional_odds

__all__ = ["load_lalonde", "make_kang_schafer", "make_relaxed_proportional_odds"]
