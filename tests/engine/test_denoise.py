"""Denoising: blur baseline, one-step (Eq. A.1), the DDPM step and loop (Eq. A.3), parity with
diffusers' DDPMScheduler, and input checks."""

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from torch.nn import functional as F

from engine.denoise import (
    best_blur_sigma,
    ddpm_step,
    gaussian_blur,
    iterative_denoise,
    one_step_denoise,
    posterior_variance,
    predict_x0,
    split_output,
)
from engine.editing import sdedit
from engine.metrics import psnr
from engine.schedule import strided_timesteps

TS = strided_timesteps()  # 990, 960, ..., 0


def linear_eps(x, t, cond=None):
    """A deterministic fake model, linear in x_t and t."""
    return 0.1 * x + 0.001 * (t.float() / 1000).reshape(-1, 1, 1, 1)


def reference_loop(eps_fn, x, timesteps, abar, noises=None, after_step=None):
    """Eq. A.3, hand-written in float64 numpy: returns every x (x[0] is the input)."""
    xs = [np.asarray(x, dtype=np.float64)]
    for k, (t, tp) in enumerate(pairwise(timesteps)):
        x_t = xs[-1]
        a_t, a_p = abar[t], abar[tp]
        alpha = a_t / a_p
        beta = 1 - alpha
        eps = eps_fn(x_t, t)
        x0 = (x_t - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        x_next = math.sqrt(a_p) * beta / (1 - a_t) * x0 + math.sqrt(alpha) * (1 - a_p) / (1 - a_t) * x_t
        if noises is not None:
            x_next = x_next + math.sqrt((1 - a_p) / (1 - a_t) * beta) * noises[k]
        if after_step is not None:
            x_next = after_step(x_next, tp)
        xs.append(x_next)
    return xs


def np_linear_eps(x, t):
    return 0.1 * x + 0.001 * t / 1000


def draws(gen, shape, n):
    return [torch.randn(shape, generator=gen).double().numpy() for _ in range(n)]


def assert_close_np(actual: torch.Tensor, expected: np.ndarray, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(actual.double().numpy(), expected, rtol=rtol, atol=atol)


def ddpm_scheduler(variance_type="fixed_small", timesteps=TS):
    s = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=False,
        variance_type=variance_type,
    )
    s.set_timesteps(timesteps=list(timesteps))
    return s


# ----------------------------------------------------------------------------- one step (Eq. A.1)


@pytest.mark.parametrize("t", [0, 1, 250, 500, 750, 990, 999])
def test_predict_x0_with_the_true_noise_recovers_x0(schedule, make_gen, t):
    x0 = torch.rand(2, 1, 8, 8, generator=make_gen(0)) * 2 - 1
    eps = torch.randn(x0.shape, generator=make_gen(1))
    a = schedule.alphas_cumprod[t].item()
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps  # Eq. A.2 written out
    # float32 error is amplified by 1 / sqrt(abar_t), ~ 1e4 at t = 999
    tol = 1e-5 / math.sqrt(a)
    torch.testing.assert_close(predict_x0(x_t, eps, t, schedule), x0, rtol=0, atol=tol)


def test_one_step_denoise_with_an_oracle_model(schedule, make_gen):
    x0 = torch.rand(3, 1, 8, 8, generator=make_gen(0))
    eps = torch.randn(x0.shape, generator=make_gen(1))
    seen = {}

    def oracle(x_t, t, cond):
        seen.update(t=t, cond=cond)
        return eps

    a = schedule.alphas_cumprod[600].item()
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    out = one_step_denoise(oracle, x_t, 600, schedule, cond="c")
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-5)
    assert seen["t"].dtype == torch.long and seen["t"].tolist() == [600, 600, 600]
    assert seen["cond"] == "c"


def test_one_step_denoise_uses_only_eps_of_a_variance_head(schedule, make_gen):
    x_t = torch.randn(2, 3, 4, 4, generator=make_gen(0))
    eps = torch.randn(x_t.shape, generator=make_gen(1))
    with_var = one_step_denoise(lambda x, t, c: torch.cat([eps, torch.ones_like(eps)], 1), x_t, 300, schedule)
    torch.testing.assert_close(with_var, one_step_denoise(lambda x, t, c: eps, x_t, 300, schedule))


