"""Magnitude and weighting vectors: exact path vs bare LAPACK and magnipy, CG and local
paths at scale, scipy's CG loop vs a hand-written one, CG on a local dask cluster, and the
local method's agreement with the exact weights.

magnipy (PyPI 1.0.0) pins scipy 1.13 and pulls torch, so it runs in its own virtual
environment (``PEER_PYTHON``, default ``/work/wt/peers-magnipy/bin/python``, built with
``python -m venv /work/wt/peers-magnipy && pip install torch==2.13.0 magnipy``) through
``benchmarks/_magnipy_runner.py``; inputs and outputs go through ``.npz`` files.

Data: points uniform in the unit cube (10 dimensions unless stated), scale
``t = 8 / median(d)`` (the estimators' default) unless stated.
"""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.stats import spearmanr

from weightstats._kernels._laplacian_ref import laplacian_matrix_ref
from weightstats.magnitude import magnitude_function, select_scale, weighting_vector
from weightstats.magnitude._solvers import blas_threads

from ._timing import best_time

PEER_PYTHON = Path(os.environ.get("PEER_PYTHON", "/work/wt/peers-magnipy/bin/python"))
RUNNER = Path(__file__).with_name("_magnipy_runner.py")
# Threads for everyone (our kernels and LAPACK, the peers' BLAS). On a busy machine use 1:
# two-thread OpenBLAS factorisations there run up to 40x slower (a thread waits for a
# descheduled partner), which swamps every comparison.
N_JOBS = int(os.environ.get("MAGNITUDE_BENCH_N_JOBS", "2"))


def _points(n, d=10, seed=0):
    return np.random.default_rng(seed).random((n, d))


