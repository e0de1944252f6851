"""Noise schedules and per-timestep loss weights of discrete-time diffusion.

The forward process is ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for
``t = 0 .. T-1`` with ``abar_t = prod_{s <= t} (1 - beta_s)``: diffusers'
``DDPMScheduler`` conventions (``alphas_cumprod``), so weights and samplers
written against diffusers carry over unchanged. The signal-to-noise ratio is
``SNR(t) = abar_t / (1 - abar_t)``.
"""

import math
import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["diffusion_loss_weights", "noise_schedule"]

_BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "cosine")
_SCHEMES = ("constant", "min_snr", "debias")
_PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def _glide_alpha_bar(t):
    # Nichol & Dhariwal's cosine schedule with offset s = 0.008 (diffusers'
    # betas_for_alpha_bar, alpha_transform_type="cosine").
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


@validate_params(
    {
        "beta_schedule": [StrOptions(set(_BETA_SCHEDULES))],
        "num_train_timesteps": [Interval(numbers.Integral, 1, None, closed="left")],
        "beta_start": [Interval(numbers.Real, 0, 1, closed="neither")],
        "beta_end": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_beta": [Interval(numbers.Real, 0, 1, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def noise_schedule(
    beta_schedule="linear",
    num_train_timesteps=1000,
    *,
    beta_start=0.0001,
    beta_end=0.02,
    max_beta=0.999,
):
    """Cumulative signal fractions ``alphas_cumprod`` of a DDPM noise schedule.

    The same schedules as diffusers' ``DDPMScheduler`` (its defaults are the
    DDPM paper's): ``alphas_cumprod[t] = prod_{s <= t} (1 - beta_s)``,
    computed in float64. diffusers computes in float32, so the two agree to
    about 3e-7 (tested to 1e-6).

    Parameters
    ----------
    beta_schedule : {"linear", "scaled_linear", "squaredcos_cap_v2", "cosine"}, \
            default="linear"
        ``"linear"``: ``beta`` evenly spaced from ``beta_start`` to
        ``beta_end`` (Ho et al., 2020). ``"scaled_linear"``: ``sqrt(beta)``
        evenly spaced (latent diffusion). ``"squaredcos_cap_v2"`` (alias
        ``"cosine"``): the cosine schedule of Nichol & Dhariwal (2021),
        ``abar(u) = cos((u + 0.008) / 1.008 * pi / 2)^2``, discretised as
        ``beta_t = min(1 - abar((t + 1) / T) / abar(t / T), max_beta)``.
    num_train_timesteps : int, default=1000
        Number of diffusion steps ``T``.
    beta_start, beta_end : float, default=0.0001, 0.02
        First and last ``beta`` of the linear schedules.
    max_beta : float, default=0.999
        Cap on ``beta`` in the cosine schedule.

    Returns
    -------
    alphas_cumprod : torch.Tensor of shape (num_train_timesteps,)
        ``abar_t``, float64, decreasing from about 1 to about 0.

    See Also
    --------
    diffusion_loss_weights : Per-timestep loss weights from ``alphas_cumprod``.

    Examples
    --------
    >>> from weightstats.nn.diffusion import noise_schedule
    >>> abar = noise_schedule("linear", 1000)
    >>> round(float(abar[0]), 6), f"{float(abar[-1]):.3e}"
    (0.9999, '4.036e-05')
    >>> snr = abar / (1 - abar)
    >>> round(float(1 / snr[-1].sqrt()), 1)  # the debias weight at t = T - 1
    157.4
    """
    T = int(num_train_timesteps)
    if beta_schedule in ("linear", "scaled_linear") and beta_start > beta_end:
        raise ValueError(
            f"beta_start ({beta_start}) must not exceed beta_end ({beta_end}): noise is added, "
            "not removed, as t grows."
        )
    if beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, T)
    elif beta_schedule == "scaled_linear":
        betas = np.linspace(beta_start**0.5, beta_end**0.5, T) ** 2
    else:
        betas = np.array(
            [
                min(1.0 - _glide_alpha_bar((t + 1) / T) / _glide_alpha_bar(t / T), max_beta)
                for t in range(T)
            ]
        )
    return torch.from_numpy(np.cumprod(1.0 - betas))


