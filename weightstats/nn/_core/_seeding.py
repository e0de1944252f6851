"""Seeding: every fit runs in a forked torch RNG seeded from ``random_state``."""

import contextlib
import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_random_state

__all__ = ["torch_random_context"]


def _derive_seed(random_state, offset):
    """An int seed from ``random_state`` and a counter (the epochs done)."""
    if isinstance(random_state, numbers.Integral):
        base = int(random_state)
    else:
        base = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return int(np.random.SeedSequence([base, int(offset)]).generate_state(1)[0])


@contextlib.contextmanager
def torch_random_context(random_state, device, offset=0):
    """Seed torch inside a forked RNG; no-op when ``random_state`` is None.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        The seed source.
    device : str, torch.device or None
        The device whose CUDA generator is forked as well.
    offset : int, default=0
        Mixed into the seed so that successive ``partial_fit`` calls draw
        different batches.

    Yields
    ------
    seed : int or None
        The seed used.
    """
    if random_state is None:
        yield None
        return
    seed = _derive_seed(random_state, offset)
    devices = []
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        index = torch.device(device).index
        devices = [torch.cuda.current_device() if index is None else index]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield seed

