"""Write ``ordinal_synthetic.csv``: a 4-class non-parallel cumulative-logit sample.

Used with ``ordinal_vgam.R`` for golden values of the unpenalised
non-parallel cumulative logit (PRESTO at ``alpha=0``) with frequency weights.
Run from the repository root: ``python tests/results/make_ordinal_synthetic.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

rng = np.random.default_rng(20240605)
n = 300
X = np.column_stack([rng.uniform(-1, 1, n), rng.normal(2.0, 1.5, n), rng.binomial(1, 0.4, n)])
intercepts = np.array([-1.0, 0.8, 2.2])
B = np.array([[0.8, -0.4, 0.5], [0.8, -0.2, 0.5], [1.3, -0.2, 0.0]])
F = expit(intercepts + X @ B.T)
assert np.all(np.diff(F, axis=1) > 0)
proba = np.diff(np.column_stack([np.zeros(n), F, np.ones(n)]), axis=1)
y = np.array([rng.choice(4, p=p) for p in proba]) + 1
weight = rng.integers(1, 4, n)
frame = pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "w": weight})
frame.to_csv(Path(__file__).with_name("ordinal_synthetic.csv"), index=False, float_format="%.10g")
print(frame["y"].value_counts().sort_index())
