"""Golden values of intel/auto-round for the SignRound tests.

Writes ``signround_autoround_goldens.npz``: fixed inputs and what auto-round
(0.16.1, torch 2.13.0, CPU) computes from them:

* ``quant_tensor_asym`` / ``quant_tensor_sym`` of a 7 x 40 weight with groups
  of 16 (the last one padded), at 2, 3, 4 and 8 bits, with V = 0 and unit
  range factors and with random V and factors (float32 scales,
  ``q_scale_thresh=1e-8``, as its ``WrapperLinear`` uses for float32 scales);
* the rounding its ``WrapperLinear`` and ``SignSGD`` learn for a
  ``Linear(24, 6)`` from 32 calibration rows (2 bits, groups of 8, 100 steps,
  ``lr = minmax_lr = 1 / 100``, ``LinearLR`` to 0, full batch, best loss kept:
  ``benchmarks/nn_quantization.py:auto_round_layer``).

Run once where auto-round is installed (the ``test`` extra has it); the
tests compare with the stored arrays, also where auto-round is absent, and
would show a change of rule in a later auto-round release.

    python tests/results/make_signround_goldens.py
"""

import sys
from pathlib import Path

import numpy as np
import torch
from auto_round.data_type.int import quant_tensor_asym, quant_tensor_sym

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))
from benchmarks.nn_quantization import auto_round_layer  # noqa: E402

generator = torch.Generator().manual_seed(20261205)
out = {}
W = torch.randn(7, 40, generator=generator)
out["W"] = W.numpy()
n_groups, group = 7 * 3, 16
out["v"] = (torch.rand(n_groups, group, generator=generator) - 0.5).numpy()
out["min_scale"] = torch.rand(n_groups, generator=generator).numpy()
out["max_scale"] = torch.rand(n_groups, generator=generator).numpy()
for sym, quant in (("asym", quant_tensor_asym), ("sym", quant_tensor_sym)):
    for bits in (2, 3, 4, 8):
        common = dict(bits=bits, group_size=16, scale_dtype=torch.float32, q_scale_thresh=1e-8)
        out[f"rtn_{sym}_{bits}"] = quant(W, v=0, min_scale=1.0, max_scale=1.0, **common)[0].numpy()
        out[f"tuned_{sym}_{bits}"] = quant(
            W, v=torch.as_tensor(out["v"]), min_scale=torch.as_tensor(out["min_scale"]),
            max_scale=torch.as_tensor(out["max_scale"]), **common,
        )[0].numpy()

torch.manual_seed(7)
layer = torch.nn.Linear(24, 6)
X = torch.randn(32, 24, generator=generator)
best, best_loss, _ = auto_round_layer(layer, X, bits=2, group_size=8, iters=100)
out["layer_weight"] = layer.weight.detach().numpy()
out["layer_bias"] = layer.bias.detach().numpy()
out["X"] = X.numpy()
for key, value in best.items():
    out[f"learned_{key}"] = value.numpy()
out["learned_loss"] = np.float64(best_loss)
np.savez_compressed(HERE / "signround_autoround_goldens.npz", **out)
print(sorted(out))
