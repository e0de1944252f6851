"""Two-sample kernel sums on the unit cube, the core of kernel U-statistics.

For query points ``Q`` (m x d), source points ``S`` (n x d) and values ``V``
(n x c) every routine here computes

    out[i, c] = sum_j K_h(Q[i], S[j]) * V[j, c]

with a product kernel ``K_h(u, v) = prod_k k_h(u_k, v_k)``. With
``reflect=True`` (points in ``[0, 1]^d``) each factor is boundary-reflected,

    k_h(u, v) = (1/h) [k((u - v)/h) + k((u + v)/h) + k((u + v - 2)/h)],

the reflection estimator of Schuster (1985): the mirror images of ``v`` in
the faces 0 and 1 return the kernel mass that would leak out of the cube, so a
density estimate near a face is not biased towards zero and each factor
integrates to one over ``[0, 1]`` (exactly for the compact kernels when
``h <= 1``). The kernel is symmetric in ``(u, v)``.

Profiles ``k`` (all second order):

* ``"epanechnikov"`` ``3/4 (1 - t^2)_+``, ``"biweight"`` ``15/16 (1 - t^2)_+^2``,
  ``"triweight"`` ``35/32 (1 - t^2)_+^3`` (compact, polynomial on ``[-1, 1]``);
* ``"gaussian"`` ``exp(-t^2/2) / sqrt(2 pi)``.

Three exact algorithms, chosen by ``method="auto"``:

* ``"tiled"``: all pairs, queries in tiles (one thread each) against blocks of
  sources held in cache; the inner loops run over contiguous sources and
  vectorise. Any kernel, any dimension. For compact kernels the sources away
  from the faces (every coordinate in ``[h, 1 - h]``) are evaluated without
  the two mirror terms, which vanish there exactly.
* ``"grid"``: compact kernels. Sources are binned into cells of width at
  least ``h`` (counting sort); a query visits only the at most ``3^d``
  neighbouring cells, and cells adjacent along the last axis are contiguous,
  so each visit is one run of sources. A pair can only interact when every
  coordinate differs by less than ``h`` (also through a mirror term, since
  ``|u - v| <= u + v`` and ``|u - v| <= 2 - u - v`` on the cube), so no pair
  is missed.
* ``"sweep"``: ``d = 1`` with a polynomial kernel, O((n + m) log n). The
  mirror images become extra sources, all are sorted once, and for a query
  ``u`` the window ``|u - s| <= h`` is found by binary search. Because
  ``k`` is a polynomial in ``t = (u - s)/h`` on the window, the sum needs only
  the window's moments ``sum V s^r`` (``r <= 2, 4, 6``), read from prefix sums.
  Global prefix sums of ``s^r`` would cancel catastrophically (terms of size
  ``h^-r``); we keep prefix sums *within segments of width h* about each
  segment's centre, so a window touches at most three segments and each
  moment is shifted to ``u`` over a distance of at most ``1.5 h``: agreement
  with direct summation to about 1e-13 relative.

References: ``_reference.kernel_sums_ref`` (NumPy broadcasting, the test
oracle and the benchmark's peer).
"""

import math
import numbers

import numba
import numpy as np
from numba import prange

from ._dispatch import jit_variants
from ._pairwise import _check_positive

__all__ = [
    "KERNEL_NAMES",
    "kernel_constants",
    "kernel_sums",
    "kernel_sums_dask",
    "reflected_kernel_diagonal",
]

