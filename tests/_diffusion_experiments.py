"""The two diffusion experiments of the user guide (weightstats.nn.diffusion).

* Experiment A, guidance schedules: a conditional DDPM on 2-D Gaussian
  classes on a ring; constant, linear and cosine guidance at equal mean
  weight; class adherence (nearest class centre == the requested class)
  and MMD^2 to fresh draws of the requested class.
* Experiment B, loss weighting: the same data, constant vs debiased
  timestep weights at equal training steps; x0-reconstruction error per
  band of timesteps on held-out rows and MMD^2 of unguided samples.

The slow tests in ``tests/test_nn_diffusion.py`` run these functions and
assert the claims that hold over the seeds; run this module to print the
full tables of the user guide::

    OMP_NUM_THREADS=1 python -m tests._diffusion_experiments
"""

import time

import numpy as np
import pandas as pd
import torch

from weightstats.nn.diffusion import ConditionalDiffusion, GuidanceSchedule

N_CLASSES = 8
RADIUS = 2.0
CLASS_STD = 0.4
N_TRAIN = 4000
TRAIN_STEPS = 2000
BATCH_SIZE = 256
SAMPLES_PER_CLASS = 250
SAMPLING_STEPS = 50
BANDWIDTH = 0.5
SEEDS = (0, 1, 2)
GUIDANCE = (1.25, 1.5, 2.0, 3.0)
SCHEDULES = ("constant", "linear", "cosine", "clamp-linear")


def class_centres(n_classes=N_CLASSES, radius=RADIUS):
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    return radius * np.column_stack([np.cos(angles), np.sin(angles)])


