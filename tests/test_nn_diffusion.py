"""weightstats.nn.diffusion: guidance schedules, loss weights, the conditional DDPM.

Exact rules against closed forms written here (and against diffusers where
it is installed); estimator mechanics on tiny data; slow experiments A
(guidance schedules) and B (debiased loss weighting) on 2-D Gaussian
classes, whose full tables ``python -m tests._diffusion_experiments``
prints for the user guide.
"""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklearn.base import clone  # noqa: E402

from weightstats.nn.diffusion import (  # noqa: E402
    ConditionalDenoiser,
    ConditionalDiffusion,
    GuidanceSchedule,
    cfg_combine,
    diffusion_loss_weights,
    guidance_schedule,
    noise_schedule,
)

pytestmark = pytest.mark.requires("torch", "skorch")

KINDS = [
    "constant", "linear", "cosine", "clamp-linear", "power-cosine", "clamped-power-cosine",
    "inverted-linear", "v-shape",
]
FAST = dict(module__hidden_units=(16, 16), max_epochs=5, batch_size=64, lr=3e-3, random_state=0)


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])[y] + 0.3 * rng.standard_normal((n, 2))
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _blobs()
    return ConditionalDiffusion(**FAST).fit(X, y), X, y


# --------------------------------------------------------------- schedules
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_steps", [1, 2, 3, 10, 50])
def test_mean_normalisation_gives_the_guidance_scale(kind, num_steps):
    omega = guidance_schedule(kind, 4.0, num_steps)
    assert omega.shape == (num_steps,)
    np.testing.assert_allclose(omega.mean(), 4.0, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_peak_normalisation_gives_the_guidance_scale(kind):
    omega = guidance_schedule(kind, 4.0, 25, normalize="peak")
    np.testing.assert_allclose(omega.max(), 4.0, rtol=1e-12)


def test_closed_forms():
    n, w = 11, 3.0
    a = np.arange(n) / (n - 1)  # progress along the trajectory; t / T = 1 - a
    np.testing.assert_allclose(guidance_schedule("constant", w, n), np.full(n, w))
    np.testing.assert_allclose(guidance_schedule("linear", w, n), 2 * w * a, atol=1e-12)
    # The paper's cosine schedule written in timesteps: omega (1 + cos(pi t / T)).
    np.testing.assert_allclose(
        guidance_schedule("cosine", w, n), w * (1 + np.cos(np.pi * (1 - a))), atol=1e-12
    )
    np.testing.assert_allclose(guidance_schedule("inverted-linear", w, n), 2 * w * (1 - a),
                               atol=1e-12)
    # |1 - 2a| averages 1/2 only in the limit: the mean is taken over the steps.
    v = np.abs(1 - 2 * a)
    np.testing.assert_allclose(guidance_schedule("v-shape", w, n), w * v / v.mean(), atol=1e-12)
    np.testing.assert_allclose(guidance_schedule("v-shape", w, n, normalize="peak"), w * v,
                               atol=1e-12)
    # Peak-normalised forms of the implementations that omit the factor 2.
    np.testing.assert_allclose(guidance_schedule("linear", w, n, normalize="peak"), w * a,
                               atol=1e-12)
    np.testing.assert_allclose(
        guidance_schedule("power-cosine", w, n, normalize="peak", s=3.0),
        0.5 * w * (1 - np.cos(np.pi * a**3)), atol=1e-12,
    )
    np.testing.assert_allclose(
        guidance_schedule("power-cosine", w, n, s=1.0), guidance_schedule("cosine", w, n),
        atol=1e-12,
    )


def test_clamped_schedules():
    w, c, n = 3.0, 1.5, 40
    omega = guidance_schedule("clamp-linear", w, n, c=c)
    assert omega.min() == pytest.approx(c)
    np.testing.assert_allclose(omega.mean(), w, rtol=1e-12)
    # Above the floor it is linear in the step index.
    above = omega > c + 1e-9
    steps = np.flatnonzero(above)
    np.testing.assert_allclose(np.diff(omega[steps]), np.diff(omega[steps])[0], rtol=1e-9)
    # Peak: max(c, w a).
    a = np.arange(n) / (n - 1)
    np.testing.assert_allclose(guidance_schedule("clamp-linear", w, n, c=c, normalize="peak"),
                               np.maximum(c, w * a), atol=1e-12)
    # A floor of 0 changes nothing.
    np.testing.assert_allclose(guidance_schedule("clamped-power-cosine", w, n, c=0.0, s=2.0),
                               guidance_schedule("power-cosine", w, n, s=2.0), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds guidance_scale"):
        guidance_schedule("clamp-linear", 1.0, n, c=2.0)


@given(
    kind=st.sampled_from(["linear", "cosine", "power-cosine"]),
    scale=st.floats(0.1, 20.0),
    n=st.integers(2, 200),
    s=st.floats(0.2, 5.0),
)
def test_increasing_schedules_are_monotone_and_scale_linearly(kind, scale, n, s):
    params = {"s": s} if kind == "power-cosine" else {}
    omega = guidance_schedule(kind, scale, n, **params)
    assert np.all(np.diff(omega) >= -1e-12)
    np.testing.assert_allclose(guidance_schedule(kind, 2 * scale, n, **params), 2 * omega,
                               rtol=1e-12, atol=1e-12)


@given(scale=st.floats(1.0, 20.0), c=st.floats(0.0, 1.0), n=st.integers(2, 300),
       kind=st.sampled_from(["clamp-linear", "clamped-power-cosine"]))
def test_clamped_mean_is_exact(scale, c, n, kind):
    omega = guidance_schedule(kind, scale, n, c=c)
    np.testing.assert_allclose(omega.mean(), scale, rtol=1e-10)
    assert omega.min() >= c - 1e-12


def test_schedule_bad_input():
    with pytest.raises(ValueError, match="kind"):
        guidance_schedule("exponential", 2.0, 10)
    with pytest.raises(ValueError, match="guidance_scale"):
        guidance_schedule("linear", -1.0, 10)
    with pytest.raises(ValueError, match="num_steps"):
        guidance_schedule("linear", 1.0, 0)
    with pytest.raises(TypeError, match="takes no parameters"):
        guidance_schedule("linear", 1.0, 10, s=2.0)
    with pytest.raises(ValueError, match="exponent"):
        guidance_schedule("power-cosine", 1.0, 10, s=0.0)
    with pytest.raises(ValueError, match="finite"):
        guidance_schedule("clamp-linear", 1.0, 10, c=float("nan"))
    with pytest.raises(ValueError, match="floor"):
        guidance_schedule("clamp-linear", 1.0, 10, c=-0.5)
    with pytest.raises(ValueError, match="normalize"):
        guidance_schedule("linear", 1.0, 10, normalize="area")


def test_guidance_schedule_callable():
    schedule = GuidanceSchedule("clamp-linear", 3.0, c=1.0)
    assert [schedule(i, 7) for i in range(7)] == list(guidance_schedule("clamp-linear", 3.0, 7,
                                                                          c=1.0))
    assert schedule.values(7) is schedule.values(7)  # cached
    with pytest.raises(ValueError):
        schedule.values(7)[0] = 1.0  # read-only
    with pytest.raises(ValueError, match="step_index"):
        schedule(7, 7)
    with pytest.raises(ValueError, match="num_steps"):
        schedule(0, 0)
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and hash(copy) == hash(schedule)
    assert repr(copy) == "GuidanceSchedule('clamp-linear', 3.0, c=1.0)"
    assert GuidanceSchedule("linear", 2.0, normalize="peak") != GuidanceSchedule("linear", 2.0)
    with pytest.raises(ValueError, match="kind"):
        GuidanceSchedule("nope", 1.0)


def test_cfg_combine_rule():
    uncond = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    cond = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    expected = torch.tensor([[2.5, 1.0], [-3.0, 9.0]])
    torch.testing.assert_close(cfg_combine(uncond, cond, 2.5), expected)
    torch.testing.assert_close(cfg_combine(uncond, cond, 0.0), uncond)
    torch.testing.assert_close(cfg_combine(uncond, cond, 1.0), cond)
    per_row = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    torch.testing.assert_close(cfg_combine(uncond, cond, per_row),
                               torch.stack([cond[0], uncond[1]]))
    with pytest.raises(ValueError, match="same shape"):
        cfg_combine(uncond, cond[:1], 2.0)
    with pytest.raises(ValueError, match="finite"):
        cfg_combine(uncond, cond, float("inf"))
    with pytest.raises(ValueError, match="NaN"):
        cfg_combine(uncond, cond, torch.tensor(float("nan")))
    with pytest.raises(TypeError, match="tensors"):
        cfg_combine(uncond.numpy(), cond, 2.0)
    with pytest.raises(TypeError, match="omega"):
        cfg_combine(uncond, cond, "2")


# ------------------------------------------------------------ noise schedule
def test_noise_schedule_closed_forms():
    abar = noise_schedule("linear", 1000).numpy()
    expected = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(abar, expected, rtol=0, atol=1e-15)
    assert abar[0] == pytest.approx(0.9999)

    # Cosine: the product of 1 - beta telescopes to f((t + 1) / T) / f(0) until the
    # cap on beta bites at the last step (where f(1) = 0).
    T = 1000
    f = np.cos((np.arange(T + 1) / T + 0.008) / 1.008 * np.pi / 2) ** 2
    cosine = noise_schedule("squaredcos_cap_v2", T).numpy()
    np.testing.assert_allclose(cosine[:-1], f[1:T] / f[0], rtol=1e-12)
    assert cosine[-1] == pytest.approx(cosine[-2] * (1 - 0.999), rel=1e-12)
    np.testing.assert_array_equal(noise_schedule("cosine", T).numpy(), cosine)

    scaled = noise_schedule("scaled_linear", 50, beta_start=0.00085, beta_end=0.012).numpy()
    expected = np.cumprod(1 - np.linspace(0.00085**0.5, 0.012**0.5, 50) ** 2)
    np.testing.assert_allclose(scaled, expected, rtol=1e-14)
    with pytest.raises(ValueError, match="beta_start"):
        noise_schedule("linear", 10, beta_start=0.1, beta_end=0.01)


@pytest.mark.requires("diffusers")
@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2", "scaled_linear"])
def test_noise_schedule_matches_diffusers(schedule):
    from diffusers import DDPMScheduler

    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=schedule).alphas_cumprod
    ours = noise_schedule(schedule, 1000)
    # diffusers works in float32: agreement to its rounding (about 3e-7).
    assert float((reference.double() - ours).abs().max()) < 1e-6


# -------------------------------------------------------------- loss weights
def test_loss_weights_on_hand_values():
    abar = torch.tensor([0.9, 0.5, 0.2, 0.01], dtype=torch.float64)
    t = torch.arange(4)
    snr = np.array([0.9 / 0.1, 1.0, 0.2 / 0.8, 0.01 / 0.99])
    debias = diffusion_loss_weights(t, abar, scheme="debias")
    np.testing.assert_allclose(debias.numpy(), 1 / np.sqrt(snr), rtol=1e-12)
    np.testing.assert_allclose(debias.numpy(), [1 / 3, 1, 2, math.sqrt(99)], rtol=1e-12)
    np.testing.assert_allclose(
        diffusion_loss_weights(t, abar, scheme="debias", prediction_type="v_prediction"),
        1 / np.sqrt(snr + 1), rtol=1e-12,
    )
    gamma = 2.0
    np.testing.assert_allclose(
        diffusion_loss_weights(t, abar, scheme="min_snr", snr_gamma=gamma),
        np.minimum(snr, gamma) / snr, rtol=1e-12,
    )
    np.testing.assert_allclose(
        diffusion_loss_weights(t, abar, scheme="min_snr", snr_gamma=gamma,
                               prediction_type="v_prediction"),
        np.minimum(snr, gamma) / (snr + 1), rtol=1e-12,
    )
    np.testing.assert_allclose(
        diffusion_loss_weights(t, abar, scheme="min_snr", snr_gamma=gamma,
                               prediction_type="sample"),
        np.minimum(snr, gamma), rtol=1e-12,
    )
    np.testing.assert_array_equal(diffusion_loss_weights(t, abar, scheme="constant"), np.ones(4))
    np.testing.assert_allclose(
        diffusion_loss_weights(t, abar, scheme="debias", clamp=2.5),
        [1 / 3, 1, 2, 2.5], rtol=1e-12,
    )


def test_debias_weight_reaches_about_157_on_the_linear_schedule():
    abar = noise_schedule("linear", 1000)
    weights = diffusion_loss_weights(torch.arange(1000), abar, scheme="debias")
    assert float(weights[-1]) == pytest.approx(157.4, abs=0.05)
    assert bool(torch.all(torch.diff(weights) > 0))


def test_debias_in_x0_units_is_the_same_objective():
    """w_eps |eps - eps_hat|^2 == w_x0 |x0 - x0_hat|^2 for the debias weights."""
    torch.manual_seed(0)
    abar_all = noise_schedule("linear", 1000)
    t = torch.randint(0, 1000, (64,))
    abar = abar_all[t].reshape(-1, 1)
    x0, eps, eps_hat = (torch.randn(64, 3, dtype=torch.float64) for _ in range(3))
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    x0_hat = (x_t - (1 - abar).sqrt() * eps_hat) / abar.sqrt()
    w_eps = diffusion_loss_weights(t, abar_all, scheme="debias")
    w_x0 = diffusion_loss_weights(t, abar_all, scheme="debias", prediction_type="sample")
    torch.testing.assert_close(w_eps * ((eps - eps_hat) ** 2).sum(1),
                               w_x0 * ((x0 - x0_hat) ** 2).sum(1))


def test_loss_weights_at_zero_and_full_snr():
    abar = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    t = torch.arange(3)
    eps = diffusion_loss_weights(t, abar, scheme="min_snr")
    np.testing.assert_allclose(eps, [0.0, 1.0, 1.0])
    v = diffusion_loss_weights(t, abar, scheme="min_snr", prediction_type="v_prediction")
    np.testing.assert_allclose(v, [0.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="clamp"):
        diffusion_loss_weights(t, abar, scheme="debias")
    np.testing.assert_allclose(diffusion_loss_weights(t, abar, scheme="debias", clamp=100.0),
                               [0.0, 1.0, 100.0])


def test_loss_weights_keep_shape_dtype_and_device():
    abar32 = noise_schedule("linear", 100).float()
    t = torch.randint(0, 100, (4, 5))
    weights = diffusion_loss_weights(t, abar32)
    assert weights.shape == (4, 5) and weights.dtype == torch.float32
    np.testing.assert_allclose(diffusion_loss_weights(t.numpy(), abar32.numpy()), weights,
                               rtol=1e-6)


def test_loss_weights_bad_input():
    abar = noise_schedule("linear", 10)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        diffusion_loss_weights(torch.tensor([10]), abar)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        diffusion_loss_weights(torch.tensor([-1]), abar)
    with pytest.raises(TypeError, match="integers"):
        diffusion_loss_weights(torch.tensor([0.5]), abar)
    with pytest.raises(ValueError, match="NaN"):
        diffusion_loss_weights(torch.tensor([0]), torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        diffusion_loss_weights(torch.tensor([0]), torch.tensor([1.5, 0.5]))
    with pytest.raises(ValueError, match="1-d"):
        diffusion_loss_weights(torch.tensor([0]), abar.reshape(2, 5))
    with pytest.raises(ValueError, match="scheme"):
        diffusion_loss_weights(torch.tensor([0]), abar, scheme="p2")
    with pytest.raises(ValueError, match="prediction_type"):
        diffusion_loss_weights(torch.tensor([0]), abar, prediction_type="score")
    with pytest.raises(ValueError, match="clamp"):
        diffusion_loss_weights(torch.tensor([0]), abar, clamp=0.0)


@pytest.mark.requires("diffusers")
def test_min_snr_matches_diffusers_train_script_formula():
    """diffusers' train_text_to_image.py: stack([snr, gamma]).min / snr (or snr + 1)."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import compute_snr

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    t = torch.arange(0, 1000, 7)
    snr = compute_snr(scheduler, t)
    base = torch.stack([snr, 5.0 * torch.ones_like(snr)], dim=1).min(dim=1)[0]
    for prediction_type, reference in (("epsilon", base / snr), ("v_prediction", base / (snr + 1))):
        ours = diffusion_loss_weights(t, scheduler.alphas_cumprod, scheme="min_snr",
                                      prediction_type=prediction_type, snr_gamma=5.0)
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=0)
    torch.testing.assert_close(diffusion_loss_weights(t, scheduler.alphas_cumprod),
                               1 / snr.sqrt(), rtol=1e-5, atol=0)


# ------------------------------------------------------------------ network
def test_denoiser_guided_forward_equals_two_passes():
    torch.manual_seed(0)
    for n_class_layers in (1, 2, 3):
        net = ConditionalDenoiser(3, 4, hidden_units=(16, 16, 16), n_class_layers=n_class_layers)
        for embedding in net.class_embeddings:  # zero at init; make labels matter
            torch.nn.init.normal_(embedding.weight)
        x, t, y = torch.randn(10, 3), torch.randint(0, 1000, (10,)), torch.randint(0, 4, (10,))
        uncond, cond = net.forward_guided(x, t, y)
        torch.testing.assert_close(uncond, net(x, t, torch.full((10,), 4)))
        torch.testing.assert_close(cond, net(x, t, y))
        assert not torch.allclose(uncond, cond)


def test_denoiser_bad_settings():
    with pytest.raises(ValueError, match="n_class_layers"):
        ConditionalDenoiser(2, 3, hidden_units=(8,), n_class_layers=2)
    with pytest.raises(ValueError, match="hidden_units"):
        ConditionalDenoiser(2, 3, hidden_units=())
    with pytest.raises(ValueError, match="activation"):
        ConditionalDenoiser(2, 3, activation="swish")
    with pytest.raises(ValueError, match="even"):
        ConditionalDenoiser(2, 3, time_embedding_dim=7)


# ---------------------------------------------------------------- estimator
def test_fit_sample_shapes_and_attributes(fitted):
    model, X, y = fitted
    assert model.n_classes_ == 3 and model.n_features_in_ == 2
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    np.testing.assert_allclose(model.mean_, X.mean(0))
    np.testing.assert_allclose(model.scale_, X.std(0))
    np.testing.assert_allclose(model.alphas_cumprod_, noise_schedule("linear", 1000).numpy())
    assert model.sample(7, y=1, random_state=0).shape == (7, 2)
    assert model.sample(3, y=[0, 1, 2], guidance=2.0, steps=5, random_state=0).shape == (3, 2)
    assert model.sample(4, random_state=0).shape == (4, 2)  # unconditional
    assert not hasattr(model, "predict") and not hasattr(model, "predict_proba")


def test_sampling_is_reproducible_and_leaves_the_global_rng(fitted):
    model = fitted[0]
    state = torch.random.get_rng_state()
    first = model.sample(20, y=0, guidance=3.0, steps=10, eta=1.0, random_state=3)
    np.testing.assert_array_equal(
        first, model.sample(20, y=0, guidance=3.0, steps=10, eta=1.0, random_state=3)
    )
    assert not np.array_equal(first, model.sample(20, y=0, guidance=3.0, steps=10, eta=1.0,
                                                  random_state=4))
    assert torch.equal(state, torch.random.get_rng_state())


def test_training_is_reproducible():
    X, y = _blobs()
    a = ConditionalDiffusion(**FAST).fit(X, y)
    b = ConditionalDiffusion(**FAST).fit(X, y)
    for pa, pb in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(a.history[:, "train_loss"], b.history[:, "train_loss"])


def test_constant_schedule_reproduces_plain_guidance_exactly(fitted):
    model = fitted[0]
    plain = model.sample(50, y=2, guidance=2.5, steps=20, random_state=1)
    for guidance in (GuidanceSchedule("constant", 2.5), np.full(20, 2.5),
                     lambda i, n: 2.5, guidance_schedule("constant", 2.5, 20)):
        np.testing.assert_array_equal(
            model.sample(50, y=2, guidance=guidance, steps=20, random_state=1), plain
        )


def test_batched_guidance_equals_separate_branches(fitted):
    """The one-pass two-branch forward gives the samples of two separate passes."""
    model = fitted[0]

    class TwoPasses(torch.nn.Module):  # the same network without forward_guided
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, t, y):
            return self.net(x, t, y)

    schedule = GuidanceSchedule("cosine", 3.0)
    batched = model.sample(40, y=[0, 1] * 20, guidance=schedule, steps=15, random_state=2)
    module = model.module_
    try:
        model.module_ = TwoPasses(module)
        stacked = model.sample(40, y=[0, 1] * 20, guidance=schedule, steps=15, random_state=2)
    finally:
        model.module_ = module
    np.testing.assert_allclose(batched, stacked, rtol=1e-5, atol=1e-5)


def _diffusers_loop(model, n, label, guidance, steps, seed, prediction_type="epsilon"):
    """Sample with diffusers' DDIMScheduler and our network (a diffusers-style loop)."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
        set_alpha_to_one=True, prediction_type=prediction_type,
    )
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(
        int(np.random.RandomState(seed).randint(np.iinfo(np.int32).max))
    )
    x = torch.randn(n, 2, generator=generator)
    labels = torch.full((n,), label)
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            uncond, cond = model.module_.forward_guided(x, torch.full((n,), int(t)), labels)
            output = cfg_combine(uncond, cond, guidance(i, steps))
            x = scheduler.step(output, t, x).prev_sample
    return x.double().numpy() * model.scale_ + model.mean_


@pytest.mark.requires("diffusers")
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_sampler_matches_diffusers_ddim(prediction_type):
    X, y = _blobs()
    model = ConditionalDiffusion(prediction_type=prediction_type, **FAST).fit(X, y)
    schedule = GuidanceSchedule("linear", 2.0)
    ours = model.sample(30, y=1, guidance=schedule, steps=25, random_state=5)
    reference = _diffusers_loop(model, 30, 1, schedule, 25, seed=5,
                                prediction_type=prediction_type)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


def test_unconditional_model():
    X, _ = _blobs()
    model = ConditionalDiffusion(**FAST).fit(X)
    assert model.n_classes_ == 0 and model.classes_.shape == (0,)
    assert model.sample(5, random_state=0).shape == (5, 2)
    with pytest.raises(ValueError, match="without labels"):
        model.sample(5, y=0)
    assert np.isfinite(model.score(X))


def test_sampling_bad_input(fitted):
    model = fitted[0]
    with pytest.raises(ValueError, match="not seen in fit"):
        model.sample(3, y=7)
    with pytest.raises(ValueError, match="3 labels for 4 rows"):
        model.sample(4, y=[0, 1, 2])
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0, y=0)
    with pytest.raises(ValueError, match="steps"):
        model.sample(3, y=0, steps=1001)
    with pytest.raises(ValueError, match="eta"):
        model.sample(3, y=0, eta=2.0)
    with pytest.raises(ValueError, match="one per step"):
        model.sample(3, y=0, guidance=[1.0, 2.0], steps=5)
    with pytest.raises(ValueError, match="NaN"):
        model.sample(3, y=0, guidance=float("nan"), steps=5)


def test_guidance_needs_the_unconditional_model():
    X, y = _blobs()
    model = ConditionalDiffusion(p_uncond=0.0, **FAST).fit(X, y)
    assert model.sample(3, y=0, guidance=1.0).shape == (3, 2)
    with pytest.raises(ValueError, match="p_uncond"):
        model.sample(3, y=0, guidance=2.0)
    with pytest.raises(ValueError, match="p_uncond"):
        model.sample(3)


def test_fit_bad_input():
    X, y = _blobs()
    with pytest.raises(ValueError, match="p_uncond"):
        ConditionalDiffusion(p_uncond=1.0).fit(X, y)
    with pytest.raises(ValueError, match="loss_weighting"):
        ConditionalDiffusion(loss_weighting="snr").fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        ConditionalDiffusion(**FAST).fit(X, X[:, 0])
    with pytest.raises(TypeError, match="array-like"):
        ConditionalDiffusion(**FAST).fit({"X": X}, y)
    with pytest.raises(ValueError, match="beta_start"):
        ConditionalDiffusion(beta_start=0.1, beta_end=0.01).fit(X, y)


def test_non_finite_training_loss_raises():
    X, y = _blobs()
    model = ConditionalDiffusion(standardize=False, prediction_type="sample", **FAST)
    with pytest.raises(ValueError, match="non-finite"), pytest.warns(UserWarning, match="scale"):
        model.fit(X * 1e25, y)


def test_training_loss_is_the_weighted_rule():
    """One batch, replaying the torch RNG: loss = mean_i w_i * c(t_i) * |f - target|^2."""
    X, y = _blobs(n=32)
    weights = np.linspace(0.5, 2.0, 32)
    model = ConditionalDiffusion(loss_weighting="debias", batch_size=32, p_uncond=0.25,
                                 module__hidden_units=(8,), max_epochs=1, random_state=0)
    model.initialize_callbacks = lambda: model  # keep the test to the loss itself
    Xs, labels = model._prepare_fit(X, y, weights, reset=True)
    model.initialize()
    batch = ({k: torch.as_tensor(v) for k, v in Xs.items()}, torch.as_tensor(labels))
    torch.manual_seed(11)
    loss, _ = model._denoising_loss(batch, training=True)

    torch.manual_seed(11)
    x0 = torch.as_tensor(Xs["X"])
    t = torch.randint(0, 1000, (32,))
    noise = torch.randn_like(x0)
    drop = torch.rand(32) < 0.25
    abar = noise_schedule("linear", 1000).float()[t].reshape(-1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    lab = torch.where(drop, torch.tensor(3), torch.as_tensor(labels))
    with torch.no_grad():
        err = ((model.module_(x_t, t, lab) - noise) ** 2).mean(1)
    c = diffusion_loss_weights(t, noise_schedule("linear", 1000), scheme="debias").float()
    w = torch.as_tensor(weights / weights.mean(), dtype=torch.float32)
    torch.testing.assert_close(loss.detach(), (w * c * err).mean())


def test_standardisation_and_sample_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)) * [1000.0, 0.01] + [5e4, -3.0]
    y = np.arange(60) % 2
    counts = rng.integers(1, 4, 60)
    weighted = ConditionalDiffusion(**FAST).fit(X, y, sample_weight=counts)
    repeated = ConditionalDiffusion(**FAST).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.mean_, np.average(X, axis=0, weights=counts))
    np.testing.assert_allclose(weighted.mean_, repeated.mean_)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_)
    # Training sees standardised rows; samples come back in the data's units.
    model = ConditionalDiffusion(**FAST).fit(X, y)
    Z = (X - model.mean_) / model.scale_
    unit = ConditionalDiffusion(standardize=False, **FAST).fit(Z, y)
    np.testing.assert_array_equal(unit.mean_, [0.0, 0.0])
    np.testing.assert_array_equal(unit.scale_, [1.0, 1.0])
    np.testing.assert_allclose(
        model.sample(20, y=1, guidance=2.0, steps=10, random_state=0),
        model.mean_ + model.scale_ * unit.sample(20, y=1, guidance=2.0, steps=10,
                                                  random_state=0),
        rtol=1e-4,
    )
    constant = ConditionalDiffusion(**FAST).fit(np.column_stack([X[:, 0], np.full(60, 7.0)]), y)
    assert constant.scale_[1] == 1.0 and constant.mean_[1] == 7.0