# name -> (code, constant c in k(t) = c * profile(t), polynomial power m of
# (1 - t^2)^m or 0 for the gaussian, roughness R(k) = int k^2, canonical
# bandwidth delta_0 of Marron & Nolan (1988)).
_KERNELS = {
    "epanechnikov": (0, 0.75, 1, 3.0 / 5.0, 15.0 ** (1 / 5)),
    "biweight": (1, 15.0 / 16.0, 2, 5.0 / 7.0, 35.0 ** (1 / 5)),
    "triweight": (2, 35.0 / 32.0, 3, 350.0 / 429.0, (9450.0 / 143.0) ** (1 / 5)),
    "gaussian": (3, 1.0 / math.sqrt(2.0 * math.pi), 0, 1.0 / (2.0 * math.sqrt(math.pi)),
                 (1.0 / (4.0 * math.pi)) ** (1 / 10)),
}
KERNEL_NAMES = tuple(_KERNELS)
_GAUSSIAN = 3
# Sources per cache block, queries per thread tile.
_SOURCE_BLOCK = 1024
_QUERY_TILE = 64
_METHODS = ("auto", "tiled", "grid", "sweep")


def kernel_constants(kernel):
    """Constants of a kernel profile.

    Parameters
    ----------
    kernel : str
        One of ``KERNEL_NAMES``.

    Returns
    -------
    constants : dict
        ``compact`` (bool), ``roughness`` (``int k^2``), ``canonical``
        (the canonical bandwidth ``delta_0``, for converting bandwidths
        between kernels), ``power`` (``m`` in ``(1 - t^2)^m``; 0 for the
        gaussian) and ``constant`` (the normalising constant ``c``).
    """
    code, const, power, rough, canon = _check_kernel(kernel)
    return {
        "compact": code != _GAUSSIAN,
        "roughness": rough,
        "canonical": canon,
        "power": power,
        "constant": const,
    }


def _check_kernel(kernel):
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNEL_NAMES)}; got {kernel!r}.")
    return _KERNELS[kernel]


# ---------------------------------------------------------------- numba core


def _factor_into(kv, row, u, code, inv_h, reflect, first):
    """kv[j] (= or *=) the 1-d profile factor between u and row[j].

    One loop per case with the arithmetic written out, so that each inner loop
    is branch-free and vectorises (the polynomial power is applied with
    selects that LLVM if-converts).
    """
    width = row.shape[0]
    if code == 3:
        for j in range(width):
            v = row[j]
            ta = (u - v) * inv_h
            f = math.exp(-0.5 * ta * ta)
            if reflect:
                tb = (u + v) * inv_h
                tc = (u + v - 2.0) * inv_h
                f += math.exp(-0.5 * tb * tb) + math.exp(-0.5 * tc * tc)
            kv[j] = f if first else kv[j] * f
    elif reflect:
        for j in range(width):
            v = row[j]
            ta = (u - v) * inv_h
            tb = (u + v) * inv_h
            tc = (u + v - 2.0) * inv_h
            a = max(0.0, 1.0 - ta * ta)
            b = max(0.0, 1.0 - tb * tb)
            c = max(0.0, 1.0 - tc * tc)
            fa, fb, fc = a, b, c
            if code >= 1:
                fa, fb, fc = fa * a, fb * b, fc * c
            if code >= 2:
                fa, fb, fc = fa * a, fb * b, fc * c
            f = fa + fb + fc
            kv[j] = f if first else kv[j] * f
    else:
        for j in range(width):
            t = (u - row[j]) * inv_h
            a = max(0.0, 1.0 - t * t)
            f = a
            if code >= 1:
                f *= a
            if code >= 2:
                f *= a
            kv[j] = f if first else kv[j] * f


def _block_into(acc, i, q, ST, VT, j0, width, code, inv_h, reflect, kv):
    """acc[i, c] += sum_j K(q, S[j0 + j]) V[j0 + j, c] for j < width (unnormalised)."""
    kvw = kv[:width]
    for k in range(ST.shape[0]):
        _factor_into(kvw, ST[k, j0:j0 + width], q[k], code, inv_h, reflect, k == 0)
    for c in range(VT.shape[0]):
        vrow = VT[c, j0:j0 + width]
        s = 0.0
        for j in range(width):
            s += kvw[j] * vrow[j]
        acc[i, c] += s


# Helpers are inlined into the kernels (a call per block would cost more in
# reference counting than a short block's arithmetic) and take the kernels'
# fastmath flags.
_factor_into = numba.njit(inline="always", cache=True)(_factor_into)
_block_into = numba.njit(inline="always", cache=True)(_block_into)