def make_gaussian_classes(n_samples, seed, n_classes=N_CLASSES, std=CLASS_STD):
    """Rows ``x ~ N(centre_y, std^2 I)`` with ``y`` uniform over the classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    return class_centres(n_classes)[y] + std * rng.standard_normal((n_samples, 2)), y


def mmd2(a, b, bandwidth=BANDWIDTH):
    """Unbiased squared MMD with the Gaussian kernel ``exp(-|x-y|^2 / (2 h^2))``."""

    def gram(u, v):
        d2 = ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * bandwidth**2))

    kaa, kbb, kab = gram(a, a), gram(b, b), gram(a, b)
    n, m = len(a), len(b)
    return float(
        (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
        + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
        - 2 * kab.mean()
    )


def train(seed, loss_weighting="constant", **params):
    """A conditional DDPM trained for ``TRAIN_STEPS`` steps on fresh data."""
    X, y = make_gaussian_classes(N_TRAIN, seed)
    epochs = TRAIN_STEPS // -(-N_TRAIN // BATCH_SIZE)
    model = ConditionalDiffusion(
        loss_weighting=loss_weighting, max_epochs=epochs, batch_size=BATCH_SIZE, lr=2e-3,
        random_state=seed, **params,
    )
    return model.fit(X, y)


def evaluate_samples(model, guidance, seed, reference):
    """Adherence and mean per-class MMD^2 of guided samples (one row of the table)."""
    labels = np.repeat(np.arange(N_CLASSES), SAMPLES_PER_CLASS)
    samples = model.sample(len(labels), y=labels, guidance=guidance, steps=SAMPLING_STEPS,
                           random_state=seed)
    nearest = ((samples[:, None, :] - class_centres()[None]) ** 2).sum(-1).argmin(1)
    distances = [mmd2(samples[labels == k], reference[k]) for k in range(N_CLASSES)]
    return float(np.mean(nearest == labels)), float(np.mean(distances))


def reference_draws(seed, n_per_class=1000):
    """Fresh draws of each class (the truth the samples are compared with)."""
    rng = np.random.default_rng(10_000 + seed)
    return [c + CLASS_STD * rng.standard_normal((n_per_class, 2)) for c in class_centres()]


def experiment_a(seeds=SEEDS, guidance=GUIDANCE, schedules=SCHEDULES):
    """Rows (seed, schedule, mean omega, adherence, mmd2) incl. the unguided model."""
    rows = []
    for seed in seeds:
        model = train(seed)
        reference = reference_draws(seed)
        adherence, distance = evaluate_samples(model, 1.0, seed, reference)
        rows.append(dict(seed=seed, schedule="none", omega=1.0, adherence=adherence,
                         mmd2=distance))
        for omega in guidance:
            for kind in schedules:
                # clamp-linear: never below 1 (unguided conditional sampling).
                params = {"c": 1.0} if kind == "clamp-linear" else {}
                adherence, distance = evaluate_samples(
                    model, GuidanceSchedule(kind, omega, **params), seed, reference
                )
                rows.append(dict(seed=seed, schedule=kind, omega=omega, adherence=adherence,
                                 mmd2=distance))
        # The data's own adherence (class overlap) for reference.
        truth = np.mean([
            np.mean(((r[:, None, :] - class_centres()[None]) ** 2).sum(-1).argmin(1) == k)
            for k, r in enumerate(reference)
        ])
        rows.append(dict(seed=seed, schedule="data", omega=np.nan, adherence=float(truth),
                         mmd2=0.0))
    return pd.DataFrame(rows)


def x0_errors(model, X, bands=5, draws=4, seed=0):
    """Mean squared x0-reconstruction error per band of timesteps (held-out rows).

    ``x0_hat`` comes from the network's (conditional, unguided) prediction at
    each timestep, in standardised units, ``draws`` noise draws per row.
    """
    rng = torch.Generator().manual_seed(seed)
    X0, labels = X
    x0 = torch.as_tensor((X0 - model.mean_) / model.scale_, dtype=torch.float32)
    lab = torch.as_tensor(model._encode_labels(labels, len(labels)))
    abar_all = torch.as_tensor(model.alphas_cumprod_, dtype=torch.float32)
    T = len(abar_all)
    edges = np.linspace(0, T, bands + 1).astype(int)
    errors = []
    model.module_.eval()
    with torch.no_grad():
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            total = 0.0
            for _ in range(draws):
                t = torch.randint(lo, hi, (len(x0),), generator=rng)
                noise = torch.randn(x0.shape, generator=rng)
                abar = abar_all[t].reshape(-1, 1)
                x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
                x0_hat = model._to_sample(model.module_(x_t, t, lab), x_t, abar)
                total += float(((x0_hat - x0) ** 2).sum(1).mean())
            errors.append(total / draws)
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)], errors


def experiment_b(seeds=SEEDS, weightings=("constant", "debias")):
    """Per seed and weighting: x0 error per t band and MMD^2 of unguided samples."""
    rows = []
    for seed in seeds:
        held_out = make_gaussian_classes(2000, 5_000 + seed)
        reference = reference_draws(seed)
        for weighting in weightings:
            model = train(seed, loss_weighting=weighting)
            bands, errors = x0_errors(model, held_out, seed=seed)
            _, distance = evaluate_samples(model, 1.0, seed, reference)
            rows.append(dict(seed=seed, weighting=weighting, mmd2=distance,
                             **dict(zip(bands, errors, strict=True))))
    return pd.DataFrame(rows)


def summarise(frame, by, columns):
    """Mean and standard deviation over seeds, as 'mean ± sd' strings."""
    grouped = frame.groupby(by, sort=False)[columns]
    mean, sd = grouped.mean(), grouped.std()
    return mean.round(4).astype(str) + " ± " + sd.round(4).astype(str)


def main():
    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    a = experiment_a()
    print("Experiment A (per seed)\n", a.to_string(index=False))
    print(summarise(a, ["schedule", "omega"], ["adherence", "mmd2"]).to_string())
    print(f"[{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU]")
    start, cpu = time.perf_counter(), time.process_time()
    b = experiment_b()
    print("Experiment B (per seed)\n", b.to_string(index=False))
    print(summarise(b, ["weighting"], [c for c in b.columns if c not in ("seed", "weighting")])
          .to_string())
    print(f"[{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU]")


if __name__ == "__main__":
    main()
