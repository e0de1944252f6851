"""Test configuration: hypothesis profiles and shared fixtures.

Profiles: ``ci`` (the default; derandomised, bounded examples and no
deadline, so runs are reproducible and never flaky on a loaded machine) and
``dev`` (more random examples). Pick one with ``HYPOTHESIS_PROFILE=dev``.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# tests/results holds the scripts that produced the golden values (some need R
# or packages the suite does not install); they are provenance, not tests.
collect_ignore = ["results"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=30,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    """A seeded NumPy generator, fresh for each test."""
    return np.random.default_rng(0)
