"""Classifier-free guidance and its weight schedules.

Classifier-free guidance (Ho & Salimans, 2022) combines the conditional and
unconditional noise predictions as
``eps = eps_uncond + omega * (eps_cond - eps_uncond)`` (diffusers' default
formulation: ``omega = 1`` is plain conditional sampling, ``omega = 0``
unconditional). Wang et al., "Analysis of Classifier-Free Guidance Weight
Schedulers" (TMLR 2024), vary ``omega`` over the sampling trajectory and
find that simple *increasing* schedules (little guidance at the noisy start,
more at the end) beat a constant ``omega``.

Schedules are written in the position ``a = i / (n - 1)`` of sampling step
``i`` of ``n`` (``a = 0`` at the first, noisiest step; ``a = 1 - t / T`` in
timestep terms) and scaled so that their mean over the ``n`` steps (or their
peak) equals ``guidance_scale``.
"""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["GuidanceSchedule", "cfg_combine", "guidance_schedule"]

# kind -> the parameters it takes, with their defaults.
_KINDS = {
    "constant": {},
    "linear": {},
    "cosine": {},
    "clamp-linear": {"c": 1.0},
    "power-cosine": {"s": 2.0},
    "clamped-power-cosine": {"s": 2.0, "c": 1.0},
    "inverted-linear": {},
    "v-shape": {},
}
_NORMALIZE = ("mean", "peak")


def _shape(kind, position, s):
    """The schedule's shape (before scaling) at positions in [0, 1]."""
    if kind == "constant":
        return np.ones_like(position)
    if kind in ("linear", "clamp-linear"):
        return position
    if kind == "cosine":
        return 1.0 - np.cos(np.pi * position)
    if kind in ("power-cosine", "clamped-power-cosine"):
        return 0.5 * (1.0 - np.cos(np.pi * position**s))
    if kind == "inverted-linear":
        return 1.0 - position
    return np.abs(1.0 - 2.0 * position)  # v-shape


def _clamped_mean_scale(shape, floor, target):
    """``a`` with ``mean(max(floor, a * shape)) == target`` (``target > floor``).

    The mean is piecewise linear and increasing in ``a``: with the ``k``
    largest shape values above the floor it is
    ``(a * sum(top k) + (n - k) * floor) / n``. Solve each piece and keep the
    one whose solution puts exactly those ``k`` values above the floor.
    """
    n = shape.size
    values = np.sort(shape)[::-1]
    values = values[values > 0]
    k = np.arange(1, values.size + 1)
    scales = (n * target - (n - k) * floor) / np.cumsum(values)
    below = np.append(values[1:], 0.0)
    valid = (scales * values >= floor) & (scales * below <= floor)
    return float(scales[np.flatnonzero(valid)[0]])


def _check_params(kind, params):
    allowed = _KINDS[kind]
    unknown = set(params) - set(allowed)
    if unknown:
        takes = f"takes {sorted(allowed)}" if allowed else "takes no parameters"
        raise TypeError(f"guidance schedule {kind!r} {takes}; got {sorted(unknown)}.")
    values = {**allowed, **params}
    for name, value in values.items():
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}.")
    if "c" in values and values["c"] < 0:
        raise ValueError(f"the clamp floor c must be >= 0; got {values['c']}.")
    if "s" in values and values["s"] <= 0:
        raise ValueError(f"the power-cosine exponent s must be positive; got {values['s']}.")
    return values


def _schedule_values(kind, guidance_scale, num_steps, normalize, params):
    values = _check_params(kind, params)
    if num_steps == 1:
        # One step has no trajectory to shape: every schedule is its mean.
        return np.array([float(guidance_scale)])
    position = np.arange(num_steps) / (num_steps - 1)
    shape = _shape(kind, position, values.get("s", 1.0))
    floor = values.get("c")
    if floor is not None and floor > guidance_scale:
        raise ValueError(
            f"the clamp c={floor} exceeds guidance_scale={guidance_scale}: a schedule that "
            f"never drops below c cannot have {normalize} {guidance_scale}; lower c."
        )
    reference = shape.mean() if normalize == "mean" else shape.max()
    if floor is None:
        return guidance_scale * shape / reference
    if floor == guidance_scale:
        # Never below c with mean (or peak) c: constant c.
        return np.full(num_steps, float(floor))
    if normalize == "peak":
        scale = guidance_scale / reference
    else:
        scale = _clamped_mean_scale(shape, floor, guidance_scale)
    return np.maximum(floor, scale * shape)


