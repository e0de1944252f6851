"""Weighting inside diffusion models.

* Classifier-free guidance schedules (Wang et al., TMLR 2024):
  :func:`guidance_schedule`, :class:`GuidanceSchedule`, :func:`cfg_combine`.
* Timestep weighting of the denoising loss (debiased, Yu et al.; min-SNR,
  Hang et al.): :func:`diffusion_loss_weights`, with the DDPM noise
  schedules of diffusers from :func:`noise_schedule`.
* A small conditional DDPM for tabular data with classifier-free guidance:
  :class:`ConditionalDiffusion` (skorch-style estimator) and its default
  network :class:`ConditionalDenoiser`.
"""

from ._denoiser import ConditionalDenoiser
from ._estimator import ConditionalDiffusion
from ._guidance import GuidanceSchedule, cfg_combine, guidance_schedule
from ._schedules import diffusion_loss_weights, noise_schedule

__all__ = [
    "ConditionalDenoiser",
    "ConditionalDiffusion",
    "GuidanceSchedule",
    "cfg_combine",
    "diffusion_loss_weights",
    "guidance_schedule",
    "noise_schedule",
]
