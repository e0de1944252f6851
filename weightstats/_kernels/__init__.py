"""numba kernels for the O(n^2) cores, each with a NumPy reference in ``_reference``.

Private: estimators call these; users call the estimators.
"""

from ._dispatch import KernelVariants, jit_variants, n_threads_from_jobs, numba_threads
from ._isotonic import isotonic_rows
from ._pairwise import kernel_matrix, kernel_matvec, pairwise_distances
from ._rosenblatt import conditional_cdf
from ._ustat import kernel_sums, kernel_sums_dask, reflected_kernel_diagonal

__all__ = [
    "KernelVariants",
    "conditional_cdf",
    "isotonic_rows",
    "jit_variants",
    "kernel_matrix",
    "kernel_matvec",
    "kernel_sums",
    "kernel_sums_dask",
    "n_threads_from_jobs",
    "numba_threads",
    "pairwise_distances",
    "reflected_kernel_diagonal",
]