# The kernels reassociate sums (so the contraction over sources vectorises: a
# sequential sum is bound by the latency of one addition per pair) and fuse
# multiply-adds; both change the rounding only within ~n eps of the sum of
# |terms|, far inside the 1e-12 the tests demand.
_FASTMATH = {"reassoc", "contract"}


@jit_variants(fastmath=_FASTMATH)
def _tiled_sums(Q, ST, VT, code, inv_h, reflect, out):
    n_query = Q.shape[0]
    n_source = ST.shape[1]
    n_tiles = (n_query + _QUERY_TILE - 1) // _QUERY_TILE
    for tile in prange(n_tiles):
        i0 = tile * _QUERY_TILE
        i1 = min(i0 + _QUERY_TILE, n_query)
        kv = np.empty(_SOURCE_BLOCK)
        acc = np.zeros((i1 - i0, VT.shape[0]))
        for j0 in range(0, n_source, _SOURCE_BLOCK):
            width = min(_SOURCE_BLOCK, n_source - j0)
            for i in range(i0, i1):
                _block_into(acc, i - i0, Q[i], ST, VT, j0, width, code, inv_h, reflect, kv)
        for i in range(i0, i1):
            for c in range(VT.shape[0]):
                out[i, c] += acc[i - i0, c]


@jit_variants(fastmath=_FASTMATH)
def _grid_sums(Q, ST, VT, cell_start, lo, inv_w, n_cells, h, code, inv_h, reflect, out):
    n_query, d = Q.shape
    n_tiles = (n_query + _QUERY_TILE - 1) // _QUERY_TILE
    last = d - 1
    for tile in prange(n_tiles):
        i0 = tile * _QUERY_TILE
        i1 = min(i0 + _QUERY_TILE, n_query)
        kv = np.empty(_SOURCE_BLOCK)
        acc = np.zeros((1, VT.shape[0]))
        first = np.empty(d, dtype=np.int64)
        stop = np.empty(d, dtype=np.int64)
        idx = np.empty(d, dtype=np.int64)
        for i in range(i0, i1):
            q = Q[i]
            empty = False
            for k in range(d):
                a = math.floor((q[k] - h - lo[k]) * inv_w[k])
                b = math.floor((q[k] + h - lo[k]) * inv_w[k])
                a = max(a, 0)
                b = min(b, n_cells[k] - 1)
                if a > b:
                    empty = True
                first[k] = a
                stop[k] = b
                idx[k] = a
            if empty:
                continue
            for c in range(VT.shape[0]):
                acc[0, c] = 0.0
            while True:
                # Cells along the last axis are contiguous: one run of sources.
                base = 0
                for k in range(last):
                    base = base * n_cells[k] + idx[k]
                base = base * n_cells[last]
                j_start = cell_start[base + first[last]]
                j_stop = cell_start[base + stop[last] + 1]
                for j0 in range(j_start, j_stop, _SOURCE_BLOCK):
                    width = min(_SOURCE_BLOCK, j_stop - j0)
                    _block_into(acc, 0, q, ST, VT, j0, width, code, inv_h, reflect, kv)
                # odometer over the first d - 1 axes
                k = last - 1
                while k >= 0:
                    idx[k] += 1
                    if idx[k] <= stop[k]:
                        break
                    idx[k] = first[k]
                    k -= 1
                if k < 0:
                    break
            for c in range(VT.shape[0]):
                out[i, c] += acc[0, c]