def _as_tensor(values, name):
    if isinstance(values, torch.Tensor):
        return values
    try:
        return torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a tensor or array-like of numbers.") from exc


def check_alphas_cumprod(alphas_cumprod):
    """``alphas_cumprod`` as a finite 1-d float tensor with values in [0, 1]."""
    alphas_cumprod = _as_tensor(alphas_cumprod, "alphas_cumprod")
    if alphas_cumprod.ndim != 1 or alphas_cumprod.numel() == 0:
        raise ValueError(
            f"alphas_cumprod must be a non-empty 1-d tensor (one value per timestep); got "
            f"shape {tuple(alphas_cumprod.shape)}."
        )
    if not alphas_cumprod.is_floating_point():
        raise TypeError(f"alphas_cumprod must be floating point; got {alphas_cumprod.dtype}.")
    if not bool(torch.isfinite(alphas_cumprod).all()):
        raise ValueError("alphas_cumprod contains NaN or infinity.")
    if bool(((alphas_cumprod < 0) | (alphas_cumprod > 1)).any()):
        raise ValueError(
            "alphas_cumprod must lie in [0, 1] (cumulative products of 1 - beta); use "
            "noise_schedule() or a diffusers scheduler's alphas_cumprod."
        )
    return alphas_cumprod


def check_timesteps(timesteps, num_train_timesteps):
    """Integer timesteps in ``[0, num_train_timesteps)`` as a tensor."""
    timesteps = _as_tensor(timesteps, "timesteps")
    if timesteps.is_floating_point() or timesteps.is_complex() or timesteps.dtype == torch.bool:
        raise TypeError(
            f"timesteps must be integers (indices into alphas_cumprod); got {timesteps.dtype}."
        )
    if timesteps.numel() and (
        int(timesteps.min()) < 0 or int(timesteps.max()) >= num_train_timesteps
    ):
        raise ValueError(
            f"timesteps must lie in [0, {num_train_timesteps - 1}] for a schedule of "
            f"{num_train_timesteps} steps; got values in [{int(timesteps.min())}, "
            f"{int(timesteps.max())}]."
        )
    return timesteps.long()


