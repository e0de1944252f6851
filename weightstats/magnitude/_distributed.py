"""Conjugate gradients for ``Z w = 1`` on a ``dask.distributed`` cluster.

The points are held by the workers in row blocks and never pass through the
client; so are the nearest-neighbour lists and the rows of the FSAI
preconditioner. The client keeps conjugate gradients' vectors of length ``n``
(about six of them) and sends one block of the current vector to each task.

* Products ``Z v``: one task per pair of blocks ``a <= b``. An off-diagonal
  task forms ``K = Z[a, b]`` once and returns both ``K v_b`` and ``K' v_a``; a
  diagonal task forms each pair of its block once. Every kernel value is
  computed once per product, ``n (n - 1) / 2`` in all, as on one machine.
* Neighbour search: per pair of blocks, each point's nearest *earlier* points
  (in a fixed random order) of the other block, both ways; the lists of a block
  are merged pair by pair, then the neighbours' coordinates collected block by
  block. The preconditioner's pattern is exactly the ``k`` nearest earlier
  points (the single-machine solver takes the earlier ones among the ``2k``
  nearest).
* FSAI rows of a block from its points and its neighbours' coordinates;
  ``G'G r`` is applied per block and the pieces summed on the workers.

Exact duplicates make ``Z`` singular. Points that come as a NumPy array are
merged on the client before they are sent; a dask array with duplicated rows
is refused (each duplicate is at distance 0 from an earlier copy, which the
neighbour search sees).
"""

import math
import sys
from operator import itemgetter

import numpy as np
import scipy.sparse as sp

from .._kernels._knn import nearest_neighbors_block
from .._kernels._laplacian import laplacian_pair_matvec, laplacian_symv
from .._kernels._local import fsai_rows

__all__ = ["DistributedPoints", "is_dask_array"]

#: Largest row block held by one task (points, plus k neighbours' coordinates each).
MAX_BLOCK_POINTS = 20_000


def is_dask_array(X):
    """Whether ``X`` is a dask array (without importing dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def default_blocks(n_points, n_threads):
    """Enough blocks for two pair tasks per thread, none above ``MAX_BLOCK_POINTS``."""
    # b (b + 1) / 2 pair tasks >= 2 threads.
    for_threads = math.ceil((math.sqrt(1 + 16 * n_threads) - 1) / 2)
    return int(min(n_points, max(for_threads, math.ceil(n_points / MAX_BLOCK_POINTS), 1)))


# ----------------------------------------------------------------- worker tasks


def _as_block(part):
    return np.ascontiguousarray(part, dtype=np.float64)


def _is_finite(block):
    return bool(np.isfinite(block).all())


def _diagonal_product(block, v, t, metric):
    return laplacian_symv(block, v, scale=t, metric=metric)


def _pair_product(block_a, block_b, v_a, v_b, t, metric):
    return laplacian_pair_matvec(block_a, block_b, v_a, v_b, scale=t, metric=metric)


def _block_sum(a, *results):
    """Block ``a`` of ``Z v`` from the tasks of pairs ``(b, a)``, ``b = 0, 1, ...``."""
    total = 0.0
    for b, result in enumerate(results):
        total = total + (result if b == a else result[1] if b < a else result[0])
    return total


def _earlier_neighbours(block_a, start_a, rank_a, block_b, start_b, rank_b, k, metric):
    """Each point's ``k`` nearest earlier points in the other block, both ways."""
    ids_a = np.arange(start_a, start_a + block_a.shape[0])
    ids_b = np.arange(start_b, start_b + block_b.shape[0])
    found_a = nearest_neighbors_block(block_a, block_b, k, q_ids=ids_a, y_ids=ids_b,
                                      q_rank=rank_a, y_rank=rank_b, metric=metric)
    if start_a == start_b:
        return found_a
    found_b = nearest_neighbors_block(block_b, block_a, k, q_ids=ids_b, y_ids=ids_a,
                                      q_rank=rank_b, y_rank=rank_a, metric=metric)
    return found_a, found_b