def _sweep_prefix(pos, VT, seg_start, centers, power):
    """Within-segment prefix moments: P[off_g + p, r, c] = sum over the first p
    sources of segment g of V[c] (s - centre_g)^r, with off_g = start_g + g."""
    n_seg = centers.shape[0]
    n_mom = 2 * power + 1
    n_val = VT.shape[0]
    P = np.zeros((pos.shape[0] + n_seg, n_mom, n_val))
    for g in range(n_seg):
        off = seg_start[g] + g
        for p in range(seg_start[g + 1] - seg_start[g]):
            j = seg_start[g] + p
            x = pos[j] - centers[g]
            xr = 1.0
            for r in range(n_mom):
                for c in range(n_val):
                    P[off + p + 1, r, c] = P[off + p, r, c] + VT[c, j] * xr
                xr *= x
    return P


_sweep_prefix_jit = jit_variants(_sweep_prefix).serial


@jit_variants
def _sweep_sums(U, win_lo, win_hi, seg_id, seg_start, centers, P, binom, coef, inv_h, out):
    n_mom = P.shape[1]
    n_val = P.shape[2]
    n_query = U.shape[0]
    n_tiles = (n_query + _SOURCE_BLOCK - 1) // _SOURCE_BLOCK
    for tile in prange(n_tiles):
        # Written out in one function: a helper call per query would cost more
        # in reference counting than the arithmetic.
        moments = np.empty((n_mom, n_val))
        local = np.empty((n_mom, n_val))
        powers = np.empty(n_mom)
        for i in range(tile * _SOURCE_BLOCK, min((tile + 1) * _SOURCE_BLOCK, n_query)):
            a = win_lo[i]
            b = win_hi[i]
            if b <= a:
                continue
            u = U[i]
            for r in range(n_mom):
                for c in range(n_val):
                    moments[r, c] = 0.0
            for g in range(seg_id[a], seg_id[b - 1] + 1):
                start = seg_start[g]
                lo = max(a, start) - start
                hi = min(b, seg_start[g + 1]) - start
                off = start + g
                for t in range(n_mom):
                    for c in range(n_val):
                        local[t, c] = P[off + hi, t, c] - P[off + lo, t, c]
                shift = centers[g] - u
                powers[0] = 1.0
                for r in range(1, n_mom):
                    powers[r] = powers[r - 1] * shift
                # (s - u)^r = sum_t C(r, t) (s - c_g)^t (c_g - u)^(r - t)
                for r in range(n_mom):
                    for t in range(r + 1):
                        f = binom[r, t] * powers[r - t]
                        for c in range(n_val):
                            moments[r, c] += f * local[t, c]
            for c in range(n_val):
                s = 0.0
                scale = 1.0
                for p in range(coef.shape[0]):
                    s += coef[p] * scale * moments[2 * p, c]
                    scale *= inv_h * inv_h
                out[i, c] += s


# ------------------------------------------------------------- Python layer


