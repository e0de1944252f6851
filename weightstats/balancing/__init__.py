"""Causal balancing weights, balance diagnostics and treatment-effect estimates.

Balancers learn one weight per unit so that the treated and control groups
look alike, then estimate a treatment effect with honest uncertainty:

* :class:`IPMBalancer`: minimises an integral probability metric (MMD,
  energy distance, moments, sigmoid units) between the weighted groups;
* :class:`EntropyBalancer`: exact mean (and higher-moment) balance by
  exponential tilting;
* :class:`PropensityBalancer`: inverse probability weighting;
* :class:`UniformTransformerEstimator`: the effect as a kernel U-statistic
  after a transform that makes the reweighted group uniform on the cube.

The diagnostics (:func:`balance_table`, :func:`effective_sample_size`,
:func:`love_plot`), the weight tools (:func:`weight_summary`,
:func:`trim_weights`) and :func:`weighted_effect` / :class:`EffectResults` work
with weights from any method.
"""

from ._base import OverlapWarning
from ._diagnostics import BalanceWarning, balance_table, check_weighting, effective_sample_size
from ._effects import EffectResults, bootstrap_replicates, weighted_effect
from ._entropy import EntropyBalancer
from ._ipm import BalancingIPM, IPMBalancer, available_ipms, register_ipm
from ._plotting import love_plot
from ._propensity import PropensityBalancer
from ._uniform_transformer import UniformTransformerEstimator
from ._weights import WeightSummary, trim_weights, weight_summary

__all__ = [
    "BalanceWarning",
    "BalancingIPM",
    "EffectResults",
    "EntropyBalancer",
    "IPMBalancer",
    "OverlapWarning",
    "PropensityBalancer",
    "UniformTransformerEstimator",
    "WeightSummary",
    "available_ipms",
    "balance_table",
    "bootstrap_replicates",
    "check_weighting",
    "effective_sample_size",
    "love_plot",
    "register_ipm",
    "trim_weights",
    "weight_summary",
    "weighted_effect",
]
