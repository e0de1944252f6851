"""Uniform transformer: the kernel U-statistic's double sum, numba vs NumPy broadcasting.

The core of ``UniformTransformerEstimator`` is the two-sample kernel sum
``sum_i sum_j K_h(U_i, U_j) y_j`` over treated ``i`` and controls ``j`` with
the boundary-reflected product Epanechnikov kernel on the unit cube.

* ``d2_vs_numpy``: n0 = n1 = 50,000, d = 2, the ``"auto"`` bandwidth. Peer: the
  chunked NumPy broadcast (``_reference.kernel_sums_ref``: per coordinate the
  three reflected profile terms on a (chunk x n0) block, product, then a GEMV),
  timed on 2,000 query rows and scaled to 50,000 (its cost is exactly linear in
  the rows). Ours: the all-pairs tiled kernel (same work) and the default
  grid neighbour search (visits only pairs within h). Target: ratio >= 10.
* ``throughput``: pairs per second per core of the tiled kernel (n_jobs=1)
  against the machine's double-precision compute limit for the flops an
  interior pair needs (see ``FLOPS_PER_PAIR``), i.e. the fraction of peak.
* ``d1_sweep``: d = 1, n0 = n1 = 10^6: the exact O(n log n) sweep for the
  double sum, and the whole ``fit`` (rank transform, weights, effect and
  standard error), in seconds; accuracy of the sweep against the tiled
  kernel on 1,000 queries.
* ``fit_times``: wall time of ``fit`` at n = 2,000 for d = 1, 2, 5 (what one
  replication of the test-suite simulations costs).
"""

import re
import warnings

import numpy as np

from weightstats._kernels import kernel_sums
from weightstats._kernels._reference import kernel_sums_ref
from weightstats.balancing import UniformTransformerEstimator
from weightstats.balancing._uniform_transformer import auto_bandwidth

from ._timing import best_time

# Interior pair, Epanechnikov, d = 2, one value column: per coordinate a
# subtraction, a scaling, 1 - t*t (two flops), the clamp at zero and the
# product into the running value (6); then one multiply-add with y (2).
FLOPS_PER_PAIR = {2: 2 * 6 + 2}
# AVX-512: two FMA units x 8 doubles x 2 flops per cycle.
FLOPS_PER_CYCLE = 32


def _cube_points(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, d))


def d2_vs_numpy(quick):
    n = 5_000 if quick else 50_000
    d = 2
    h = auto_bandwidth(n, d)
    U1, U0 = _cube_points(n, d, 0), _cube_points(n, d, 1)
    y = np.random.default_rng(2).standard_normal(n)
    rows = 500 if quick else 2_000
    ref_part = kernel_sums_ref(U1[:rows], U0, y, bandwidth=h, chunk_size=250)
    peer_part_s = best_time(kernel_sums_ref, U1[:rows], U0, y, bandwidth=h, chunk_size=250,
                            repeat=1, warmup=0)
    peer_s = peer_part_s * n / rows
    out = []
    for method in ("tiled", "grid"):
        for n_jobs in (1, 2):
            ours = kernel_sums(U1, U0, y, bandwidth=h, method=method, n_jobs=n_jobs)
            ours_s = best_time(kernel_sums, U1, U0, y, bandwidth=h, method=method,
                               n_jobs=n_jobs, repeat=2)
            scale = kernel_sums_ref(U1[:rows], U0, np.abs(y), bandwidth=h, chunk_size=250)
            out.append({
                "case": f"{method} n0=n1={n} d={d} h={h:.4f} n_jobs={n_jobs}",
                "ours_s": round(ours_s, 3),
                "peer": f"NumPy chunked broadcast (scaled from {rows} rows)",
                "peer_s": round(peer_s, 2),
                "ratio": round(peer_s / ours_s, 1),
                "max_rel_diff": float(np.max(np.abs(ours[:rows] - ref_part) / scale)),
            })
    return out