def _as_points(A, name):
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-d (points x dimensions); got shape {A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return np.ascontiguousarray(A)


def _check_inputs(Q, S, V, bandwidth, reflect):
    Q = _as_points(Q, "Q")
    S = _as_points(S, "S")
    if Q.shape[1] != S.shape[1]:
        raise ValueError(f"Q has {Q.shape[1]} dimensions but S has {S.shape[1]}; they must match.")
    if V is None:
        V = np.ones((S.shape[0], 1))
        one_d = True
    else:
        V = np.asarray(V, dtype=np.float64)
        one_d = V.ndim == 1
        V = V.reshape(-1, 1) if one_d else V
        if V.ndim != 2 or V.shape[0] != S.shape[0]:
            raise ValueError(f"V must have one row per source point ({S.shape[0]}); got {V.shape}.")
        if not np.all(np.isfinite(V)):
            raise ValueError("V contains NaN or infinity.")
    _check_positive(bandwidth, "bandwidth")
    if reflect:
        if bandwidth > 1:
            raise ValueError(
                f"bandwidth must be at most 1 with reflect=True (the kernel would be wider than "
                f"the unit cube); got {bandwidth!r}."
            )
        for A, name in ((Q, "Q"), (S, "S")):
            if A.size and (A.min() < 0.0 or A.max() > 1.0):
                raise ValueError(
                    f"reflect=True needs points in [0, 1]^d; {name} has points outside."
                )
    return Q, S, V, one_d


def choose_method(kernel, d, bandwidth, n_source=None):
    """The algorithm ``method="auto"`` picks: sweep, grid or tiled.

    Parameters
    ----------
    kernel : str
        Kernel name.
    d : int
        Dimension.
    bandwidth : float
        Bandwidth on the unit cube.
    n_source : int, default=None
        Number of sources (tiny problems use the tiled kernel).

    Returns
    -------
    method : str
        ``"sweep"`` for ``d = 1`` polynomial kernels, ``"grid"`` for compact
        kernels whose neighbourhoods cover less than a third of the cube,
        ``"tiled"`` otherwise.
    """
    code = _check_kernel(kernel)[0]
    if code == _GAUSSIAN:
        return "tiled"
    if n_source is not None and n_source < 64:
        return "tiled"
    if d == 1:
        return "sweep"
    if min(1.0, 3.0 * bandwidth) ** d < 1.0 / 3.0:
        return "grid"
    return "tiled"


def kernel_sums(
    Q, S, V=None, *, kernel="epanechnikov", bandwidth, reflect=True, method="auto", n_jobs=None
):
    """Kernel sums ``out[i] = sum_j K_h(Q[i], S[j]) V[j]`` with a product kernel.

    Parameters
    ----------
    Q : array-like of shape (n_queries, d) or (n_queries,)
        Points at which the sums are evaluated.
    S : array-like of shape (n_sources, d) or (n_sources,)
        Source points.
    V : array-like of shape (n_sources,) or (n_sources, n_values), default=None
        Values carried by the sources; ``None`` means ones (a kernel density
        times ``n_sources``).
    kernel : {"epanechnikov", "biweight", "triweight", "gaussian"}, default="epanechnikov"
        The one-dimensional profile.
    bandwidth : float
        ``h``, in the units of the points.
    reflect : bool, default=True
        Boundary-reflected kernel on ``[0, 1]^d`` (points must lie there).
    method : {"auto", "tiled", "grid", "sweep"}, default="auto"
        Algorithm; all give the same sums up to rounding. ``"grid"`` needs a
        compact kernel, ``"sweep"`` also ``d = 1``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    sums : ndarray of shape (n_queries,) or (n_queries, n_values)
        With the dimensionality of ``V`` (1-d when ``V`` is ``None``).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels import kernel_sums
    >>> u = np.array([0.0, 0.5, 1.0])
    >>> kernel_sums(u, u, bandwidth=0.2)  # a point on a face also meets its mirror image
    array([7.5 , 3.75, 7.5 ])
    >>> kernel_sums(u, u, bandwidth=0.2, reflect=False)
    array([3.75, 3.75, 3.75])
    """
    code, const, power, _, _ = _check_kernel(kernel)
    Q, S, V, one_d = _check_inputs(Q, S, V, bandwidth, reflect)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}; got {method!r}.")
    d = Q.shape[1]
    if method == "auto":
        method = choose_method(kernel, d, bandwidth, S.shape[0])
    if method in ("grid", "sweep") and code == _GAUSSIAN:
        raise ValueError(f"method={method!r} needs a compactly supported kernel, not 'gaussian'.")
    if method == "sweep" and d != 1:
        raise ValueError(f"method='sweep' is for one dimension; the points have {d}.")
    h = float(bandwidth)
    out = np.zeros((Q.shape[0], V.shape[1]))
    if Q.shape[0] and S.shape[0]:
        if method == "sweep":
            _run_sweep(Q[:, 0], S[:, 0], V, h, power, reflect, out, n_jobs)
        else:
            runner = _run_grid if method == "grid" else _run_tiled
            if reflect and code != _GAUSSIAN:
                # Mirror terms vanish exactly for sources at least h from every face.
                near = np.any((S < h) | (S > 1.0 - h), axis=1)
                for mask, mirror in ((~near, False), (near, True)):
                    if np.any(mask):
                        runner(Q, S[mask], V[mask], code, h, mirror, out, n_jobs)
            else:
                runner(Q, S, V, code, h, reflect, out, n_jobs)
        out *= (const / h) ** d
    return out[:, 0] if one_d else out