def test_score_samples_is_deterministic_and_row_local(fitted):
    model, X, y = fitted
    scores = model.score_samples(X, y)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(model.score_samples(X[order], y[order]), scores[order])
    np.testing.assert_allclose(model.score_samples(X[:5], y[:5]), scores[:5], rtol=1e-6)
    assert model.score(X, y) == pytest.approx(scores.mean())
    np.testing.assert_array_equal(model.evaluate_losses(X, y), -scores)
    # Rows far from the data are modelled worse.
    assert model.score(X + 20.0, y) < model.score(X, y)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("weighting", ["constant", "min_snr", "debias"])
def test_every_setting_trains(prediction_type, weighting):
    X, y = _blobs(n=60)
    model = ConditionalDiffusion(prediction_type=prediction_type, loss_weighting=weighting,
                                 loss_weight_clamp=50.0, **{**FAST, "max_epochs": 2})
    model.fit(X, y)
    assert np.all(np.isfinite(model.history[:, "train_loss"]))
    assert np.all(np.isfinite(model.sample(5, y=0, guidance=2.0, steps=5, random_state=0)))


def test_pandas_input_and_partial_fit():
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    frame = pd.DataFrame(X, columns=["income", "age"])
    labels = pd.Series(np.array(["a", "b", "c"])[y])
    model = ConditionalDiffusion(**FAST).fit(frame, labels)
    np.testing.assert_array_equal(model.feature_names_in_, ["income", "age"])
    np.testing.assert_array_equal(model.classes_, ["a", "b", "c"])
    assert model.sample(4, y="b", guidance=2.0, steps=5, random_state=0).shape == (4, 2)
    assert np.isfinite(model.score(frame, labels))
    with pytest.raises(ValueError, match="feature names"):
        model.score_samples(frame.rename(columns={"age": "height"}), labels)
    epochs = len(model.history)
    model.partial_fit(frame.iloc[:30], labels.iloc[:30])
    assert len(model.history) == epochs + FAST["max_epochs"]
    with pytest.raises(ValueError, match="not seen in fit"):
        model.partial_fit(frame.iloc[:3], ["a", "b", "z"])
    first = ConditionalDiffusion(**FAST).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    np.testing.assert_array_equal(first.classes_, [0, 1, 2])


