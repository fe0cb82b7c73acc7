"""The cosine schedule, strided timesteps and the forward processes (Eq. A.2, B1.2, flow path)."""

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from engine.forward import add_noise_sigma, flow_path, forward, noise_coefficients
from engine.schedule import Schedule, append_dims, strided_timesteps

# ----------------------------------------------------------------------------- schedule


def test_alphas_cumprod_matches_independent_computation(schedule, abar_ref):
    ac = schedule.alphas_cumprod
    assert ac.dtype == torch.float64 and ac.shape == (1000,)
    np.testing.assert_allclose(ac.numpy(), abar_ref, rtol=1e-12, atol=0)


def test_alphas_cumprod_telescopes_to_the_cosine_curve(schedule):
    # Without the beta cap the product telescopes: abar_t = f((t + 1) / T) / f(0).
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 1, 10, 250, 500, 900, 990):
        assert schedule.alphas_cumprod[t].item() == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-10)


def test_alphas_cumprod_matches_diffusers(schedule):
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    # diffusers keeps float32; ours is float64
    np.testing.assert_allclose(schedule.alphas_cumprod.numpy(), ref.double().numpy(), rtol=5e-5, atol=1e-9)


def test_schedule_shape_of_the_curve(schedule):
    ac = schedule.alphas_cumprod
    assert torch.all(ac[1:] < ac[:-1]), "abar_t must decrease strictly"
    assert 0.9999 < ac[0] < 1 and 0 < ac[-1] < 1e-6
    assert torch.all((schedule.betas > 0) & (schedule.betas <= 0.999))
    np.testing.assert_allclose(torch.cumprod(1 - schedule.betas, 0).numpy(), ac.numpy(), rtol=1e-12)


def test_schedule_from_alphas_cumprod_validates():
    s = Schedule.from_alphas_cumprod([0.9, 0.5, 0.1])
    assert s.num_timesteps == 3 and s.alphas_cumprod.dtype == torch.float64
    for bad in ([0.5, 0.0], [1.5], [[0.5, 0.4]]):
        with pytest.raises(ValueError, match="alphas_cumprod"):
            Schedule.from_alphas_cumprod(bad)


def test_strided_timesteps_default():
    ts = strided_timesteps()
    assert ts == list(range(990, -1, -30))
    assert len(ts) == 34 and ts[0] == 990 and ts[-1] == 0
    assert all(a - b == 30 for a, b in pairwise(ts))


def test_strided_timesteps_always_end_at_zero():
    assert strided_timesteps(100, start=950) == [950, 850, 750, 650, 550, 450, 350, 250, 150, 50, 0]
    assert strided_timesteps(1, start=3) == [3, 2, 1, 0]
    assert strided_timesteps(30, start=0) == [0]


@pytest.mark.parametrize("kwargs", [{"stride": 0}, {"stride": -30}, {"start": 1000}, {"start": -1}])
def test_strided_timesteps_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="stride|start"):
        strided_timesteps(**kwargs)


def test_append_dims():
    assert append_dims(torch.tensor(2.0), 4).shape == (1, 1, 1, 1)
    assert append_dims(torch.ones(3), 4).shape == (3, 1, 1, 1)


@pytest.mark.parametrize("t", [1000, -1, [5, 1000]])
def test_abar_rejects_t_out_of_range(schedule, t):
    with pytest.raises(ValueError, match=r"t must be in \[0, 999\]"):
        noise_coefficients(torch.tensor(t), schedule, torch.zeros(2, 1, 2, 2))


# ----------------------------------------------------------------------------- forward (Eq. A.2)


def test_forward_is_eq_a2(schedule, abar_ref, make_gen):
    x = torch.rand(3, 1, 4, 4, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    for t in (0, 250, 999):
        expected = math.sqrt(abar_ref[t]) * x.double() + math.sqrt(1 - abar_ref[t]) * eps.double()
        out = forward(x, t, schedule, noise=eps)
        assert out.dtype == torch.float32 and out.shape == x.shape
        torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)


