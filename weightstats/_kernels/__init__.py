"""numba kernels for the O(n^2) cores, each with a NumPy reference in ``_reference``.

Private: estimators call these; users call the estimators.
"""

from ._dispatch import KernelVariants, jit_variants, n_threads_from_jobs, numba_threads
from ._isotonic import isotonic_rows
from ._pairwise import kernel_matrix, kernel_matvec, pairwise_distances

__all__ = [
    "KernelVariants",
    "isotonic_rows",
    "jit_variants",
    "kernel_matrix",
    "kernel_matvec",
    "n_threads_from_jobs",
    "numba_threads",
    "pairwise_distances",
]
