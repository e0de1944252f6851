"""A progress report for long loops, shown when ``verbose`` is set.

On a terminal or in a notebook it is a tqdm bar (with the elapsed and the
estimated remaining time). When stderr is a file or a pipe (logs, CI, a
command whose output is captured), a bar's carriage-return redraws would pile
up on one line, so plain lines are printed instead: after the first item, then
at most every ``min_interval`` seconds, and at the end, each with the elapsed
and the estimated remaining time.
"""

import sys
import time

__all__ = ["progress"]


def progress(iterable, *, verbose=0, desc=None, total=None):
    """Wrap ``iterable`` in a progress report when ``verbose`` is truthy.

    Parameters
    ----------
    iterable : iterable
        What to loop over.
    verbose : int, default=0
        Report progress when positive.
    desc : str, default=None
        Label of the report.
    total : int, default=None
        Number of items when ``len(iterable)`` is unavailable.

    Returns
    -------
    iterable : iterable
        ``iterable`` itself when silent; else a tqdm bar on a terminal or in a
        notebook, and a wrapper printing one line per update on stderr
        otherwise.

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
    if _interactive():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, desc=desc, total=total, leave=False)
    return _TextProgress(iterable, desc=desc, total=total)


def _interactive():
    """A terminal or a Jupyter kernel: somewhere a redrawn bar reads well."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def _clock(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _TextProgress:
    """Plain progress lines on a stream (for logs and pipes)."""

    def __init__(self, iterable, *, desc, total, stream=None, min_interval=10.0):
        self.iterable = iterable
        self.desc = desc or "progress"
        self.total = total
        self.stream = stream or sys.stderr
        self.min_interval = min_interval

    def _show(self, done, start):
        elapsed = time.perf_counter() - start
        line = f"{self.desc}: {done}"
        if self.total:
            line += f"/{self.total} ({100 * done / self.total:.0f}%)"
        line += f", {_clock(elapsed)} elapsed"
        if self.total and 0 < done < self.total:
            line += f", about {_clock(elapsed / done * (self.total - done))} left"
        print(line, file=self.stream, flush=True)

    def __iter__(self):
        start = last = time.perf_counter()
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            now = time.perf_counter()
            if done == 1 or now - last >= self.min_interval:
                self._show(done, start)
                last = now
        if done != 1:
            self._show(done, start)
