"""Timing and memory helpers shared by the benchmark groups."""

import os
import threading
import time

__all__ = ["best_time", "paired_best", "overhead_row", "peak_memory_mb", "machine_description"]


def best_time(func, *args, repeat=3, warmup=1, **kwargs):
    """Best wall time of ``repeat`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        func(*args, **kwargs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)



def paired_best(ours, peer, repeat=30):
    """Time two calls alternately: best times and the median ratio of
    neighbouring calls (ours / peer), which a loaded machine disturbs far
    less than the ratio of separately taken timings."""
    ours(), peer()  # warm-up
    pairs = []
    for _ in range(repeat):
        pair = []
        for func in (ours, peer):
            start = time.perf_counter()
            func()
            pair.append(time.perf_counter() - start)
        pairs.append(pair)
    ours_times, peer_times = zip(*pairs)
    ratios = sorted(a / b for a, b in pairs)
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return min(ours_times), min(peer_times), float(median)


def overhead_row(case, ours_s, peer, peer_s, overhead):
    """A result row of a :func:`paired_best` timing (``ratio`` = 1 / overhead)."""
    return {"case": case, "ours_s": round(ours_s, 5), "peer": peer, "peer_s": round(peer_s, 5),
            "ratio": round(1 / overhead, 3), "overhead": round(overhead, 3)}

def _rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory_mb(func, *args, interval=0.0005, **kwargs):
    """Peak growth of resident memory (MB) while ``func(*args, **kwargs)`` runs.

    A thread samples the process's resident set size (Linux ``/proc``) every
    ``interval`` seconds; this sees memory from every allocator (NumPy,
    numba's runtime, BLAS), which ``tracemalloc`` does not. Call ``func`` once
    beforehand so compilation is not counted.
    """
    baseline = _rss_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        func(*args, **kwargs)
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return (peak[0] - baseline) / 2**20


def machine_description():
    """One line naming the CPU and core count of this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"