@pytest.mark.parametrize("t", [1000, -1])
def test_one_step_denoise_rejects_t_out_of_range(schedule, t):
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        one_step_denoise(lambda x, t, c: x, torch.zeros(1, 1, 4, 4), t, schedule)


def test_split_output():
    x = torch.zeros(2, 3, 4, 4)
    eps, v = split_output(torch.arange(2 * 6 * 16.0).reshape(2, 6, 4, 4), 3)
    assert eps.shape == v.shape == x.shape and v[0, 0, 0, 0] == 48
    assert split_output(x, 3)[1] is None
    with pytest.raises(ValueError, match="5 channels for a 3-channel image"):
        split_output(torch.zeros(2, 5, 4, 4), 3)


# ----------------------------------------------------------------------------- DDPM step


@pytest.mark.parametrize("t,t_prev", [(990, 960), (510, 480), (30, 0), (999, 998), (1, 0)])
def test_ddpm_step_without_noise_is_eq_a3(schedule, abar_ref, make_gen, t, t_prev):
    x_t = torch.randn(2, 1, 4, 4, generator=make_gen(0))
    eps = torch.randn(x_t.shape, generator=make_gen(1))
    x_prev, x0_hat = ddpm_step(x_t, eps, t, t_prev, schedule, None)
    expected = reference_loop(lambda x, _: eps.double().numpy(), x_t.numpy(), [t, t_prev], abar_ref)[1]
    assert_close_np(x_prev, expected, rtol=1e-5, atol=1e-5)
    a = abar_ref[t]
    assert_close_np(
        x0_hat,
        (x_t.double().numpy() - math.sqrt(1 - a) * eps.double().numpy()) / math.sqrt(a),
        rtol=1e-5,
        atol=1e-4,
    )


def test_posterior_variance_fixed_and_learned(schedule, abar_ref):
    for t, tp in [(990, 960), (30, 0), (500, 499)]:
        beta = 1 - abar_ref[t] / abar_ref[tp]
        fixed = (1 - abar_ref[tp]) / (1 - abar_ref[t]) * beta
        assert posterior_variance(t, tp, schedule).item() == pytest.approx(fixed, rel=1e-10)
        # learned_range: v = -1 gives the fixed (small) variance, v = +1 gives beta_t
        v = torch.tensor([[-1.0, 1.0, 0.0]])
        out = posterior_variance(t, tp, schedule, predicted=v)
        np.testing.assert_allclose(out.double().numpy()[0], [fixed, beta, math.sqrt(fixed * beta)], rtol=1e-5)


@pytest.mark.parametrize("t,t_prev", [(990, 960), (300, 270), (30, 0)])
def test_ddpm_step_matches_diffusers_fixed_small(schedule, make_gen, t, t_prev):
    ref = ddpm_scheduler("fixed_small", [t, t_prev])
    x_t = torch.randn(2, 3, 8, 8, generator=make_gen(0))
    eps = torch.randn(x_t.shape, generator=make_gen(1))
    theirs = ref.step(eps, t, x_t, generator=make_gen(2))
    noise = torch.randn(x_t.shape, generator=make_gen(2))
    ours, x0_hat = ddpm_step(x_t, eps, t, t_prev, schedule, noise)
    torch.testing.assert_close(ours, theirs.prev_sample, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x0_hat, theirs.pred_original_sample, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t,t_prev", [(990, 960), (300, 270), (30, 0)])
def test_ddpm_step_matches_diffusers_learned_range(schedule, make_gen, t, t_prev):
    ref = ddpm_scheduler("learned_range", [t, t_prev])
    x_t = torch.randn(2, 3, 8, 8, generator=make_gen(0))
    out = torch.randn(2, 6, 8, 8, generator=make_gen(1))
    out[:, 3:] = out[:, 3:].tanh()  # v in [-1, 1]
    theirs = ref.step(out, t, x_t, generator=make_gen(2))
    eps, v = split_output(out, 3)
    noise = torch.randn(x_t.shape, generator=make_gen(2))
    ours, _ = ddpm_step(x_t, eps, t, t_prev, schedule, noise, v)
    torch.testing.assert_close(ours, theirs.prev_sample, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "t,t_prev,match",
    [
        (1000, 990, r"\[0, 999\]"),
        (-1, 0, r"\[0, 999\]"),
        (30, 30, "t_prev"),
        (30, 60, "t_prev"),
        (30, -5, "t_prev"),
    ],
)
def test_ddpm_step_rejects_bad_timesteps(schedule, t, t_prev, match):
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match=match):
        ddpm_step(x, x, t, t_prev, schedule, None)