def _merge_neighbours(k, a, b, merged, result):
    """Fold block ``b``'s candidates for block ``a`` into the best ``k`` so far."""
    found = result if a == b else result[0] if a < b else result[1]
    if merged is None:
        return found
    ids = np.concatenate([merged[0], found[0]], axis=1)
    distances = np.concatenate([merged[1], found[1]], axis=1)
    order = np.lexsort((ids, distances), axis=1)[:, :k]  # by distance, ties by id
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(distances, order, axis=1)


def _with_start(found, start):
    return (*found, start)


def _has_duplicates(found):
    return bool(np.any(found[1] == 0.0))


def _collect_coordinates(coordinates, found, block_b, start_b):
    """Fill in the coordinates of the neighbours that lie in block ``b``."""
    ids = found[0]
    if coordinates is None:
        coordinates = np.zeros(ids.shape + (block_b.shape[1],))
    inside = (ids >= start_b) & (ids < start_b + block_b.shape[0])
    coordinates[inside] = block_b[ids[inside] - start_b]
    return coordinates


def _fsai_block(block, found, coordinates, t, metric, n_points):
    """The rows of ``G`` for one block, columns numbered globally."""
    ids, _, start = found
    m, k = ids.shape
    # Merged lists hold their -1 padding last, where the kernel expects it.
    local = np.where(ids >= 0, np.arange(m * k).reshape(m, k), -1)
    data, _, indptr, jittered = fsai_rows(block, local, scale=t, metric=metric,
                                          Y=coordinates.reshape(m * k, -1))
    # Row i holds its diagonal, then its neighbours nearest first: number them globally.
    columns = np.column_stack([np.arange(start, start + m), ids])
    columns = columns[columns >= 0]
    return sp.csr_matrix((data, columns, indptr), shape=(m, n_points)), int(jittered.sum())


def _apply_fsai(G, r):
    return G.T @ (G @ r)


def _add(x, y):
    return x + y


# ----------------------------------------------------------------- the client side


