"""Fewer steps: the flow ODE solvers against analytic answers and torchdiffeq, DDIM and
DPM-Solver++ against the course's loop and diffusers' own loop."""

import math

import pytest
import torch

from engine.denoise import iterative_denoise
from engine.diffusers_samplers import fast_timesteps, make_scheduler, scheduler_sample
from engine.flow import SOLVERS, ode_sample, time_grid
from engine.guidance import CFGModel
from engine.samplers import check_sampler
from engine.schedule import spaced_timesteps, strided_timesteps

ORDER = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


# ----------------------------------------------------------------------------- flow ODE solvers


@pytest.mark.parametrize("method", list(SOLVERS))
def test_solvers_are_exact_on_a_constant_field(method):
    x_0 = torch.tensor([[[[0.25, -1.5], [2.0, 0.0]]]])
    c = torch.tensor([[[[0.5, 1.0], [-2.0, 0.125]]]])
    traj = ode_sample(lambda x, t, _: c.expand_as(x), x_0, time_grid(8), method=method)
    torch.testing.assert_close(traj.final, x_0 + c, rtol=0, atol=1e-6)
    assert traj.nfe == 8 * SOLVERS[method][1] and len(traj.times) == 9


@pytest.mark.parametrize("method", list(SOLVERS))
def test_solvers_converge_at_their_order(method):
    """dx/dt = cos(2 pi t) x + t has a known solution; doubling the steps divides the error by
    about 2 (Euler), 4 (midpoint, Heun) or 16 (RK4). In float64 so rounding stays out of it."""
    x_0 = torch.tensor([[[[1.0, -0.5]]]], dtype=torch.float64)
    w = 2 * math.pi

    def field(x, t, _):
        t = t.reshape(-1, 1, 1, 1).to(x.dtype)
        return torch.cos(w * t) * x + t

    # x(t) = e^{s(t)} (x_0 + int_0^t tau e^{-s(tau)} dtau), s(t) = sin(w t) / w; the integral by Simpson
    s = lambda t: math.sin(w * t) / w  # noqa: E731
    taus = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    g = taus * torch.exp(-torch.sin(w * taus) / w)
    integral = float((g[0] + g[-1] + 4 * g[1:-1:2].sum() + 2 * g[2:-1:2].sum()) / (3 * 200_000))
    exact = math.exp(s(1.0)) * (x_0 + integral)
    errors = [
        float((ode_sample(field, x_0, time_grid(n), method=method).final - exact).abs().max())
        for n in (32, 64, 128)
    ]
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    want = 2 ** ORDER[method]
    assert all(0.7 * want < r < 1.4 * want for r in ratios), (method, errors, ratios)


@pytest.mark.parametrize("method", ["midpoint", "rk4"])
def test_midpoint_and_rk4_match_torchdiffeq(method):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    gen = torch.Generator().manual_seed(0)
    x_0 = torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    a = torch.randn(1, 1, 4, 4, generator=gen, dtype=torch.float64)

    def field(x, t, _):
        return torch.tanh(a * x) + t.reshape(-1, 1, 1, 1).to(x.dtype) ** 2

    grid = torch.tensor([0.0, 0.1, 0.35, 0.5, 0.8, 1.0], dtype=torch.float64)  # uneven: a user-given grid
    ours = ode_sample(field, x_0, grid, method=method).final
    theirs = torchdiffeq.odeint(lambda t, x: field(x, t.expand(len(x)), None), x_0, grid, method=method)[-1]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_time_grid_checks():
    assert time_grid(4).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for bad in ([0.0, 0.5], [0.1, 1.0], [0.0, 0.6, 0.4, 1.0]):
        with pytest.raises(ValueError, match="time grid"):
            time_grid(ts=bad)
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
    with pytest.raises(ValueError, match="unknown ODE solver"):
        ode_sample(lambda x, t, c: x, torch.zeros(1, 1, 2, 2), time_grid(2), method="rk45")


def test_cfg_is_one_batched_call_per_evaluation():
    calls = []

    def model(x, t, c):
        calls.append(x.shape[0])
        return c[:, :1, None, None] * torch.ones_like(x)

    cond, null = torch.ones(2, 1), torch.zeros(1, 1)
    traj = ode_sample(
        CFGModel(model, null, 3.0), torch.zeros(2, 1, 2, 2), time_grid(2), cond=cond, method="rk4"
    )
    assert calls == [4] * 8 and traj.nfe == 8  # 2 steps x 4 stages, cond and null together
    torch.testing.assert_close(traj.final, torch.full((2, 1, 2, 2), 3.0))


