"""The sampler contract (engine/trajectory.py): one result type and one callback for every loop,
and the losses that sit beside the forward processes (engine/forward.py)."""

import numpy as np
import pytest
import torch

from engine.denoise import iterative_denoise
from engine.flow import euler_sample, time_grid
from engine.forward import denoiser_loss, eps_loss, forward
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory, to_unit


def _runs(make_gen):
    """A DDPM run and a flow run of 3 steps on 2 images, with their callbacks' steps."""
    seen = {"ddpm": [], "flow": []}
    x = torch.randn(2, 1, 4, 4, generator=make_gen(0))
    ddpm = iterative_denoise(
        lambda x, t, c: 0.1 * x, x, [90, 60, 30, 0], generator=make_gen(1), callback=seen["ddpm"].append
    )
    flow = euler_sample(lambda x, t, c: 1 - x, x, time_grid(3), callback=seen["flow"].append)
    return ddpm, flow, seen


def test_every_sampler_returns_the_same_shape_of_result(make_gen):
    ddpm, flow, seen = _runs(make_gen)
    for traj, times, value_range in (
        (ddpm, (90, 60, 30, 0), (-1.0, 1.0)),
        (flow, (0.0, 1 / 3, 2 / 3, 1.0), (0.0, 1.0)),
    ):
        assert isinstance(traj, Trajectory) and traj.nfe == 3 and traj.value_range == value_range
        assert traj.x.shape == traj.x_hat.shape == (4, 2, 1, 4, 4)
        assert traj.times == pytest.approx(times)
        assert torch.equal(traj.x_hat[-1], traj.final)  # the sample is its own estimate
    for kind, steps in seen.items():
        traj = ddpm if kind == "ddpm" else flow
        assert [(s.i, s.n) for s in steps] == [(0, 3), (1, 3), (2, 3)]
        for k, s in enumerate(steps):  # the callback sees what the result records
            assert torch.equal(s.x, traj.x[k + 1]) and torch.equal(s.x_hat, traj.x_hat[k])
            assert s.t == pytest.approx(traj.times[k + 1])


def test_to_unit_take_and_subsample(make_gen):
    ddpm, _, _ = _runs(make_gen)
    unit = ddpm.to_unit()
    assert isinstance(unit.x, np.ndarray) and unit.x.dtype == np.float32 and unit.value_range == (0.0, 1.0)
    np.testing.assert_allclose(unit.x, np.clip((ddpm.x.numpy() + 1) / 2, 0, 1))
    assert unit.x.min() >= 0 and unit.x.max() <= 1
    picked = unit.take([0, 3])
    assert picked.times == (90, 0) and np.array_equal(picked.x[1], unit.x[3])
    assert picked.nfe == 3  # the run's cost, whatever is kept for display
    assert unit.subsample(2).times == (90, 0) and unit.subsample(10).times == unit.times
    np.testing.assert_array_equal(to_unit(np.array([0.0, 0.5, 2.0]), (0.0, 1.0)), [0.0, 0.5, 1.0])


def test_a_run_without_record_keeps_only_the_sample(make_gen):
    x = torch.randn(2, 1, 4, 4, generator=make_gen(0))
    full = iterative_denoise(lambda x, t, c: 0.1 * x, x, strided_timesteps(330), generator=make_gen(1))
    last = iterative_denoise(
        lambda x, t, c: 0.1 * x, x, strided_timesteps(330), generator=make_gen(1), record=False
    )
    assert last.x.shape == (1, 2, 1, 4, 4) and last.times == (0,) and last.nfe == full.nfe
    assert torch.equal(last.final, full.final)


def test_denoiser_loss_b1(make_gen):
    x = torch.rand(3, 1, 4, 4, generator=make_gen(0))
    eps = torch.randn(x.shape, generator=make_gen(1))
    seen = []
    perfect = lambda z: seen.append(z) or x  # noqa: E731
    assert denoiser_loss(perfect, x, eps, 0.5).item() == 0.0
    torch.testing.assert_close(seen[-1], x + 0.5 * eps)  # z = x + sigma eps
    assert denoiser_loss(perfect, x, eps, 0.5, pure_noise=True).item() == 0.0
    assert torch.equal(seen[-1], eps)  # pure noise: z = eps
    zero = lambda z: torch.zeros_like(z)  # noqa: E731
    assert denoiser_loss(zero, x, eps, 0.5).item() == pytest.approx((x**2).mean().item())


def test_eps_loss_is_ddpm_training(schedule, make_gen):
    x_0 = torch.rand(3, 1, 4, 4, generator=make_gen(0)) * 2 - 1
    eps = torch.randn(x_0.shape, generator=make_gen(1))
    t = torch.tensor([10, 500, 990])
    seen = {}

    def oracle(x_t, tt, cond):
        seen["x_t"], seen["t"], seen["cond"] = x_t, tt, cond
        return eps

    assert eps_loss(oracle, x_0, t, eps, schedule, cond="c").item() == 0.0
    torch.testing.assert_close(seen["x_t"], forward(x_0, t, schedule, noise=eps))
    assert torch.equal(seen["t"], t) and seen["cond"] == "c"
    loss = eps_loss(lambda x_t, tt, c: torch.zeros_like(x_t), x_0, t, eps, schedule)
    assert loss.item() == pytest.approx((eps**2).mean().item())