class DistributedPoints:
    """Points in row blocks on a ``dask.distributed`` cluster, and what CG needs of them.

    Parameters
    ----------
    client : dask.distributed.Client
        The cluster.
    X : ndarray or dask.array.Array of shape (n_samples, n_features)
        The points: a NumPy array (distinct rows) is scattered block by block;
        a dask array is rechunked into the blocks and validated on the
        workers.
    metric : {"euclidean", "manhattan"}
        The distance.
    n_blocks : int, default=None
        Row blocks; ``None`` chooses enough for two pair tasks per worker
        thread, each of at most ``MAX_BLOCK_POINTS`` rows.
    """

    def __init__(self, client, X, metric, n_blocks=None):
        self.client, self.metric = client, metric
        if len(X.shape) != 2 or any(isinstance(s, float) and math.isnan(s) for s in X.shape):
            raise ValueError(
                f"X must be 2-d with known chunk sizes; got shape {X.shape} (call "
                "X.compute_chunk_sizes() on a dask array built from a filter)."
            )
        n, n_features = (int(s) for s in X.shape)
        if n < 2:
            raise ValueError(f"X has {n} point(s); magnitude needs at least 2 points.")
        if n_blocks is None:
            n_blocks = default_blocks(n, sum(client.nthreads().values()))
        self.bounds = np.unique(np.linspace(0, n, n_blocks + 1).astype(np.int64))
        self.shape = (n, n_features)
        sizes = tuple(int(s) for s in np.diff(self.bounds))
        if is_dask_array(X):
            parts = client.compute(list(X.rechunk({0: sizes, 1: -1}).to_delayed()[:, 0]))
            self.blocks = [client.submit(_as_block, part) for part in parts]
            if not all(client.gather([client.submit(_is_finite, b) for b in self.blocks])):
                raise ValueError("Input X contains NaN or infinity.")
            self.from_client = False
        else:
            self.blocks = client.scatter([X[a:b] for a, b in self._ranges()], hash=False)
            self.from_client = True
        rank = np.empty(n, dtype=np.int64)
        # The single-machine preconditioner's ordering: the same fixed random permutation.
        rank[np.random.default_rng(0).permutation(n)] = np.arange(n)
        self.ranks = client.scatter([rank[a:b] for a, b in self._ranges()], hash=False)
        self._neighbours = {}

    def _ranges(self):
        return list(zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist()))

    @property
    def n_blocks(self):
        return len(self.bounds) - 1

    def matvec(self, t):
        """``v -> Z v`` with ``Z = exp(-t D)``: one task per pair of blocks ``a <= b``."""
        client, blocks, metric, B = self.client, self.blocks, self.metric, self.n_blocks

        def product(v):
            pieces = client.scatter([v[a:b] for a, b in self._ranges()], hash=False)
            pairs = {}
            for a in range(B):
                pairs[a, a] = client.submit(_diagonal_product, blocks[a], pieces[a], t, metric,
                                            pure=False)
                for b in range(a + 1, B):
                    pairs[a, b] = client.submit(_pair_product, blocks[a], blocks[b], pieces[a],
                                                pieces[b], t, metric, pure=False)
            sums = [
                client.submit(_block_sum, a, *(pairs[min(a, b), max(a, b)] for b in range(B)),
                              pure=False)
                for a in range(B)
            ]
            return np.concatenate(client.gather(sums))

        return product

    def pairs_per_product(self):
        """Kernel values each product forms: ``n (n - 1) / 2``, each pair once."""
        sizes = np.diff(self.bounds)
        within = int(np.sum(sizes * (sizes - 1) // 2))
        return within + int((sizes.sum() ** 2 - np.sum(sizes**2)) // 2)

    def neighbours(self, k):
        """Per block, a future of each point's ``k`` nearest earlier points (ids,
        distances, first id of the block) and one of their coordinates."""
        if k in self._neighbours:
            return self._neighbours[k]
        client, blocks, ranks, B = self.client, self.blocks, self.ranks, self.n_blocks
        starts = self.bounds[:-1].tolist()
        pairs = {
            (a, b): client.submit(_earlier_neighbours, blocks[a], starts[a], ranks[a],
                                  blocks[b], starts[b], ranks[b], k, self.metric)
            for a in range(B) for b in range(a, B)
        }
        found, coordinates = [], []
        for a in range(B):
            merged = None
            for b in range(B):
                merged = client.submit(_merge_neighbours, k, a, b, merged,
                                       pairs[min(a, b), max(a, b)])
            merged = client.submit(_with_start, merged, starts[a])
            coords = None
            for b in range(B):
                coords = client.submit(_collect_coordinates, coords, merged, blocks[b],
                                       starts[b])
            found.append(merged)
            coordinates.append(coords)
        if not self.from_client and any(
            client.gather([client.submit(_has_duplicates, f) for f in found])
        ):
            raise ValueError(
                "X has duplicated rows, which make exp(-t D) singular; drop them first "
                "(dask.dataframe's drop_duplicates), or pass a NumPy array, whose copies "
                "are merged and share their point's weight."
            )
        self._neighbours[k] = found, coordinates
        return found, coordinates

    def fsai(self, t, k):
        """``r -> G'G r``, the FSAI preconditioner on the ``k`` nearest earlier points.

        Returns the function and the number of rows that needed diagonal jitter.
        """
        client, n = self.client, self.shape[0]
        found, coordinates = self.neighbours(min(k, n - 1))
        rows = [
            client.submit(_fsai_block, block, f, c, t, self.metric, n)
            for block, f, c in zip(self.blocks, found, coordinates)
        ]
        factors = [client.submit(itemgetter(0), row) for row in rows]
        n_jittered = sum(client.gather([client.submit(itemgetter(1), row) for row in rows]))

        def precondition(r):
            r_future = client.scatter(r, broadcast=True, hash=False)
            parts = [client.submit(_apply_fsai, G, r_future, pure=False) for G in factors]
            while len(parts) > 1:
                parts = [client.submit(_add, *parts[i : i + 2], pure=False)
                         if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
            return parts[0].result()

        return precondition, n_jittered