def test_ddpm_step_rejects_eps_of_another_shape(schedule):
    with pytest.raises(ValueError, match="shape"):
        ddpm_step(torch.zeros(2, 1, 4, 4), torch.zeros(1, 1, 4, 4), 30, 0, schedule, None)


# ----------------------------------------------------------------------------- the loop


def test_iterative_denoise_deterministic_matches_hand_written_loop(schedule, abar_ref, make_gen):
    x = torch.randn(2, 1, 6, 6, generator=make_gen(0))
    traj = iterative_denoise(linear_eps, x, TS, schedule=schedule, add_variance=False)
    expected = reference_loop(np_linear_eps, x.numpy(), TS, abar_ref)
    assert list(traj.times) == TS and len(traj.x) == 34 and len(traj.x_hat) == 34 and traj.nfe == 33
    assert traj.value_range == (-1.0, 1.0) and torch.equal(traj.x_hat[-1], traj.final)
    for got, want in zip(traj.x, expected, strict=True):
        assert_close_np(got, want, rtol=1e-4, atol=1e-5)
    assert torch.isfinite(traj.x).all() and torch.isfinite(traj.x_hat).all()


def test_iterative_denoise_with_variance_matches_hand_written_loop(schedule, abar_ref, make_gen):
    x = torch.randn(2, 1, 6, 6, generator=make_gen(0))
    ts = strided_timesteps(100, start=900)  # 900, 800, ..., 0
    traj = iterative_denoise(linear_eps, x, ts, schedule=schedule, generator=make_gen(5))
    noises = draws(make_gen(5), x.shape, len(ts) - 1)  # one draw per step, in order
    expected = reference_loop(np_linear_eps, x.numpy(), ts, abar_ref, noises)
    for got, want in zip(traj.x, expected, strict=True):
        assert_close_np(got, want, rtol=1e-4, atol=1e-5)
    assert torch.isfinite(traj.final).all()


def test_iterative_denoise_from_i_start(schedule, abar_ref, make_gen):
    x = torch.randn(1, 1, 4, 4, generator=make_gen(0))
    calls = []
    traj = iterative_denoise(
        linear_eps,
        x,
        TS[30:],
        schedule=schedule,
        generator=make_gen(1),
        callback=lambda step: calls.append(((step.i, step.n, step.t), step.x.clone())),
    )
    assert traj.times == (90, 60, 30, 0) and traj.nfe == 3
    assert [i for i, _ in calls] == [(0, 3, 60), (1, 3, 30), (2, 3, 0)]
    for (_, x_i), x_traj in zip(calls, traj.x[1:], strict=True):
        assert torch.equal(x_i, x_traj)
    expected = reference_loop(np_linear_eps, x.numpy(), TS[30:], abar_ref, draws(make_gen(1), x.shape, 3))
    assert_close_np(traj.final, expected[-1], rtol=1e-4, atol=1e-5)


def test_iterative_denoise_oracle_recovers_the_image(schedule, make_gen):
    """A model that knows the answer, eps = (x_t - sqrt(abar) x*) / sqrt(1 - abar), leads back to x*."""
    target = torch.rand(1, 1, 8, 8, generator=make_gen(0)) * 2 - 1
    ac = schedule.alphas_cumprod.float()

    def oracle(x_t, t, cond):
        a = ac[t].reshape(-1, 1, 1, 1)
        return (x_t - a.sqrt() * target) / (1 - a).sqrt()

    traj = iterative_denoise(
        oracle, torch.randn(1, 1, 8, 8, generator=make_gen(1)), TS, schedule=schedule, generator=make_gen(2)
    )
    for x0_hat in traj.x_hat[:-1]:  # the estimates the steps made
        torch.testing.assert_close(x0_hat, target, rtol=0, atol=1e-3)
    assert (traj.final - target).abs().max() < 0.05  # the last step still adds sqrt(var_30) noise


