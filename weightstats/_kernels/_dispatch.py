"""Compile serial and parallel variants of a kernel and choose one from ``n_jobs``.

One Python function (written with ``numba.prange``) is compiled twice, as
UMAP does: ``parallel=False`` for ``n_jobs=1`` (no threading overhead, the
default) and ``parallel=True`` otherwise. The thread count is set for the call
and restored afterwards, so kernels never change global numba state.
"""

import contextlib
import types
from dataclasses import dataclass

import numba
from joblib import effective_n_jobs

__all__ = ["KernelVariants", "jit_variants", "numba_threads", "n_threads_from_jobs"]


@dataclass(frozen=True)
class KernelVariants:
    """A kernel compiled serially and with ``parallel=True``."""

    serial: object
    parallel: object

    def __call__(self, *args, n_jobs=None):
        n_threads = n_threads_from_jobs(n_jobs)
        if n_threads == 1:
            return self.serial(*args)
        with numba_threads(n_threads):
            return self.parallel(*args)


def jit_variants(func=None, *, fastmath=False):
    """Decorator: compile ``func`` as serial and parallel numba kernels (cached).

    Parameters
    ----------
    func : callable
        A numba-compatible Python function using ``numba.prange``.
    fastmath : bool or set of str, default=False
        Passed to ``numba.njit``; use only where results stay within 1e-12
        relative of the NumPy reference.

    Returns
    -------
    variants : KernelVariants
        Call it with the kernel arguments and an ``n_jobs=`` keyword.
    """

    def wrap(f):
        return KernelVariants(
            serial=numba.njit(cache=True, fastmath=fastmath, nogil=True)(f),
            parallel=numba.njit(cache=True, fastmath=fastmath, parallel=True)(
                _renamed_copy(f, "_parallel")
            ),
        )

    return wrap if func is None else wrap(func)


def _renamed_copy(func, suffix):
    # numba names cache files after the function's qualified name and does not
    # key them on the parallel flag: without a distinct name the two variants
    # would load each other's machine code from the cache.
    copy = types.FunctionType(
        func.__code__, func.__globals__, func.__name__ + suffix, func.__defaults__, func.__closure__
    )
    copy.__qualname__ = func.__qualname__ + suffix
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    return copy


def n_threads_from_jobs(n_jobs):
    """Number of numba threads for ``n_jobs`` (sklearn semantics, capped at numba's pool).

    Parameters
    ----------
    n_jobs : int or None
        ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    n_threads : int
        Between 1 and ``numba.config.NUMBA_NUM_THREADS``.
    """
    return max(1, min(effective_n_jobs(n_jobs), numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def numba_threads(n_threads):
    """Temporarily set the numba thread count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