def _run_tiled(Q, S, V, code, h, reflect, out, n_jobs):
    ST = np.ascontiguousarray(S.T)
    VT = np.ascontiguousarray(V.T)
    _tiled_sums(Q, ST, VT, code, 1.0 / h, reflect, out, n_jobs=n_jobs)


def _grid_layout(S, h, max_cells):
    """Cells of width >= h over the bounding box of S, at most ~max_cells of them."""
    lo = S.min(axis=0)
    extent = np.maximum(S.max(axis=0) - lo, 0.0)
    width = h
    while True:
        n_cells = np.floor(extent / width).astype(np.int64) + 1
        if np.prod(n_cells.astype(float)) <= max_cells:
            return lo, width, n_cells
        width *= 1.25


def _run_grid(Q, S, V, code, h, reflect, out, n_jobs):
    d = S.shape[1]
    lo, width, n_cells = _grid_layout(S, h, max_cells=max(64, 2 * S.shape[0]))
    cell = np.minimum(np.floor((S - lo) / width).astype(np.int64), n_cells - 1)
    flat = np.ravel_multi_index(tuple(cell.T), tuple(n_cells))
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=int(np.prod(n_cells)))
    cell_start = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=cell_start[1:])
    ST = np.ascontiguousarray(S[order].T)
    VT = np.ascontiguousarray(V[order].T)
    inv_w = np.full(d, 1.0 / width)
    # A hair wider than h so that rounding in q +/- h never drops a pair whose
    # kernel value is not already zero to within 1e-12.
    reach = h * (1.0 + 1e-12)
    _grid_sums(Q, ST, VT, cell_start, lo, inv_w, n_cells, reach, code, 1.0 / h, reflect, out,
               n_jobs=n_jobs)


def _run_sweep(U, S, V, h, power, reflect, out, n_jobs):
    if reflect:
        low, high = S < h, S > 1.0 - h
        pos = np.concatenate([S, -S[low], 2.0 - S[high]])
        vals = np.concatenate([V, V[low], V[high]])
    else:
        pos, vals = S, V
    order = np.argsort(pos)
    pos = np.ascontiguousarray(pos[order])
    VT = np.ascontiguousarray(vals[order].T)
    seg_id = np.floor((pos - pos[0]) / h).astype(np.int64)
    n_seg = int(seg_id[-1]) + 1
    seg_start = np.searchsorted(seg_id, np.arange(n_seg + 1), side="left").astype(np.int64)
    centers = pos[0] + (np.arange(n_seg) + 0.5) * h
    P = _sweep_prefix_jit(pos, VT, seg_start, centers, power)
    n_mom = 2 * power + 1
    binom = np.array(
        [[math.comb(r, t) if t <= r else 0 for t in range(n_mom)] for r in range(n_mom)],
        dtype=np.float64,
    )
    # (1 - t^2)^m = sum_p C(m, p) (-1)^p t^(2p)
    coef = np.array([math.comb(power, p) * (-1.0) ** p for p in range(power + 1)])
    # Sorted queries: binary searches and prefix reads then walk memory in order.
    q_order = np.argsort(U)
    U_sorted = np.ascontiguousarray(U[q_order])
    win_lo = np.searchsorted(pos, U_sorted - h, side="left").astype(np.int64)
    win_hi = np.searchsorted(pos, U_sorted + h, side="right").astype(np.int64)
    sums = np.zeros((U.shape[0], VT.shape[0]))
    _sweep_sums(U_sorted, win_lo, win_hi, seg_id, seg_start, centers, P, binom, coef, 1.0 / h,
                sums, n_jobs=n_jobs)
    out[q_order] += sums


