"""A progress bar for long loops, shown when ``verbose`` is set.

Uses tqdm when it is installed (nicer in notebooks); otherwise prints a
minimal bar to stderr, so progress never needs an extra dependency.
"""

import sys
import time

__all__ = ["progress"]


def progress(iterable, *, verbose=0, desc=None, total=None):
    """Wrap ``iterable`` in a progress bar when ``verbose`` is truthy.

    Parameters
    ----------
    iterable : iterable
        What to loop over.
    verbose : int, default=0
        Show the bar when positive.
    desc : str, default=None
        Label of the bar.
    total : int, default=None
        Number of items when ``len(iterable)`` is unavailable.

    Returns
    -------
    iterable : iterable
        ``iterable`` itself when silent, else a wrapper that reports progress.

    Examples
    --------
    >>> from weightstats.utils import progress
    >>> sum(progress(range(4), verbose=0))
    6
    """
    if not verbose:
        return iterable
    if total is None:
        total = len(iterable) if hasattr(iterable, "__len__") else None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextProgress(iterable, desc=desc, total=total)
    return tqdm(iterable, desc=desc, total=total, leave=False)


class _TextProgress:
    def __init__(self, iterable, *, desc, total, stream=None, min_interval=0.5):
        self.iterable = iterable
        self.desc = desc or ""
        self.total = total
        self.stream = stream or sys.stderr
        self.min_interval = min_interval

    def _show(self, done, start):
        elapsed = time.perf_counter() - start
        if self.total:
            width = 30
            filled = int(width * done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            msg = f"\r{self.desc} [{bar}] {done}/{self.total} {elapsed:.1f}s"
        else:
            msg = f"\r{self.desc} {done} {elapsed:.1f}s"
        self.stream.write(msg)
        self.stream.flush()

    def __iter__(self):
        start = last = time.perf_counter()
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            now = time.perf_counter()
            if now - last >= self.min_interval:
                self._show(done, start)
                last = now
        self._show(done, start)
        self.stream.write("\n")
