"""Kernels: matrix-free K @ v (numba) vs building the dense kernel matrix with NumPy/BLAS.

The peer is the usual NumPy route: squared distances through the BLAS
expansion ``|x|^2 + |y|^2 - 2 X Y'`` (one GEMM), the kernel transform on the
whole n x n matrix, then a GEMV. Same n^2 distance-plus-transform work, O(n^2)
memory. Ours computes each row's kernel values in blocks and contracts them at
once: O(n) memory. The goal: at least 50% of the dense throughput at
n = 4000, i.e. ratio >= 0.5.
"""

import numpy as np

from weightstats._kernels import kernel_matvec

from ._timing import best_time, peak_memory_mb


def _dense_numpy(X, v, kernel, param):
    sq = np.einsum("ij,ij->i", X, X)
    D2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.maximum(D2, 0.0, out=D2)
    if kernel == "gaussian":
        K = np.exp(-D2 / (2.0 * param**2))
    elif kernel == "laplacian":
        K = np.exp(-param * np.sqrt(D2))
    else:
        K = np.sqrt(D2)
    return K @ v


_PARAMS = {"gaussian": {"bandwidth": 3.0}, "laplacian": {"scale": 0.5}, "distance": {}}


def matvec_vs_dense(quick):
    n, d = (1000, 10) if quick else (4000, 10)
    rng = np.random.default_rng(0)
    X, v = rng.standard_normal((n, d)), rng.standard_normal(n)
    rows = []
    for kernel, params in _PARAMS.items():
        param = next(iter(params.values()), None)
        dense = _dense_numpy(X, v, kernel, param)
        peer_s = best_time(_dense_numpy, X, v, kernel, param)
        for n_jobs in (1, 2):
            ours = kernel_matvec(X, None, v, kernel=kernel, n_jobs=n_jobs, **params)
            ours_s = best_time(kernel_matvec, X, None, v, kernel=kernel, n_jobs=n_jobs, **params)
            rows.append(
                {
                    "case": f"{kernel} n={n} d={d} n_jobs={n_jobs}",
                    "ours_s": round(ours_s, 4),
                    "peer": "NumPy dense (BLAS, 2 threads)",
                    "peer_s": round(peer_s, 4),
                    "ratio": round(peer_s / ours_s, 2),
                    "max_rel_diff": float(np.max(np.abs(ours - dense)) / np.max(np.abs(dense))),
                }
            )
    return rows


def memory(quick):
    n = 1000 if quick else 4000
    X = np.random.default_rng(0).standard_normal((n, 10))
    v = np.ones(n)
    kernel_matvec(X[:50], None, v[:50], kernel="gaussian", bandwidth=3.0)  # compile first
    rows = []
    for n_jobs in (1, 2):
        ours = peak_memory_mb(kernel_matvec, X, None, v, kernel="gaussian", bandwidth=3.0,
                              n_jobs=n_jobs)
        rows.append({"case": f"peak extra memory, gaussian n={n} n_jobs={n_jobs}",
                     "ours_MB": round(ours, 2)})
    peer = peak_memory_mb(_dense_numpy, X, v, "gaussian", 3.0)
    rows.append({"case": f"peak extra memory, gaussian n={n}", "peer": "NumPy dense",
                 "peer_MB": round(peer, 1), "dense_matrix_MB": round(n * n * 8 / 2**20, 1)})
    return rows


BENCHMARKS = {"matvec_vs_dense": matvec_vs_dense, "memory": memory}
