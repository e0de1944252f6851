"""weightstats.nn.diffusion: the cost of guidance schedules and of the batched
two-branch forward pass (part of ``python -m benchmarks nn``).

* Guided DDIM sampling with a linear, cosine or clamp-linear schedule against
  the same sampling with a constant weight (goal: at most 1.05x);
* the two classifier-free-guidance branches of :class:`ConditionalDenoiser`
  in one ``forward_guided`` pass against two separate forward passes at
  batch 2,048 (goal: at most 0.7x), and against the generic stacked batch
  (``module(cat([x, x]), ...)``) used for networks without
  ``forward_guided``.

Timings are the CPU time of the calling thread (``time.thread_time``) with
torch limited to that one thread, so time spent descheduled on a loaded
machine does not count; the variants run interleaved in a shuffled order
and the best of many repeats is kept.
"""

import contextlib
import time

import numpy as np


@contextlib.contextmanager
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _interleaved_best(funcs, repeat):
    """Best thread CPU time of each function, run in turn (in a shuffled order)."""
    order = np.random.default_rng(0)
    names = list(funcs)
    with _one_thread():
        for func in funcs.values():
            func()
        best = dict.fromkeys(funcs, np.inf)
        for _ in range(repeat):
            for name in order.permutation(names):
                start = time.thread_time()
                funcs[name]()
                best[name] = min(best[name], time.thread_time() - start)
    return best


def _row(case, ours_s, peer, peer_s):
    return {
        "case": case,
        "ours_s": round(ours_s, 5),
        "peer": peer,
        "peer_s": round(peer_s, 5),
        "ratio": round(peer_s / ours_s, 3),
        "ours_over_peer": round(ours_s / peer_s, 3),
    }


def _fitted_model():
    from weightstats.nn.diffusion import ConditionalDiffusion

    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 2000)
    angles = 2 * np.pi * y / 8
    X = 2 * np.column_stack([np.cos(angles), np.sin(angles)]) + 0.4 * rng.normal(size=(2000, 2))
    return ConditionalDiffusion(max_epochs=2, random_state=0).fit(X, y)


def schedule_overhead(quick):
    from weightstats.nn.diffusion import GuidanceSchedule

    model = _fitted_model()
    n, steps = (256, 20) if quick else (2048, 50)
    labels = np.arange(n) % 8

    def run(guidance):
        return lambda: model.sample(n, y=labels, guidance=guidance, steps=steps, random_state=0)

    funcs = {"constant": run(3.0)}
    for kind, params in (("linear", {}), ("cosine", {}), ("clamp-linear", {"c": 1.0})):
        funcs[kind] = run(GuidanceSchedule(kind, 3.0, **params))
    best = _interleaved_best(funcs, repeat=3 if quick else 30)
    return [
        _row(f"guided DDIM sampling, n={n}, {steps} steps, {kind} schedule (mean 3)",
             best[kind], "constant guidance 3.0", best["constant"])
        for kind in ("linear", "cosine", "clamp-linear")
    ]


def two_branch_forward(quick):
    import torch

    from weightstats.nn.diffusion import ConditionalDenoiser

    torch.manual_seed(0)
    batch = 256 if quick else 2048
    net = ConditionalDenoiser(2, 8).eval()
    x, t = torch.randn(batch, 2), torch.full((batch,), 500)
    y = torch.randint(0, 8, (batch,))
    null = torch.full((batch,), 8)

    def batched():
        return net.forward_guided(x, t, y)

    def separate():
        return net(x, t, null), net(x, t, y)

    def stacked():
        return net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, y])).chunk(2)

    with torch.no_grad():
        best = _interleaved_best(
            {"batched": batched, "separate": separate, "stacked": stacked},
            repeat=5 if quick else 50,
        )
    case = f"both CFG branches, batch {batch}, ConditionalDenoiser (128, 128, 128)"
    return [
        _row(case + ", forward_guided", best["batched"], "two separate forward passes",
             best["separate"]),
        _row(case + ", stacked batch (networks without forward_guided)", best["stacked"],
             "two separate forward passes", best["separate"]),
    ]


BENCHMARKS = {
    "diffusion_schedule_overhead": schedule_overhead,
    "diffusion_two_branch_forward": two_branch_forward,
}