def test_iterative_denoise_is_reproducible_and_does_not_touch_global_rng(schedule, make_gen):
    x = torch.randn(1, 1, 4, 4, generator=make_gen(0))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = iterative_denoise(linear_eps, x, TS[20:], schedule=schedule, generator=make_gen(3)).final
    after = torch.rand(1)
    b = iterative_denoise(linear_eps, x, TS[20:], schedule=schedule, generator=make_gen(3)).final
    c = iterative_denoise(linear_eps, x, TS[20:], schedule=schedule, generator=make_gen(4)).final
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(before, after), "the loop must draw from its generator, not the global RNG"


def test_iterative_denoise_after_step_rewrites_x(schedule, make_gen):
    seen_t, seen_x = [], []

    def model(x, t, c):
        seen_x.append(x.clone())
        return torch.zeros_like(x)

    def after_step(x, t):
        seen_t.append(t)
        return torch.full_like(x, float(t))

    ts = [90, 60, 30, 0]
    traj = iterative_denoise(
        model, torch.ones(1, 1, 2, 2), ts, schedule=schedule, add_variance=False, after_step=after_step
    )
    assert seen_t == [60, 30, 0]
    assert [float(x[0, 0, 0, 0]) for x in traj.x] == [1.0, 60.0, 30.0, 0.0]
    assert [float(x[0, 0, 0, 0]) for x in seen_x] == [1.0, 60.0, 30.0]  # the model sees the rewrite


def test_iterative_denoise_matches_diffusers_fixed_small(schedule, make_gen):
    ref = ddpm_scheduler("fixed_small")
    x = torch.randn(2, 3, 8, 8, generator=make_gen(0))
    ours = iterative_denoise(linear_eps, x, TS, schedule=schedule, generator=make_gen(1))
    gen = make_gen(1)
    theirs = x.clone()
    for k, t in enumerate(TS[:-1]):  # diffusers' last entry (t = 0 -> -1) is past our loop
        step = ref.step(linear_eps(theirs, torch.full((2,), t)), t, theirs, generator=gen)
        theirs = step.prev_sample
        torch.testing.assert_close(ours.x_hat[k], step.pred_original_sample, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.x[k + 1], theirs, rtol=1e-4, atol=1e-4)


def test_iterative_denoise_matches_diffusers_learned_range(schedule, make_gen):
    """DeepFloyd-style [eps, v] output of 2C channels, split as diffusers splits it."""
    ref = ddpm_scheduler("learned_range")

    def model(x, t, cond):
        return torch.cat([linear_eps(x, t), torch.tanh(x) * 0.9], dim=1)

    x = torch.randn(2, 3, 8, 8, generator=make_gen(0))
    ours = iterative_denoise(model, x, TS, schedule=schedule, generator=make_gen(1))
    gen = make_gen(1)
    theirs = x.clone()
    for t in TS[:-1]:
        theirs = ref.step(model(theirs, torch.full((2,), t), None), t, theirs, generator=gen).prev_sample
    torch.testing.assert_close(ours.final, theirs, rtol=1e-4, atol=1e-4)
    # a learned variance really changes the result
    fixed = iterative_denoise(
        lambda x, t, c: linear_eps(x, t), x, TS, schedule=schedule, generator=make_gen(1)
    )
    assert not torch.allclose(fixed.final, ours.final, atol=1e-3)