@validate_params(
    {
        "timesteps": ["array-like", torch.Tensor],
        "alphas_cumprod": ["array-like", torch.Tensor],
        "scheme": [StrOptions(set(_SCHEMES))],
        "prediction_type": [StrOptions(set(_PREDICTION_TYPES))],
        "snr_gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "clamp": [Interval(numbers.Real, 0, None, closed="neither"), None],
    },
    prefer_skip_nested_validation=True,
)
def diffusion_loss_weights(
    timesteps,
    alphas_cumprod,
    *,
    scheme="debias",
    prediction_type="epsilon",
    snr_gamma=5.0,
    clamp=None,
):
    """Per-timestep weights of the denoising loss.

    Multiply the per-sample loss ``mean((pred - target)^2)`` by these
    weights before averaging over the batch. With
    ``SNR(t) = abar_t / (1 - abar_t)``:

    * ``"constant"``: 1 (the "simple" loss of Ho et al., 2020);
    * ``"min_snr"`` (Hang et al., 2023; diffusers' ``--snr_gamma``):
      ``min(SNR, gamma) / SNR`` for epsilon prediction,
      ``min(SNR, gamma) / (SNR + 1)`` for v-prediction, and
      ``min(SNR, gamma)`` for sample (``x_0``) prediction;
    * ``"debias"`` (Yu et al., "Debias the Training of Diffusion Models"):
      ``1 / sqrt(SNR)`` for epsilon prediction, ``1 / sqrt(SNR + 1)`` for
      v-prediction (as diffengine's ``DeBiasEstimationLoss``), and
      ``sqrt(SNR)`` for sample prediction, the same objective written in
      ``x_0`` (``|eps - eps_hat|^2 = SNR |x_0 - x_0_hat|^2``).

    The debias weight is large at the noisiest steps: about 157 at
    ``t = T - 1`` of the linear schedule and 2e4 for the capped cosine
    schedule. ``clamp`` bounds it, ``w = min(w, clamp)``; that is a
    deviation from the paper (kohya's sd-scripts bound the SNR at 1000
    instead, which only affects the least noisy steps).

    Parameters
    ----------
    timesteps : tensor or array-like of int
        Timestep indices ``t`` in ``[0, len(alphas_cumprod))``, any shape.
    alphas_cumprod : tensor or array-like of shape (T,)
        The schedule, e.g. :func:`noise_schedule` or a diffusers scheduler's
        ``alphas_cumprod``; values in [0, 1].
    scheme : {"constant", "min_snr", "debias"}, default="debias"
        The weighting.
    prediction_type : {"epsilon", "v_prediction", "sample"}, default="epsilon"
        What the network predicts (diffusers' names).
    snr_gamma : float, default=5.0
        ``gamma`` of min-SNR weighting (5 is the paper's recommendation).
    clamp : float or None, default=None
        Upper bound on the weights; ``None`` leaves them as the rule gives.

    Returns
    -------
    weights : torch.Tensor
        Same shape and device as ``timesteps``; float64 unless
        ``alphas_cumprod`` is another floating type.

    Raises
    ------
    ValueError
        If a weight is infinite (``abar_t = 0`` with ``"debias"``, or
        ``abar_t = 1`` with sample prediction) and ``clamp`` is None.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn.diffusion import diffusion_loss_weights, noise_schedule
    >>> abar = noise_schedule("linear", 1000)
    >>> t = torch.tensor([0, 500, 999])
    >>> diffusion_loss_weights(t, abar, scheme="debias")
    tensor([1.0001e-02, 3.4430e+00, 1.5741e+02], dtype=torch.float64)
    >>> diffusion_loss_weights(t, abar, scheme="debias", clamp=10.0)
    tensor([ 0.0100,  3.4430, 10.0000], dtype=torch.float64)
    >>> diffusion_loss_weights(t, abar, scheme="min_snr", snr_gamma=5.0)
    tensor([5.0005e-04, 1.0000e+00, 1.0000e+00], dtype=torch.float64)
    """
    alphas_cumprod = check_alphas_cumprod(alphas_cumprod)
    timesteps = check_timesteps(timesteps, alphas_cumprod.shape[0])
    out_dtype = alphas_cumprod.dtype
    abar = alphas_cumprod.to(device=timesteps.device, dtype=torch.float64)[timesteps]
    if scheme == "constant":
        weights = torch.ones_like(abar)
    else:
        # abar = 0 or 1 give SNR = 0 or inf; IEEE arithmetic gives the limits.
        snr = abar / (1.0 - abar)
        if scheme == "min_snr":
            if prediction_type == "epsilon":
                # min(SNR, gamma) / SNR, written to stay finite at SNR = 0.
                weights = torch.clamp(snr_gamma / snr, max=1.0)
            elif prediction_type == "v_prediction":
                weights = torch.clamp(snr, max=snr_gamma) / (snr + 1.0)
                weights = torch.where(torch.isinf(snr), torch.zeros_like(weights), weights)
            else:
                weights = torch.clamp(snr, max=snr_gamma)
        elif prediction_type == "epsilon":
            weights = torch.rsqrt(snr)
        elif prediction_type == "v_prediction":
            weights = torch.rsqrt(snr + 1.0)
        else:
            weights = torch.sqrt(snr)
    if clamp is not None:
        weights = torch.clamp(weights, max=float(clamp))
    if not bool(torch.isfinite(weights).all()):
        bad = timesteps[~torch.isfinite(weights)]
        raise ValueError(
            f"the {scheme!r} weight is infinite at timesteps {bad.unique()[:5].tolist()} "
            "(alphas_cumprod is 0 or 1 there); pass clamp= to bound it."
        )
    return weights.to(out_dtype)
