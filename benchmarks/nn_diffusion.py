"""weightstats.nn.diffusion: the cost of guidance schedules and of the batched
two-branch forward pass (part of ``python -m benchmarks nn``).

* Guided DDIM sampling with a linear, cosine or clamp-linear schedule against
  the same sampling with a constant weight (goal: at most 1.05x);
* the two classifier-free-guidance branches of :class:`ConditionalDenoiser`
  in one ``forward_guided`` pass against two separate forward passes at
  batch 2,048 (goal: at most 0.7x), and against the generic stacked batch
  (``module(cat([x, x]), ...)``) used for networks without
  ``forward_guided``.

Timings interleave the variants and keep the best of many repeats, which
on a loaded machine is the least disturbed run.
"""

import time

import numpy as np


def _interleaved_best(funcs, repeat):
    """Best time of each function, the functions run in turn ``repeat`` times."""
    for func in funcs.values():
        func()
    best = dict.fromkeys(funcs, np.inf)
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


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
    best = _interleaved_best(funcs, repeat=3 if quick else 15)
    return [
        {
            "case": f"guided DDIM sampling, n={n}, {steps} steps, {kind} schedule (mean 3)",
            "ours_s": round(best[kind], 4),
            "peer": "constant guidance 3.0",
            "peer_s": round(best["constant"], 4),
            "ratio": round(best["constant"] / best[kind], 3),
            "ours_over_peer": round(best[kind] / best["constant"], 3),
        }
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
        {
            "case": case + ", forward_guided",
            "ours_s": round(best["batched"], 5),
            "peer": "two separate forward passes",
            "peer_s": round(best["separate"], 5),
            "ratio": round(best["separate"] / best["batched"], 3),
            "ours_over_peer": round(best["batched"] / best["separate"], 3),
        },
        {
            "case": case + ", stacked batch (networks without forward_guided)",
            "ours_s": round(best["stacked"], 5),
            "peer": "two separate forward passes",
            "peer_s": round(best["separate"], 5),
            "ratio": round(best["separate"] / best["stacked"], 3),
            "ours_over_peer": round(best["stacked"] / best["separate"], 3),
        },
    ]


BENCHMARKS = {
    "diffusion_schedule_overhead": schedule_overhead,
    "diffusion_two_branch_forward": two_branch_forward,
}
