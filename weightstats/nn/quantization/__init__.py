"""Weight quantisation: oscillation-free quantisation-aware training and SignRound.

Quantisation-aware training (Liu, Liu & Cheng, "Oscillation-free Quantization
for Low-bit Vision Transformers", ICML 2023):

* :class:`StatsQ` / :func:`statsq_quantize`: statistical scale
  ``2 mean|W_row|`` on a mid-rise grid with a straight-through gradient, as
  a ``torch.nn.utils.parametrize`` parametrisation; :class:`LSQ` /
  :func:`lsq_fake_quantize`, the learned-scale baseline;
  :func:`prepare_qat` registers either on a model's layers;
* :class:`TrackOscillation`: per-layer oscillation frequency of the
  integer weights, in the skorch history;
* :class:`ConfidenceGuidedAnnealing`: freezes the weights far from a
  rounding boundary while the learning rate anneals;
* :class:`QKReparamAttention`: attention that quantises the per-head
  query-key product.

Post-training weight rounding (SignRound, Cheng et al.; intel/auto-round):

* :class:`SignRound`: learns rounding offsets and range factors by signed
  gradient descent on block outputs, then builds :class:`QuantLinear`
  layers (packed integer weights, scales, zero points);
  :func:`rtn_quantize` is the round-to-nearest baseline;
  :func:`signround_fake_quantize` is the rounding rule.
"""

from ._attention import QKReparamAttention
from ._cga import ConfidenceGuidedAnnealing, confident_weights
from ._oscillation import TrackOscillation
from ._quant_linear import QuantLinear
from ._quantizers import (
    LSQ,
    StatsQ,
    lsq_fake_quantize,
    prepare_qat,
    quantized_weights,
    statsq_quantize,
)
from ._rounding import signround_fake_quantize
from ._signround import SignRound, rtn_quantize

__all__ = [
    "LSQ",
    "ConfidenceGuidedAnnealing",
    "QKReparamAttention",
    "QuantLinear",
    "SignRound",
    "StatsQ",
    "TrackOscillation",
    "confident_weights",
    "lsq_fake_quantize",
    "prepare_qat",
    "quantized_weights",
    "rtn_quantize",
    "signround_fake_quantize",
    "statsq_quantize",
]