def reflected_kernel_diagonal(U, *, kernel="epanechnikov", bandwidth, reflect=True):
    """``K_h(u, u)`` for each point: the self-pair term of a kernel sum.

    Parameters
    ----------
    U : array-like of shape (n_points, d) or (n_points,)
        Points in ``[0, 1]^d`` (when ``reflect``).
    kernel : str, default="epanechnikov"
        Kernel name.
    bandwidth : float
        ``h``.
    reflect : bool, default=True
        Boundary-reflected kernel.

    Returns
    -------
    diagonal : ndarray of shape (n_points,)
        ``K_h(U[i], U[i])``; larger than ``K_h(0)`` within ``h`` of a face.
    """
    code, const, _, _, _ = _check_kernel(kernel)
    U = _as_points(U, "U")
    h = float(bandwidth)
    factor = np.full(U.shape, 1.0)
    if reflect:
        factor = factor + _profile_np(2.0 * U / h, code) + _profile_np((2.0 * U - 2.0) / h, code)
    return np.prod(factor, axis=1) * (const / h) ** U.shape[1]


def _profile_np(t, code):
    if code == _GAUSSIAN:
        return np.exp(-0.5 * t * t)
    return np.maximum(0.0, 1.0 - t * t) ** (code + 1)


# ------------------------------------------------------------------- dask


def kernel_sums_dask(
    Q, S, V=None, *, kernel="epanechnikov", bandwidth, reflect=True, method="auto",
    n_blocks=None, client=None,
):
    """:func:`kernel_sums` with the double sum split into blocks over a dask cluster.

    Queries and sources are cut into ``n_blocks`` blocks each; every (query
    block, source block) pair is one task running :func:`kernel_sums` on a
    worker, and the partial sums of each query block are added on the
    workers. Blocks are scattered once, so each travels to the cluster once.

    Parameters
    ----------
    Q, S, V, kernel, bandwidth, reflect, method
        As in :func:`kernel_sums`.
    n_blocks : int or tuple of (int, int), default=None
        Number of query and source blocks; ``None`` uses twice the number of
        worker threads for the queries and 1 for the sources.
    client : distributed.Client, default=None
        The cluster; ``None`` uses the current default client.

    Returns
    -------
    sums : ndarray of shape (n_queries,) or (n_queries, n_values)
        As :func:`kernel_sums`, equal to it up to the summation order.
    """
    from ..utils import import_optional

    distributed = import_optional("distributed", purpose="backend='dask'")
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError as exc:
            raise ValueError(
                "backend='dask' needs a running dask.distributed Client; start one first "
                "(e.g. `from distributed import Client; client = Client()`)."
            ) from exc
    _check_kernel(kernel)
    Q, S, V, one_d = _check_inputs(Q, S, V, bandwidth, reflect)
    if n_blocks is None:
        threads = sum(client.nthreads().values()) or 1
        n_blocks = (2 * threads, 1)
    elif isinstance(n_blocks, numbers.Integral):
        n_blocks = (n_blocks, n_blocks)
    n_q = max(1, min(int(n_blocks[0]), Q.shape[0]))
    n_s = max(1, min(int(n_blocks[1]), S.shape[0]))
    # hash=False: unique keys, so that releasing one call's blocks never
    # releases equal data another call scattered under the same content hash.
    q_blocks = client.scatter(np.array_split(Q, n_q), hash=False)
    s_blocks = client.scatter(
        list(zip(np.array_split(S, n_s), np.array_split(V, n_s), strict=True)), hash=False
    )
    params = {"kernel": kernel, "bandwidth": bandwidth, "reflect": reflect, "method": method}
    partials = []
    for qb in q_blocks:
        parts = [client.submit(_block_task, qb, sb, params, pure=False) for sb in s_blocks]
        partials.append(client.submit(_add_all, parts, pure=False) if len(parts) > 1 else parts[0])
    out = np.concatenate(client.gather(partials), axis=0)
    return out[:, 0] if one_d else out


def _block_task(Q, source, params):
    S, V = source
    return kernel_sums(Q, S, V, **params)


def _add_all(parts):
    return np.sum(parts, axis=0)