_SCHEDULE_PARAMS_DOC = """kind : {"constant", "linear", "cosine", "clamp-linear", "power-cosine", \
"clamped-power-cosine", "inverted-linear", "v-shape"}
        The schedule's shape in the position ``a = i / (n - 1)`` of step
        ``i`` of ``n`` (``a = 0`` at the noisiest step):

        * ``"constant"``: 1 (plain classifier-free guidance);
        * ``"linear"``: ``a`` (increasing); with ``normalize="mean"``
          ``omega_i = 2 * scale * a``;
        * ``"cosine"``: ``1 - cos(pi a)``; with ``normalize="mean"``
          ``omega_i = scale * (1 + cos(pi t / T))`` in timestep terms;
        * ``"power-cosine"``: ``(1 - cos(pi a^s)) / 2``, exponent ``s``
          (MDT's power-cosine schedule; ``s = 1`` is ``"cosine"``);
        * ``"clamp-linear"``, ``"clamped-power-cosine"``: the same, never
          below the floor ``c``: ``omega_i = max(c, k * shape_i)``;
        * ``"inverted-linear"``: ``1 - a`` (decreasing, a control);
        * ``"v-shape"``: ``|1 - 2a|`` (high at both ends).
    guidance_scale : float
        The mean (or peak) guidance weight ``omega``, >= 0, in diffusers'
        convention (1 = conditional sampling without guidance)."""

_SCHEDULE_TAIL_DOC = """normalize : {"mean", "peak"}, default="mean"
        ``"mean"`` scales the schedule so that its average over the steps
        equals ``guidance_scale`` (schedules then compare at equal mean
        guidance, as in Wang et al.); ``"peak"`` so that its maximum does
        (the convention of implementations that write the linear schedule
        as ``scale * (1 - t / T)``). For the clamped kinds the factor ``k``
        is solved so that ``max(c, k * shape)`` has that mean (or peak).
    **params : float
        ``s`` (power-cosine exponent, default 2.0) and ``c`` (clamp floor,
        default 1.0: never less than unguided conditional sampling) for
        the kinds that take them."""


def _fill(obj):
    obj.__doc__ = obj.__doc__.replace("{schedule_params}", _SCHEDULE_PARAMS_DOC).replace(
        "{schedule_tail}", _SCHEDULE_TAIL_DOC
    )
    return obj


@_fill
@validate_params(
    {
        "kind": [StrOptions(set(_KINDS))],
        "guidance_scale": [Interval(numbers.Real, 0, None, closed="left")],
        "num_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "normalize": [StrOptions(set(_NORMALIZE))],
    },
    prefer_skip_nested_validation=True,
)
def guidance_schedule(kind, guidance_scale, num_steps, *, normalize="mean", **params):
    """Guidance weight ``omega`` for each sampling step.

    Parameters
    ----------
    {schedule_params}
    num_steps : int
        Number of sampling steps ``n``.
    {schedule_tail}

    Returns
    -------
    omega : ndarray of shape (num_steps,)
        ``omega[0]`` is used at the first (noisiest) step.

    See Also
    --------
    GuidanceSchedule : The same as a callable ``(step_index, num_steps)``.
    cfg_combine : The guidance rule these weights enter.

    Notes
    -----
    The mean is taken over the discrete steps, so it equals
    ``guidance_scale`` exactly whatever ``num_steps``. For ``"linear"`` and
    ``"cosine"`` this reproduces the closed forms ``2 omega a`` and
    ``omega (1 - cos(pi a))`` exactly, since ``a`` is symmetric about 1/2.
    A single step has no trajectory: every kind then returns
    ``[guidance_scale]``.

    Examples
    --------
    >>> from weightstats.nn.diffusion import guidance_schedule
    >>> guidance_schedule("linear", 3.0, 5)
    array([0. , 1.5, 3. , 4.5, 6. ])
    >>> guidance_schedule("linear", 3.0, 5, normalize="peak")
    array([0.  , 0.75, 1.5 , 2.25, 3.  ])
    >>> guidance_schedule("clamp-linear", 3.0, 5, c=1.0).mean()
    np.float64(3.0)
    """
    values = _schedule_values(kind, float(guidance_scale), int(num_steps), normalize, params)
    return values