def test_sampling_from_noise_matches_hand_written_loop(schedule, abar_ref, make_gen):
    ts = [990, 660, 330, 0]
    g = make_gen(9)
    traj = iterative_denoise(
        linear_eps, torch.randn(2, 1, 4, 4, generator=g), ts, schedule=schedule, generator=g
    )
    gen = make_gen(9)
    start, *noises = draws(gen, (2, 1, 4, 4), len(ts))  # the start noise, then one draw per step
    expected = reference_loop(np_linear_eps, start, ts, abar_ref, noises)
    assert_close_np(traj.x[0], start, rtol=0, atol=0)
    assert_close_np(traj.final, expected[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("i_start", [99, 33, -1])
def test_sdedit_rejects_i_start_past_the_end(schedule, i_start):
    with pytest.raises(ValueError, match=r"i_start must be in \[0, 32\]"):
        sdedit(linear_eps, torch.zeros(1, 1, 4, 4), i_start, TS, schedule)


def test_iterative_denoise_needs_one_step(schedule):
    with pytest.raises(ValueError, match="at least two timesteps"):
        iterative_denoise(linear_eps, torch.zeros(1, 1, 4, 4), TS[-1:], schedule=schedule)


@pytest.mark.parametrize(
    "ts,match",
    [
        ([1000, 500, 0], r"\[0, 999\]"),
        ([500, 500, 0], "decreasing"),
        ([0, 30], "decreasing"),
        ([30, 0, -1], r"\[0, 999\]"),
    ],
)
def test_iterative_denoise_rejects_bad_timesteps(schedule, ts, match):
    with pytest.raises(ValueError, match=match):
        iterative_denoise(linear_eps, torch.zeros(1, 1, 4, 4), ts, schedule=schedule)


def test_iterative_denoise_rejects_images_that_are_not_4d(schedule):
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        iterative_denoise(linear_eps, torch.zeros(1, 4, 4), TS, schedule=schedule)


def test_iterative_denoise_rejects_a_model_with_the_wrong_channels(schedule):
    with pytest.raises(ValueError, match="channels"):
        iterative_denoise(
            lambda x, t, c: torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), TS, schedule=schedule
        )


# ----------------------------------------------------------------------------- blur baseline


def reference_blur(x: torch.Tensor, k: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian, reflect padding, written out with conv2d."""
    r = torch.arange(k, dtype=torch.float64) - k // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = (g / g.sum()).float()
    c = x.shape[1]
    y = F.pad(x, (k // 2,) * 4, mode="reflect")
    y = F.conv2d(y, g.reshape(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, g.reshape(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


@pytest.mark.parametrize("k,sigma", [(5, 2.0), (3, 0.5), (9, 1.3)])
def test_gaussian_blur_matches_a_written_out_kernel(make_gen, k, sigma):
    x = torch.rand(2, 3, 12, 12, generator=make_gen(0))
    torch.testing.assert_close(gaussian_blur(x, k, sigma), reference_blur(x, k, sigma), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 12, 12), (1, 16, 16), (2, 2, 1, 9, 9)])
def test_gaussian_blur_is_torchvisions(make_gen, shape):
    """The blur is torchvision's, written out (no torchvision import in the server): the same
    numbers for batches, single images and extra leading dimensions."""
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(shape, generator=make_gen(1))
    for k, sigma in [(5, 2.0), (3, 0.5), (9, 1.3)]:
        torch.testing.assert_close(gaussian_blur(x, k, sigma), TF.gaussian_blur(x, [k, k], [sigma, sigma]),
                                   rtol=0, atol=1e-6)


def test_gaussian_blur_keeps_constants():
    x = torch.full((1, 1, 8, 8), 0.3)
    torch.testing.assert_close(gaussian_blur(x, 5, 2.0), x)


@pytest.mark.parametrize(
    "k,sigma,match",
    [(4, 1.0, "odd"), (0, 1.0, "odd"), (5, 0.0, "sigma"), (5, -1.0, "sigma"), (5, float("nan"), "sigma")],
)
def test_gaussian_blur_rejects_bad_arguments(k, sigma, match):
    with pytest.raises(ValueError, match=match):
        gaussian_blur(torch.zeros(1, 1, 8, 8), k, sigma)


def test_best_blur_sigma_prefers_most_blur_for_a_flat_image(make_gen):
    clean = torch.full((4, 1, 28, 28), 0.5)
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=make_gen(0))
    sigma, score = best_blur_sigma(noisy, clean, sigmas=(0.5, 1.0, 2.0))
    assert sigma == 2.0
    assert score == pytest.approx(psnr(gaussian_blur(noisy, 13, 2.0).clamp(-1, 1), clean), rel=1e-6)
    assert score > psnr(noisy, clean) + 5