def _run_magnipy(X, ts, mode="weights", repeat=1):
    """(W, ts, magnitude, seconds) from magnipy, or a string saying why it could not run."""
    if not PEER_PYTHON.exists():
        return f"magnipy environment {PEER_PYTHON} not found"
    with tempfile.TemporaryDirectory() as tmp:
        path_in, path_out = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        np.savez(path_in, X=X, ts=np.asarray(ts, dtype=float), mode=mode, repeat=repeat)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(N_JOBS), "OMP_NUM_THREADS": str(N_JOBS)}
        done = subprocess.run([str(PEER_PYTHON), str(RUNNER), str(path_in), str(path_out)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            return f"magnipy failed: {done.stderr.strip().splitlines()[-1]}"
        out = np.load(path_out)
        return out["W"], out["ts"], out["magnitude"], float(out["seconds"]), out["points"]


def _bare_lapack(Z, repeat=3):
    """Best time of cho_factor + cho_solve on a prebuilt Z (copied outside the clock)."""
    best, w = np.inf, None
    for _ in range(repeat):
        A = np.array(Z, order="F")
        start = time.perf_counter()
        factor = cho_factor(A, lower=False, overwrite_a=True, check_finite=False)
        w = cho_solve(factor, np.ones(len(A)), check_finite=False)
        best = min(best, time.perf_counter() - start)
    return best, w


def exact_vs_lapack(quick):
    n = 1000 if quick else 5000
    X = _points(n)
    t = select_scale(X, random_state=0)
    weighting_vector(X[:500], t, n_jobs=N_JOBS)  # compile outside the clock
    Z = laplacian_matrix_ref(X, scale=t)
    with blas_threads(N_JOBS):
        bare_s, bare_w = _bare_lapack(Z)
        numpy_s = best_time(lambda: cho_solve(
            cho_factor(laplacian_matrix_ref(X, scale=t), overwrite_a=True, check_finite=False),
            np.ones(n), check_finite=False))
    ours = weighting_vector(X, t, method="cholesky", n_jobs=N_JOBS)
    ours_s = best_time(weighting_vector, X, t, method="cholesky", n_jobs=N_JOBS)
    diff = float(np.max(np.abs(ours - bare_w)) / np.max(np.abs(bare_w)))
    return [
        {"case": f"exact weights n={n} d=10 n_jobs={N_JOBS} (ours from X; peer on a prebuilt Z)",
         "ours_s": round(ours_s, 3), "peer": "bare LAPACK cho_factor+cho_solve",
         "peer_s": round(bare_s, 3), "ratio": round(bare_s / ours_s, 3),
         "ours_over_lapack": round(ours_s / bare_s, 3), "max_rel_diff": diff},
        {"case": f"exact weights n={n} d=10 (both from X)", "ours_s": round(ours_s, 3),
         "peer": "NumPy/SciPy: cdist, exp, cho_factor, cho_solve", "peer_s": round(numpy_s, 3),
         "ratio": round(numpy_s / ours_s, 3)},
    ]


def vs_magnipy(quick):
    rows = []
    # Agreement on random sets of several sizes, dimensions and scales.
    worst_w, worst_mag = 0.0, 0.0
    for seed, (n, d) in enumerate([(50, 2), (200, 3), (300, 5), (400, 10)]):
        X = np.random.default_rng(seed).standard_normal((n, d))
        ts = [0.5 * select_scale(X, factor=1.0), select_scale(X), 4.0 * select_scale(X)]
        peer = _run_magnipy(X, ts)
        if isinstance(peer, str):
            return [{"case": "magnipy agreement", "peer": "magnipy 1.0.0", "note": peer}]
        W = np.column_stack([weighting_vector(peer[4], t) for t in ts])
        worst_w = max(worst_w, float(np.max(np.abs(W - peer[0]))))
        worst_mag = max(worst_mag, float(np.max(np.abs(W.sum(0) - peer[2]) / peer[2])))
    rows.append({"case": "agreement with magnipy, 4 random sets x 3 scales",
                 "peer": "magnipy 1.0.0 (cholesky)", "max_abs_weight_diff": worst_w,
                 "max_rel_magnitude_diff": worst_mag, "within_1e-8": worst_w <= 1e-8})
    n = 1000 if quick else 5000
    X = _points(n)
    t = select_scale(X, random_state=0)
    peer = _run_magnipy(X, [t], repeat=3)
    ours = weighting_vector(peer[4], t, n_jobs=N_JOBS)
    ours_s = best_time(weighting_vector, X, t, n_jobs=N_JOBS)
    rows.append({"case": f"one weighting vector n={n} d=10", "ours_s": round(ours_s, 3),
                 "peer": "magnipy 1.0.0 (cholesky, distances included)",
                 "peer_s": round(peer[3], 3), "ratio": round(peer[3] / ours_s, 2),
                 "max_abs_weight_diff": float(np.max(np.abs(ours - peer[0][:, 0])))})
    n = 500 if quick else 2000
    X = _points(n)
    start = time.perf_counter()
    frame = magnitude_function(X, n_jobs=N_JOBS)
    ours_s = time.perf_counter() - start
    peer = _run_magnipy(X, [], mode="default")
    rows.append({"case": f"default magnitude function (convergence scale + 30 scales) n={n}",
                 "ours_s": round(ours_s, 2), "peer": "magnipy 1.0.0 Magnipy(X).get_magnitude()",
                 "peer_s": round(peer[3], 2), "ratio": round(peer[3] / ours_s, 2),
                 "t_conv_rel_diff": float(abs(frame.index[-1] - peer[1][-1]) / peer[1][-1])})
    return rows


def _true_residual(X, t, w):
    """||1 - Z w|| / ||1|| in double precision (outside the clock)."""
    from weightstats._kernels._laplacian import laplacian_symv

    return float(np.linalg.norm(1.0 - laplacian_symv(X, w, scale=t, n_jobs=N_JOBS))
                 / np.sqrt(len(w)))


def cg_large(quick):
    n = 5000 if quick else 50_000
    rows = []
    for d in (10, 3):
        X = _points(n, d)
        t = select_scale(X, random_state=0)
        weighting_vector(X[:500], t, method="cg", n_jobs=N_JOBS)  # compile outside the clock
        for tol in (1e-6, 1e-8):
            start = time.perf_counter()
            w, info = weighting_vector(X, t, method="cg", tol=tol, n_jobs=N_JOBS,
                                       return_info=True)
            seconds = time.perf_counter() - start
            rows.append({"case": f"CG n={n} d={d} tol={tol:g} n_jobs={N_JOBS}",
                         "ours_s": round(seconds, 1),
                         "setup_s": round(info["setup_seconds"], 1),
                         "n_iter (single + double)": f"{info['n_iter_single']} + "
                                                     f"{info['n_iter'] - info['n_iter_single']}",
                         "relative_residual": _true_residual(X, t, w),
                         "magnitude": float(w.sum())})
    return rows


def _textbook_pcg(matvec, precondition, b, tol, max_iter):
    """The peer of ``cg_loop``: preconditioned CG written out (the loop ``solve_cg``
    used before it moved to scipy), stopping on the recurrence residual."""
    x, r = np.zeros_like(b), b.copy()
    z = precondition(r)
    p, rz = z.copy(), r @ z
    b_norm, n_iter = np.linalg.norm(b), 0
    while np.linalg.norm(r) > tol * b_norm and n_iter < max_iter:
        Ap = matvec(p)
        alpha = rz / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        n_iter += 1
        z = precondition(r)
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return x, n_iter


def cg_loop(quick):
    """scipy.sparse.linalg.cg (what solve_cg runs) against a hand-written loop, on the same
    double-precision products and FSAI preconditioner, from zero to tol=1e-8. The runs
    alternate so that load from other jobs hits both alike; "loop overhead" is each run's
    time outside the products and the preconditioner, the only part that differs."""
    from scipy.sparse.linalg import LinearOperator, cg

    from weightstats._kernels._laplacian import laplacian_symv
    from weightstats.magnitude._solvers import FSAI_NEIGHBORS, Neighbours, _fsai_preconditioner

    n = 4000 if quick else 20_000
    X = _points(n)
    t = select_scale(X, random_state=0)
    XT = np.ascontiguousarray(X.T)
    fsai, _ = _fsai_preconditioner(X, t, "euclidean", FSAI_NEIGHBORS,
                                   Neighbours(X, "euclidean", N_JOBS), N_JOBS)
    spent = {"operators": 0.0, "products": 0}

    def matvec(v):
        start = time.perf_counter()
        out = laplacian_symv(X, v, scale=t, n_jobs=N_JOBS, _XT=XT)
        spent["operators"] += time.perf_counter() - start
        spent["products"] += 1
        return out

    def precondition(r):
        start = time.perf_counter()
        out = fsai(r)
        spent["operators"] += time.perf_counter() - start
        return out

    matvec(np.ones(n))  # compile outside the clock
    A = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    M = LinearOperator((n, n), matvec=precondition, dtype=np.float64)
    b = np.ones(n)
    runs = {
        "scipy": lambda: cg(A, b, rtol=1e-8, atol=0.0, M=M)[0],
        "hand-written": lambda: _textbook_pcg(matvec, precondition, b, 1e-8, 1000)[0],
    }
    total, overhead, products, solutions = {k: [] for k in runs}, {k: [] for k in runs}, {}, {}
    for _ in range(1 if quick else 3):
        for name, run in runs.items():
            spent.update(operators=0.0, products=0)
            start = time.perf_counter()
            solutions[name] = run()
            total[name].append(time.perf_counter() - start)
            overhead[name].append(total[name][-1] - spent["operators"])
            products[name] = spent["products"]
    ours, peer = np.median(total["scipy"]), np.median(total["hand-written"])
    return [{"case": f"PCG n={n} d=10 tol=1e-8 n_jobs={N_JOBS}, median of {len(total['scipy'])}",
             "ours_s": round(ours, 2), "peer": "hand-written PCG loop, same operators",
             "peer_s": round(peer, 2), "ratio": round(peer / ours, 3),
             "products (scipy, hand-written)": f"{products['scipy']}, {products['hand-written']}",
             "loop overhead s (scipy, hand-written)":
                 f"{min(overhead['scipy']):.4f}, {min(overhead['hand-written']):.4f}",
             "max_abs_w_diff": float(np.max(np.abs(solutions["scipy"] - solutions["hand-written"]))),
             "all_s (scipy | hand-written)": f"{[round(x, 1) for x in total['scipy']]} | "
                                             f"{[round(x, 1) for x in total['hand-written']]}"}]


def dask_cg(quick):
    """CG on a local dask cluster (2 workers x 1 thread, in-process) against one machine
    with 2 threads: one product Z v, and a whole solve. The rectangular product (all n^2
    kernel values, what each distributed product computed before the symmetric blocks)
    is timed for reference."""
    from distributed import Client, LocalCluster

    from weightstats._kernels._laplacian import laplacian_matvec, laplacian_symv
    from weightstats.magnitude._distributed import DistributedPoints

    n = 3000 if quick else 20_000
    X = _points(n)
    t = select_scale(X, random_state=0)
    v = np.random.default_rng(1).random(n)
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        points = DistributedPoints(client, X, "euclidean")
        product = points.matvec(t)
        product(v)  # compile and warm up outside the clock
        laplacian_matvec(X[:100], X[:100], v[:100], scale=t, n_jobs=2)
        local_s = best_time(laplacian_symv, X, v, scale=t, n_jobs=2)
        dask_s = best_time(product, v)
        rows.append({"case": f"one product Z v n={n} d=10, {points.n_blocks} blocks "
                             "(2 workers x 1 thread)",
                     "ours_s": round(dask_s, 3),
                     "peer": "one machine, 2 threads: symmetric kernel",
                     "peer_s": round(local_s, 3), "ratio": round(local_s / dask_s, 2),
                     "rectangular_s (all n^2 values, 2 threads)": round(best_time(
                         laplacian_matvec, X, X, v, scale=t, n_jobs=2), 3),
                     "pairs per product": points.pairs_per_product()})
        start = time.perf_counter()
        w, info = weighting_vector(X, t, client=client, return_info=True)
        dask_s = time.perf_counter() - start
    start = time.perf_counter()
    w_local, local_info = weighting_vector(X, t, method="cg", n_jobs=2, return_info=True)
    local_s = time.perf_counter() - start
    rows.append({"case": f"CG n={n} d=10 tol=1e-8 on the cluster", "ours_s": round(dask_s, 1),
                 "setup_s": round(info["setup_seconds"], 1),
                 "peer": "one machine, 2 threads",
                 "peer_s": round(local_s, 1), "ratio": round(local_s / dask_s, 2),
                 "n_iter (cluster; one machine single + double)": f"{info['n_iter']}; "
                                                  f"{local_info['n_iter_single']} + "
                 f"{local_info['n_iter'] - local_info['n_iter_single']}",
                 "relative_residual": _true_residual(X, t, w),
                 "max_abs_w_diff": float(np.max(np.abs(w - w_local)))})
    return rows


def local_large(quick):
    rows = []
    for n, d in ([(100_000, 3)] if quick else [(1_000_000, 3), (100_000, 10)]):
        X = _points(n, d)
        t = select_scale(X, random_state=0)
        weighting_vector(X[:500], t, method="local", n_jobs=N_JOBS)  # compile outside the clock
        start = time.perf_counter()
        weighting_vector(X, t, method="local", n_jobs=N_JOBS)
        rows.append({"case": f"local n={n} d={d} k=50",
                     "ours_s": round(time.perf_counter() - start, 1)})
    return rows


def local_agreement(quick):
    n = 1000 if quick else 3000
    X = _points(n)
    base = select_scale(X, factor=1.0, random_state=0)
    rows = []
    for factor in (1, 2, 4, 8, 16):
        exact = weighting_vector(X, factor * base)
        row = {"case": f"Spearman(local, exact) n={n} d=10 t={factor}/median(d)"}
        for k in (30, 50, 100):
            local = weighting_vector(X, factor * base, method="local", n_neighbors=k)
            row[f"k={k}"] = round(float(spearmanr(local, exact)[0]), 3)
            if k == 50:  # why magnitude() refuses the local method
                row["sum of local weights (k=50)"] = round(float(local.sum()), 1)
        row["magnitude"] = round(float(exact.sum()), 1)
        rows.append(row)
    return rows


BENCHMARKS = {
    "exact_vs_lapack": exact_vs_lapack,
    "vs_magnipy": vs_magnipy,
    "cg_large": cg_large,
    "cg_loop": cg_loop,
    "dask_cg": dask_cg,
    "local_large": local_large,
    "local_agreement": local_agreement,
}