@_fill
class GuidanceSchedule:
    """A guidance-weight schedule as a callable ``(step_index, num_steps) -> omega``.

    Drop-in for a constant ``guidance_scale`` inside a sampling loop::

        schedule = GuidanceSchedule("cosine", 5.0)
        for i, t in enumerate(scheduler.timesteps):
            eps_uncond, eps_cond = model(...).chunk(2)
            omega = schedule(i, len(scheduler.timesteps))
            eps = cfg_combine(eps_uncond, eps_cond, omega)

    The weights for a given ``num_steps`` are computed once and cached.

    Parameters
    ----------
    {schedule_params}
    {schedule_tail}

    See Also
    --------
    guidance_schedule : The weights of all steps as an array.

    Examples
    --------
    >>> from weightstats.nn.diffusion import GuidanceSchedule
    >>> schedule = GuidanceSchedule("cosine", 2.0)
    >>> [round(schedule(i, 3), 6) for i in range(3)]
    [0.0, 2.0, 4.0]
    >>> schedule.values(3).mean()
    np.float64(2.0)
    >>> schedule
    GuidanceSchedule('cosine', 2.0)
    """

    def __init__(self, kind, guidance_scale, *, normalize="mean", **params):
        # Validate now, so that a bad schedule fails before sampling starts.
        guidance_schedule(kind, guidance_scale, 2, normalize=normalize, **params)
        self.kind = kind
        self.guidance_scale = float(guidance_scale)
        self.normalize = normalize
        self.params = dict(params)
        self._cache = {}

    def values(self, num_steps):
        """The weights of all ``num_steps`` steps.

        Parameters
        ----------
        num_steps : int
            Number of sampling steps.

        Returns
        -------
        omega : ndarray of shape (num_steps,)
            The weights, first (noisiest) step first (read-only).
        """
        if num_steps not in self._cache:
            omega = guidance_schedule(
                self.kind, self.guidance_scale, num_steps, normalize=self.normalize,
                **self.params,
            )
            omega.setflags(write=False)
            self._cache[num_steps] = omega
        return self._cache[num_steps]

    def __call__(self, step_index, num_steps):
        """The weight of step ``step_index`` (0 = first, noisiest) of ``num_steps``.

        Parameters
        ----------
        step_index : int
            Index of the sampling step, ``0 <= step_index < num_steps``.
        num_steps : int
            Number of sampling steps.

        Returns
        -------
        omega : float
            The guidance weight.
        """
        if not isinstance(num_steps, numbers.Integral) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer; got {num_steps!r}.")
        if not isinstance(step_index, numbers.Integral) or not 0 <= step_index < num_steps:
            raise ValueError(
                f"step_index must be an integer in [0, {num_steps - 1}]; got {step_index!r}."
            )
        return float(self.values(int(num_steps))[int(step_index)])

    def __repr__(self):
        extra = "" if self.normalize == "mean" else f", normalize={self.normalize!r}"
        extra += "".join(f", {key}={value!r}" for key, value in sorted(self.params.items()))
        return f"GuidanceSchedule({self.kind!r}, {self.guidance_scale!r}{extra})"

    def __eq__(self, other):
        if not isinstance(other, GuidanceSchedule):
            return NotImplemented
        return (self.kind, self.guidance_scale, self.normalize, self.params) == (
            other.kind, other.guidance_scale, other.normalize, other.params
        )

    def __hash__(self):
        return hash((self.kind, self.guidance_scale, self.normalize,
                     tuple(sorted(self.params.items()))))

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "_cache"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = {}


def cfg_combine(eps_uncond, eps_cond, omega):
    """Classifier-free guidance: ``eps_uncond + omega * (eps_cond - eps_uncond)``.

    Parameters
    ----------
    eps_uncond, eps_cond : torch.Tensor of the same shape
        Unconditional and conditional predictions (noise, ``v`` or ``x_0``:
        the rule is linear, so it applies to any of them).
    omega : float or torch.Tensor
        The guidance weight; a tensor broadcasts against the predictions
        (e.g. shape ``(batch, 1)`` for one weight per sample).

    Returns
    -------
    eps : torch.Tensor
        The guided prediction (``omega = 1`` gives ``eps_cond``, ``omega = 0``
        gives ``eps_uncond``).

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn.diffusion import cfg_combine
    >>> cfg_combine(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]), 3.0)
    tensor([3., 1.])
    """
    if not isinstance(eps_uncond, torch.Tensor) or not isinstance(eps_cond, torch.Tensor):
        raise TypeError("eps_uncond and eps_cond must be torch tensors.")
    if eps_uncond.shape != eps_cond.shape:
        raise ValueError(
            f"eps_uncond and eps_cond must have the same shape; got {tuple(eps_uncond.shape)} "
            f"and {tuple(eps_cond.shape)}."
        )
    if isinstance(omega, torch.Tensor):
        if not bool(torch.isfinite(omega).all()):
            raise ValueError("omega contains NaN or infinity.")
        omega = omega.to(device=eps_cond.device, dtype=eps_cond.dtype)
    elif isinstance(omega, numbers.Real) and not isinstance(omega, bool):
        if not np.isfinite(omega):
            raise ValueError(f"omega must be finite; got {omega}.")
        omega = float(omega)
    else:
        raise TypeError(f"omega must be a number or a tensor; got {type(omega).__name__}.")
    return eps_uncond + omega * (eps_cond - eps_uncond)
