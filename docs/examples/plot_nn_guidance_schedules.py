"""
Classifier-free guidance schedules on 2-D Gaussian classes
==========================================================

Train a small conditional diffusion model
(:class:`weightstats.nn.ConditionalDiffusion`) on eight Gaussian
classes arranged on a ring, then sample one class with a constant guidance
weight and with increasing schedules of the same mean
(:class:`weightstats.nn.GuidanceSchedule`). Guidance pulls the
samples into the requested class, and also shrinks them towards its centre;
how a schedule spends the same mean weight changes that trade-off. See the
:ref:`user guide <nn_diffusion>` for the rules and the multi-seed tables.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from weightstats.nn.diffusion import ConditionalDiffusion, GuidanceSchedule, guidance_schedule

torch.set_num_threads(1)
rng = np.random.default_rng(0)
angles = 2 * np.pi * np.arange(8) / 8
centres = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])
y = rng.integers(0, 8, 4000)
X = centres[y] + 0.4 * rng.standard_normal((4000, 2))

# %%
# The schedules: the guidance weight of each of 50 sampling steps, first
# (noisiest) step on the left, all with mean 1.5. ``"clamp-linear"`` never
# drops below 1, plain conditional sampling.
steps = 50
fig, ax = plt.subplots(figsize=(6, 3.5))
kinds = {"constant": {}, "linear": {}, "cosine": {}, "clamp-linear": {"c": 1.0}}
for kind, params in kinds.items():
    ax.plot(guidance_schedule(kind, 1.5, steps, **params), label=kind)
ax.set_xlabel("sampling step (0 = noisiest)")
ax.set_ylabel("guidance weight omega")
ax.legend()
fig.tight_layout()

# %%
# A conditional DDPM with 10 % label dropout, 2,000 training steps (batches
# of 256), as in the user guide's experiments.
model = ConditionalDiffusion(max_epochs=125, lr=2e-3, random_state=0).fit(X, y)

# %%
# Samples of class 0 (the cluster on the right) without guidance and with
# mean guidance 1.5. The class adherence is the share of samples whose
# nearest centre is the requested one (about 0.94 for the data itself).
settings = {
    "no guidance": 1.0,
    "constant 1.5": 1.5,
    "linear, mean 1.5": GuidanceSchedule("linear", 1.5),
    "clamp-linear, mean 1.5": GuidanceSchedule("clamp-linear", 1.5, c=1.0),
}
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), sharex=True, sharey=True)
for ax, (name, guidance) in zip(axes, settings.items()):
    samples = model.sample(500, y=0, guidance=guidance, steps=steps, random_state=0)
    nearest = ((samples[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    ax.scatter(*X[y == 0].T, s=3, alpha=0.3, color="grey")
    ax.scatter(*samples.T, s=3, color="C1")
    ax.set_title(f"{name}\nadherence {np.mean(nearest == 0):.3f}, sd {samples.std(0).mean():.2f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