def test_forward_per_image_timesteps(schedule, abar_ref, make_gen):
    x = torch.rand(3, 2, 4, 4, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    t = torch.tensor([0, 500, 999])
    out = forward(x, t, schedule, noise=eps)
    for i, ti in enumerate(t.tolist()):
        expected = math.sqrt(abar_ref[ti]) * x[i] + math.sqrt(1 - abar_ref[ti]) * eps[i]
        torch.testing.assert_close(out[i], expected, rtol=1e-6, atol=1e-6)


def test_forward_t0_is_almost_clean_and_t999_almost_noise(schedule, make_gen):
    x = torch.rand(2, 1, 8, 8, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    assert (forward(x, 0, schedule, noise=eps) - x).abs().max() < 0.03
    assert (forward(x, 999, schedule, noise=eps) - eps).abs().max() < 1e-3


def test_forward_statistics_over_many_draws(schedule, abar_ref, make_gen):
    n = 20000
    pixels = torch.tensor([-1.0, -0.3, 0.0, 0.5, 1.0])
    x = pixels.reshape(1, 1, 1, 5).expand(n, 1, 1, 5).contiguous()
    for t in (50, 500, 900):
        samples = forward(x, t, schedule, generator=make_gen(t)).double()
        mean, var = samples.mean(0).flatten(), samples.var(0).flatten()
        a = abar_ref[t]
        # 6 standard errors: mean's SE = sqrt(var/n), variance's SE ~ var * sqrt(2/n)
        se_mean = math.sqrt((1 - a) / n)
        assert torch.allclose(mean, math.sqrt(a) * pixels.double(), atol=6 * se_mean)
        assert torch.allclose(var, torch.full_like(var, 1 - a), atol=6 * (1 - a) * math.sqrt(2 / n))


def test_forward_generator_makes_it_reproducible(schedule, make_gen):
    x = torch.rand(2, 1, 4, 4, generator=make_gen(0))
    a = forward(x, 300, schedule, generator=make_gen(7))
    b = forward(x, 300, schedule, generator=make_gen(7))
    c = forward(x, 300, schedule, generator=make_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the generator's draw is exactly the noise that forward uses
    eps = torch.randn(x.shape, generator=make_gen(7))
    torch.testing.assert_close(a, forward(x, 300, schedule, noise=eps))


@pytest.mark.parametrize("t", [0, 1, 30, 500, 990, 999])
def test_forward_matches_diffusers_add_noise(schedule, make_gen, t):
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    x = torch.rand(2, 3, 8, 8, generator=make_gen(0)) * 2 - 1
    eps = torch.randn(x.shape, generator=make_gen(1))
    theirs = ref.add_noise(x, eps, torch.tensor([t, t]))
    torch.testing.assert_close(forward(x, t, schedule, noise=eps), theirs, rtol=1e-5, atol=1e-5)


def test_forward_matches_diffusers_add_noise_batched_t(schedule, make_gen):
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    x = torch.rand(4, 1, 8, 8, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    t = torch.tensor([999, 600, 10, 0])
    torch.testing.assert_close(
        forward(x, t, schedule, noise=eps), ref.add_noise(x, eps, t), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("t", [1000, -1, 5000])
def test_forward_rejects_t_out_of_range(schedule, t):
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        forward(torch.zeros(1, 1, 4, 4), t, schedule)


def test_forward_rejects_noise_of_another_shape(schedule):
    with pytest.raises(ValueError, match="noise shape"):
        forward(torch.zeros(2, 1, 4, 4), 10, schedule, noise=torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("t", [torch.tensor([1, 2, 3]), torch.tensor([[1, 2]])])
def test_forward_rejects_timesteps_that_do_not_match_the_batch(schedule, t):
    # (3,) timesteps for 2 images, or 2-D timesteps, must not silently broadcast
    with pytest.raises(ValueError, match="timesteps"):
        forward(torch.zeros(2, 1, 4, 4), t, schedule)


def test_forward_one_timestep_for_a_batch_broadcasts(schedule, make_gen):
    x = torch.rand(3, 1, 4, 4, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    torch.testing.assert_close(
        forward(x, torch.tensor([400]), schedule, noise=eps), forward(x, 400, schedule, noise=eps)
    )


# ----------------------------------------------------------------------------- sigma noising (B1.2)


def test_add_noise_sigma(make_gen):
    x = torch.rand(2, 1, 4, 4, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    torch.testing.assert_close(add_noise_sigma(x, 0.5, noise=eps), x + 0.5 * eps)
    assert torch.equal(add_noise_sigma(x, 0.0, generator=make_gen(2)), x)
    torch.testing.assert_close(add_noise_sigma(x, 0.8, generator=make_gen(1)), x + 0.8 * eps)


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf")])
def test_add_noise_sigma_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        add_noise_sigma(torch.zeros(1, 1, 4, 4), sigma)


def test_add_noise_sigma_rejects_noise_of_another_shape():
    with pytest.raises(ValueError, match="noise shape"):
        add_noise_sigma(torch.zeros(2, 1, 4, 4), 0.5, noise=torch.zeros(1, 1, 4, 4))


# ----------------------------------------------------------------------------- flow path (B2)


def test_flow_path_endpoints_and_midpoint(make_gen):
    noise = torch.randn(3, 1, 4, 4, generator=make_gen(0))
    data = torch.rand(3, 1, 4, 4, generator=make_gen(1))
    assert torch.equal(flow_path(noise, data, 0.0), noise)  # t = 0 is noise
    assert torch.equal(flow_path(noise, data, 1.0), data)  # t = 1 is data
    torch.testing.assert_close(flow_path(noise, data, 0.25), 0.75 * noise + 0.25 * data)
    t = torch.tensor([0.0, 0.5, 1.0])
    out = flow_path(noise, data, t)
    assert torch.equal(out[0], noise[0]) and torch.equal(out[2], data[2])
    torch.testing.assert_close(out[1], (noise[1] + data[1]) / 2)


@pytest.mark.parametrize("t", [-0.1, 1.5, float("nan"), [0.5, 2.0]])
def test_flow_path_rejects_t_outside_unit_interval(t):
    n = 1 if isinstance(t, float) else len(t)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1\]"):
        flow_path(torch.zeros(n, 1, 2, 2), torch.zeros(n, 1, 2, 2), torch.tensor(t))


def test_flow_path_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        flow_path(torch.zeros(1, 1, 2, 2), torch.zeros(2, 1, 2, 2), 0.5)
