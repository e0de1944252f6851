"""Benchmarks: weightstats against named peers, timed in one process.

Run ``python -m benchmarks`` (all groups) or ``python -m benchmarks kernels``.
Results are printed as ratio tables and copied by hand into
``docs/performance.md``. Benchmarks are never pass/fail tests.
"""
