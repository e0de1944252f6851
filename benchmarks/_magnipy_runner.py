"""Run magnipy on saved inputs; executed by ``bench_magnitude`` with the Python of the
throwaway virtual environment ``/work/wt/peers-magnipy`` (magnipy pins scipy 1.13 and
pulls torch, so it never enters weightstats' own environment).

Usage: ``python _magnipy_runner.py IN.npz OUT.npz`` where ``IN.npz`` holds ``X`` and
``ts`` (scales; an empty array means magnipy's default pipeline) and ``mode``
("weights" or "default"). Writes ``W`` (n x len(ts)), ``ts``, ``magnitude`` and
``seconds`` (best of ``repeat`` runs, distances included, as a user would run it) and
``points``, the rows in the order of magnipy's weights.
"""

import contextlib
import io
import sys
import time

import numpy as np
from magnipy import Magnipy
from magnipy.magnitude.distances import remove_duplicates


def main(path_in, path_out):
    data = np.load(path_in)
    X, ts, mode, repeat = data["X"], data["ts"], str(data["mode"]), int(data["repeat"])
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        # magnipy prints "shape X:(n, d)" on construction; keep stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            if mode == "weights":
                model = Magnipy(X, ts=list(ts), method="cholesky")
                W, used = model.get_magnitude_weights()
                magnitude = W.sum(axis=0)
            else:
                model = Magnipy(X)
                magnitude, used = model.get_magnitude()
                W = np.zeros((X.shape[0], len(used)))
        best = min(best, time.perf_counter() - start)
        result = (W, np.asarray(used), np.asarray(magnitude))
    # magnipy deduplicates with np.unique, which sorts the rows: its weights follow
    # that order, so return the points in it.
    with contextlib.redirect_stdout(io.StringIO()):
        points = remove_duplicates(X)
    np.savez(path_out, W=result[0], ts=result[1], magnitude=result[2], seconds=best,
             points=points)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