def test_clone_and_pickle(fitted):
    model = fitted[0]
    clone(model)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.sample(5, y=1, guidance=2.0, steps=5, random_state=0),
                                  model.sample(5, y=1, guidance=2.0, steps=5, random_state=0))


def test_plain_torch_training_loop_with_the_weights():
    """The functions work in a hand-written loop with any network."""
    torch.manual_seed(0)
    X, y = _blobs()
    x0, labels = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    net = ConditionalDenoiser(2, 3, hidden_units=(32, 32))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    abar_all = noise_schedule("linear", 1000)
    weights = diffusion_loss_weights(torch.arange(1000), abar_all, scheme="min_snr").float()
    losses = []
    for _ in range(150):
        t = torch.randint(0, 1000, (len(x0),))
        noise = torch.randn_like(x0)
        abar = abar_all.float()[t].reshape(-1, 1)
        pred = net(abar.sqrt() * x0 + (1 - abar).sqrt() * noise, t, labels)
        loss = (weights[t] * ((pred - noise) ** 2).mean(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])


# ---------------------------------------------------------- slow experiments
@pytest.fixture(scope="module")
def experiments():
    from . import _diffusion_experiments as experiments

    return experiments


@pytest.mark.slow
def test_experiment_a_guidance_schedules(experiments):
    """Experiment A (user guide table): what holds in every seed."""
    table = experiments.experiment_a()
    by = table.set_index(["seed", "schedule", "omega"])
    for seed in experiments.SEEDS:
        unguided = by.loc[(seed, "none", 1.0)]
        for omega in experiments.GUIDANCE:
            constant = by.loc[(seed, "constant", omega)]
            # Guidance raises class adherence above the unguided model's.
            assert constant.adherence > unguided.adherence
            for kind in ("linear", "cosine"):
                increasing = by.loc[(seed, kind, omega)]
                # The adherence half of the paper's claim holds at equal mean weight ...
                assert increasing.adherence >= constant.adherence
                # ... the quality half does not: more collapse, larger MMD.
                assert increasing.mmd2 > constant.mmd2
        # Traded off instead: linear at mean 1.25 is as adherent as constant at
        # 2.0 with a smaller MMD, and clamp-linear at 1.25 beats constant at 1.5
        # on both.
        linear, constant2 = by.loc[(seed, "linear", 1.25)], by.loc[(seed, "constant", 2.0)]
        assert linear.adherence >= constant2.adherence and linear.mmd2 < constant2.mmd2
        clamped, constant15 = (by.loc[(seed, "clamp-linear", 1.25)],
                               by.loc[(seed, "constant", 1.5)])
        assert clamped.adherence > constant15.adherence and clamped.mmd2 < constant15.mmd2


@pytest.mark.slow
def test_experiment_b_debiased_weighting(experiments):
    """Experiment B (user guide table): what holds in every seed."""
    table = experiments.experiment_b().set_index(["seed", "weighting"])
    for seed in experiments.SEEDS:
        constant, debias = table.loc[(seed, "constant")], table.loc[(seed, "debias")]
        # Debiased weights reconstruct x0 better at the noisy end ...
        assert debias["600-799"] < constant["600-799"]
        assert debias["800-999"] < constant["800-999"]
        # ... and worse at the clean end; unguided samples are farther from the data.
        assert debias["0-199"] > constant["0-199"]
        assert debias["mmd2"] > constant["mmd2"]
