"""Flow matching (Part B2): the loss and the Euler sampler, against analytic answers."""

import pytest
import torch

from engine.flow import euler_sample, flow_matching_loss, time_grid
from engine.guidance import CFGModel


def final(model, x, num_ts: int, cond=None, **kwargs) -> torch.Tensor:
    """The course's sampler: ``num_ts`` Euler steps on the uniform grid."""
    return euler_sample(model, x, time_grid(num_ts), cond=cond, **kwargs).final


def test_flow_matching_loss_is_zero_for_the_true_velocity(make_gen):
    x_1 = torch.rand(4, 1, 6, 6, generator=make_gen(0))
    noise = torch.randn(x_1.shape, generator=make_gen(1))
    t = torch.rand(4, generator=make_gen(2))
    seen = {}

    def perfect(x_t, tt):
        seen["x_t"], seen["t"] = x_t, tt
        return x_1 - noise

    assert flow_matching_loss(perfect, x_1, noise, t).item() == pytest.approx(0.0, abs=1e-12)
    expected_x_t = (1 - t.reshape(-1, 1, 1, 1)) * noise + t.reshape(-1, 1, 1, 1) * x_1
    torch.testing.assert_close(seen["x_t"], expected_x_t)
    assert torch.equal(seen["t"], t)


def test_flow_matching_loss_of_a_zero_model_is_the_target_power(make_gen):
    x_1 = torch.rand(4, 1, 6, 6, generator=make_gen(0))
    noise = torch.randn(x_1.shape, generator=make_gen(1))
    t = torch.rand(4, generator=make_gen(2))
    loss = flow_matching_loss(lambda x, tt, c: torch.zeros_like(x), x_1, noise, t, cond=torch.zeros(4, 10))
    assert loss.item() == pytest.approx(((x_1 - noise) ** 2).mean().item(), rel=1e-6)


def test_euler_on_a_constant_field_lands_exactly_on_the_endpoint():
    x_0 = torch.tensor([[[[0.25, -1.5], [2.0, 0.0]]]])
    c = torch.tensor([[[[0.5, 1.0], [-2.0, 0.125]]]])
    out = final(lambda x, t, _: c.expand_as(x), x_0, num_ts=8)
    assert torch.equal(out, x_0 + c)  # dyadic numbers: no rounding at all
    out = final(lambda x, t, _: c.expand_as(x), x_0, num_ts=300)
    torch.testing.assert_close(out, x_0 + c, rtol=0, atol=1e-5)


def test_euler_on_linear_fields_gives_the_discrete_answer():
    x_0 = torch.tensor([[[[1.0, -2.0]]]])
    n = 10
    # dx/dt = x: Euler gives x_0 (1 + 1/n)^n
    out = final(lambda x, t, _: x, x_0, num_ts=n)
    torch.testing.assert_close(out, x_0 * (1 + 1 / n) ** n)
    # dx/dt = t, with t = 0, 1/n, ...: sum_i (i/n)(1/n) = (n - 1) / (2n)
    ts_seen = []

    def field(x, t, cond):
        ts_seen.append(t.clone())
        return t.reshape(-1, 1, 1, 1).expand_as(x)

    out = final(field, x_0, num_ts=n)
    torch.testing.assert_close(out, x_0 + (n - 1) / (2 * n))
    assert [round(float(t[0]), 6) for t in ts_seen] == [round(i / n, 6) for i in range(n)]
    assert all(t.shape == (1,) for t in ts_seen)


def test_euler_trajectory_records_states_and_clean_estimates(make_gen):
    x_0 = torch.randn(3, 1, 4, 4, generator=make_gen(0))
    target = torch.rand(3, 1, 4, 4, generator=make_gen(1))
    # the ideal rectified-flow velocity towards a known target: u = (x1 - x_t) / (1 - t)
    field = lambda x, t, _: (target - x) / (1 - t.reshape(-1, 1, 1, 1))
    traj = euler_sample(field, x_0, time_grid(5), record=True)
    assert traj.x.shape == (6, 3, 1, 4, 4) and traj.x_hat.shape == (6, 3, 1, 4, 4)
    assert traj.times == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) and traj.nfe == 5 and traj.value_range == (0.0, 1.0)
    assert torch.equal(traj.x[0], x_0)
    torch.testing.assert_close(traj.x[-1], target, rtol=0, atol=1e-5)
    for x1 in traj.x_hat:  # x_t + (1 - t) u is the target at every step (and the end is its own)
        torch.testing.assert_close(x1, target, rtol=0, atol=1e-5)
    last = euler_sample(field, x_0, time_grid(5), record=False)  # only the sample is kept
    assert last.x.shape == (1, 3, 1, 4, 4) and last.times == (1.0,) and torch.equal(last.final, traj.final)
    for k in range(5):
        assert torch.isfinite(traj.x[k]).all()


def test_euler_guidance_one_is_conditional_zero_is_unconditional(make_gen):
    x_0 = torch.randn(2, 1, 4, 4, generator=make_gen(0))
    cond = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    null = torch.zeros(2, 2)

    def model(x, t, c):
        return c[:, :1].reshape(-1, 1, 1, 1) * 2.0 - c[:, 1:].reshape(-1, 1, 1, 1) + 0.5 + 0 * x

    conditional = final(model, x_0, 4, cond)
    unconditional = final(model, x_0, 4, null)
    torch.testing.assert_close(final(CFGModel(model, null, 1.0), x_0, 4, cond), conditional)
    torch.testing.assert_close(final(CFGModel(model, null, 0.0), x_0, 4, cond), unconditional)
    guided = final(CFGModel(model, null, 3.0), x_0, 4, cond)
    torch.testing.assert_close(guided, x_0 + 0.5 + 3.0 * (conditional - unconditional))


def test_euler_callback_and_no_global_rng_use(make_gen):
    x_0 = torch.randn(1, 1, 2, 2, generator=make_gen(0))
    steps = []
    torch.manual_seed(5)
    out = final(lambda x, t, _: -x, x_0, num_ts=3, callback=lambda s: steps.append((s.i, s.n, s.x.clone())))
    assert [(i, n) for i, n, _ in steps] == [(0, 3), (1, 3), (2, 3)] and torch.equal(steps[-1][2], out)
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(1)), "sampling must not draw from the global RNG"


@pytest.mark.parametrize("num_ts", [0, -3])
def test_euler_rejects_non_positive_steps(num_ts):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        euler_sample(lambda x, t, _: x, torch.zeros(1, 1, 2, 2), time_grid(num_ts))


@pytest.mark.parametrize("guidance", [-1.0, float("nan"), float("inf")])
def test_cfg_rejects_bad_guidance(guidance):
    with pytest.raises(ValueError, match="CFG scale gamma"):
        CFGModel(lambda x, t, c: x, torch.zeros(1, 2), guidance)


def test_cfg_without_a_condition_says_so():
    with pytest.raises(ValueError, match="guidance needs a condition"):
        euler_sample(
            CFGModel(lambda x, t, c: x, torch.zeros(1, 2), 2.0), torch.zeros(1, 1, 2, 2), time_grid(2)
        )