# ----------------------------------------------------------------------------- DDIM and DPM-Solver++


def eps_model(x, t, cond=None):
    """A smooth stand-in for a UNet: a noise estimate that depends on x and t."""
    return 0.5 * torch.tanh(x) + 0.001 * t.float().reshape(-1, 1, 1, 1)


def test_ddim_eta_one_is_the_course_ddpm_step(schedule, make_gen):
    """DDIM with eta = 1 on the course's grid (990 -> 0 by 30) is the strided DDPM loop with its
    fixed posterior variance, draw for draw: the DDIM paper's claim, checked number for number."""
    x_T = torch.randn(2, 1, 6, 6, generator=make_gen(0))
    assert fast_timesteps(33) == strided_timesteps(30)[:-1]
    ddim = scheduler_sample(
        eps_model,
        x_T,
        fast_timesteps(33),
        schedule=schedule,
        eta=1.0,
        generator=make_gen(1),
        threshold=False,
        name="ddim",
    )
    course = iterative_denoise(
        eps_model, x_T, strided_timesteps(30), schedule=schedule, generator=make_gen(1)
    )
    torch.testing.assert_close(ddim.final, course.final, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ddim.x_hat[:-1], course.x_hat[:-1], rtol=1e-4, atol=1e-4)
    assert ddim.times == course.times and ddim.nfe == course.nfe == 33


def test_ddim_eta_zero_is_deterministic(schedule, make_gen):
    x_T = torch.randn(2, 1, 6, 6, generator=make_gen(0))
    a = scheduler_sample(
        eps_model, x_T, fast_timesteps(10), schedule=schedule, eta=0.0, generator=make_gen(1), name="ddim"
    )
    b = scheduler_sample(
        eps_model, x_T, fast_timesteps(10), schedule=schedule, eta=0.0, generator=make_gen(2), name="ddim"
    )
    c = scheduler_sample(
        eps_model, x_T, fast_timesteps(10), schedule=schedule, eta=1.0, generator=make_gen(1), name="ddim"
    )
    assert torch.equal(a.final, b.final) and not torch.allclose(a.final, c.final)
    assert a.times[0] == 990 and a.times[-1] == 0 and len(a.times) == 11 and a.nfe == 10


@pytest.mark.parametrize("name", ["ddim", "dpmpp-2m"])
def test_wrapper_matches_diffusers_own_loop(schedule, make_gen, name):
    """Our wrapper runs diffusers' scheduler exactly as diffusers' own loop does (set_timesteps,
    then step on each timestep), including DeepFloyd's [eps, v] output: DPM-Solver++ is given
    variance_type="learned_range" and the whole output, DDIM the eps half."""
    x_T = torch.randn(2, 3, 6, 6, generator=make_gen(0))

    def if_like(x, t, cond=None):
        return torch.cat([eps_model(x, t), torch.tanh(x) * 0.9], dim=1)

    ours = scheduler_sample(
        if_like, x_T, fast_timesteps(8), schedule=schedule, eta=0.0, generator=make_gen(1), name=name
    )
    sched = make_scheduler(name, schedule, fast_timesteps(8))
    assert sched.config.thresholding and sched.config.sample_max_value == 1.5  # like IF's scheduler
    extra = {"use_clipped_model_output": True} if name == "ddim" else {}
    if name == "dpmpp-2m":
        from diffusers import DPMSolverMultistepScheduler

        sched = DPMSolverMultistepScheduler.from_config(sched.config, variance_type="learned_range")
        sched.set_timesteps(timesteps=fast_timesteps(8))
    x = x_T.clone()
    for t in sched.timesteps:
        out = if_like(x, torch.full((2,), int(t)))
        eps = out if name == "dpmpp-2m" else out[:, :3]
        x = sched.step(eps, t, x, generator=make_gen(1), **extra).prev_sample
    torch.testing.assert_close(ours.final, x, rtol=1e-5, atol=1e-5)


def test_fast_grids_and_sampler_names():
    assert fast_timesteps(10) == [990, 890, 790, 690, 590, 490, 390, 290, 190, 90]
    assert spaced_timesteps(33) == strided_timesteps(30) and spaced_timesteps(10)[:3] == [990, 891, 792]
    for bad in (0, 101):
        with pytest.raises(ValueError, match="steps"):
            fast_timesteps(bad)
    check_sampler("ddpm", "dpmpp-2m")
    check_sampler("flow", "heun")
    with pytest.raises(ValueError, match="does not fit a ddpm model"):
        check_sampler("ddpm", "rk4")
    with pytest.raises(ValueError, match="does not fit a flow model"):
        check_sampler("flow", "ddim")