def _peak_flops_per_core():
    mhz = None
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    flags = open("/proc/cpuinfo").read()
    per_cycle = FLOPS_PER_CYCLE if re.search(r"\bavx512f\b", flags) else 16
    return mhz * 1e6 * per_cycle, mhz, per_cycle


def throughput(quick):
    n = 5_000 if quick else 20_000
    d = 2
    h = 0.05
    # All sources at least h from the faces: the interior path that FLOPS_PER_PAIR counts.
    rng = np.random.default_rng(3)
    U1 = rng.uniform(size=(n, d))
    U0 = rng.uniform(h, 1 - h, size=(n, d))
    y = rng.standard_normal(n)
    kernel_sums(U1[:100], U0[:100], y[:100], bandwidth=h, method="tiled")
    seconds = best_time(kernel_sums, U1, U0, y, bandwidth=h, method="tiled", n_jobs=1, repeat=3)
    pairs_per_s = n * n / seconds
    peak, mhz, per_cycle = _peak_flops_per_core()
    limit = peak / FLOPS_PER_PAIR[d]
    return [{
        "case": f"tiled, interior pairs, n0=n1={n} d={d} n_jobs=1",
        "ours_s": round(seconds, 3),
        "pairs_per_s_per_core": f"{pairs_per_s:.3g}",
        "compute_limit_pairs_per_s": f"{limit:.3g}",
        "fraction_of_limit": round(pairs_per_s / limit, 3),
        "assumptions": f"{FLOPS_PER_PAIR[d]} flops/pair, {per_cycle} flops/cycle, {mhz:.0f} MHz",
    }]


def d1_sweep(quick):
    n = 100_000 if quick else 1_000_000
    rng = np.random.default_rng(4)
    U1, U0 = rng.uniform(size=n), rng.uniform(size=n)
    y = rng.standard_normal(n)
    h = auto_bandwidth(n, 1)
    kernel_sums(U1[:100], U0[:100], y[:100], bandwidth=h, method="sweep")
    sums = kernel_sums(U1, U0, y, bandwidth=h, method="sweep")
    sweep_s = best_time(kernel_sums, U1, U0, y, bandwidth=h, method="sweep", repeat=2)
    check = kernel_sums(U1[:1000], U0, y, bandwidth=h, method="tiled")
    scale = kernel_sums(U1[:1000], U0, np.abs(y), bandwidth=h, method="tiled")
    rows = [{
        "case": f"sweep double sum, d=1, n0=n1={n}, h={h:.4f}",
        "ours_s": round(sweep_s, 3),
        "max_rel_diff_vs_tiled": float(np.max(np.abs(sums[:1000] - check) / scale)),
    }]
    x = rng.standard_normal(2 * n)
    z = np.arange(2 * n) % 2
    outcome = x + z + rng.standard_normal(2 * n)
    est = UniformTransformerEstimator()
    fit_s = best_time(est.fit, x[:, None], z, outcome, repeat=1)
    rows.append({"case": f"UniformTransformerEstimator.fit, d=1, n={2 * n} (ATT, effect + SE)",
                 "ours_s": round(fit_s, 3)})
    return rows


def fit_times(quick):
    rows = []
    reps = 2 if quick else 5
    for d in (1, 2, 5):
        rng = np.random.default_rng(5)
        X = rng.standard_normal((2000, d))
        z = np.arange(2000) % 2
        y = X.sum(axis=1) + z + rng.standard_normal(2000)
        # The default map is "rank" for d = 1 and the optimal-transport rank for d > 1.
        for transformation in (("rank",) if d == 1 else ("rank", "ot")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                est = UniformTransformerEstimator(transformation=transformation, random_state=0)
                seconds = best_time(est.fit, X, z, y, repeat=reps)
            rows.append({"case": f"fit n=2000 d={d} (ATT, {transformation}, projection SE)",
                         "ours_s": round(seconds, 4)})
    return rows


BENCHMARKS = {
    "d2_vs_numpy": d2_vs_numpy,
    "throughput": throughput,
    "d1_sweep": d1_sweep,
    "fit_times": fit_times,
}
