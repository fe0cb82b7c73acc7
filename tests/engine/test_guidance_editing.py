"""Classifier-free guidance (A1.6), SDEdit and inpainting (A1.7)."""

import math
from itertools import pairwise

import numpy as np
import pytest
import torch

from engine.editing import check_mask, inpaint, rectangle_mask, sdedit, sdedit_sweep
from engine.guidance import CFGModel
from engine.schedule import strided_timesteps

TS = strided_timesteps()


class CondModel:
    """eps depends on x, t and the condition; records its calls."""

    def __init__(self, channels=1, variance=False):
        self.calls = []
        self.channels, self.variance = channels, variance

    def __call__(self, x, t, cond):
        self.calls.append((x.shape[0], cond.clone()))
        w = cond.sum(dim=1).reshape(-1, 1, 1, 1)
        eps = 0.1 * x * (1 + w) + 0.01 * w + 0.001 * t.float().reshape(-1, 1, 1, 1)
        if self.variance:
            return torch.cat([eps, torch.tanh(x + w)], dim=1)
        return eps


@pytest.fixture
def cfg_inputs(make_gen):
    x = torch.randn(3, 2, 4, 4, generator=make_gen(0))
    t = torch.tensor([500, 500, 500])
    cond = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    null = torch.zeros(1, 3)
    return x, t, cond, null


def test_cfg_gamma_one_is_conditional_and_zero_unconditional(cfg_inputs):
    x, t, cond, null = cfg_inputs
    model = CondModel()
    cond_out = model(x, t, cond)
    uncond_out = model(x, t, null.expand(3, 3))
    torch.testing.assert_close(CFGModel(model, null, 1.0)(x, t, cond), cond_out)
    torch.testing.assert_close(CFGModel(model, null, 0.0)(x, t, cond), uncond_out)
    guided = CFGModel(model, null, 7.0)(x, t, cond)
    torch.testing.assert_close(guided, uncond_out + 7.0 * (cond_out - uncond_out))


def test_cfg_runs_both_branches_in_one_call(cfg_inputs):
    x, t, cond, null = cfg_inputs
    model = CondModel()
    CFGModel(model, null, 3.0)(x, t, cond)
    assert len(model.calls) == 1
    batch, conds = model.calls[0]
    assert batch == 6 and torch.equal(conds[:3], cond) and torch.equal(conds[3:], torch.zeros(3, 3))


def test_cfg_guides_eps_and_keeps_the_conditional_variance(cfg_inputs):
    x, t, cond, null = cfg_inputs
    model = CondModel(variance=True)
    out_c, out_u = model(x, t, cond), model(x, t, null.expand(3, 3))
    out = CFGModel(model, null, 5.0)(x, t, cond)
    assert out.shape == (3, 4, 4, 4)
    torch.testing.assert_close(out[:, :2], out_u[:, :2] + 5.0 * (out_c[:, :2] - out_u[:, :2]))
    torch.testing.assert_close(out[:, 2:], out_c[:, 2:])


@pytest.mark.parametrize("gamma", [-0.5, -1.0, float("nan"), float("inf")])
def test_cfg_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        CFGModel(CondModel(), torch.zeros(1, 3), gamma)


# ----------------------------------------------------------------------------- SDEdit


def np_eps(x, t, w):
    return 0.1 * x * (1 + w) + 0.01 * w + 0.001 * t


def hand_loop(x, timesteps, abar, noises, w=0.0, after_step=None):
    """Eq. A.3 in float64 numpy for CondModel with condition weight w."""
    for k, (t, tp) in enumerate(pairwise(timesteps)):
        a_t, a_p = abar[t], abar[tp]
        alpha, beta = a_t / a_p, 1 - a_t / a_p
        x0 = (x - math.sqrt(1 - a_t) * np_eps(x, t, w)) / math.sqrt(a_t)
        x = math.sqrt(a_p) * beta / (1 - a_t) * x0 + math.sqrt(alpha) * (1 - a_p) / (1 - a_t) * x
        x = x + math.sqrt((1 - a_p) / (1 - a_t) * beta) * noises[k]
        if after_step is not None:
            x = after_step(x, tp)
    return x


def test_sdedit_noises_to_i_start_then_denoises(schedule, abar_ref, make_gen):
    x_orig = torch.rand(2, 1, 6, 6, generator=make_gen(0))
    cond = torch.ones(2, 1)
    traj = sdedit(CondModel(), x_orig, 30, TS, schedule, cond, generator=make_gen(4))
    assert traj.times == (90, 60, 30, 0)
    gen = make_gen(4)
    draw = lambda: torch.randn(x_orig.shape, generator=gen).double().numpy()
    eps = draw()  # the forward noise comes first
    a = abar_ref[90]
    x_t = math.sqrt(a) * x_orig.double().numpy() + math.sqrt(1 - a) * eps
    np.testing.assert_allclose(traj.x[0].double().numpy(), x_t, rtol=1e-5, atol=1e-6)
    expected = hand_loop(x_t, TS[30:], abar_ref, [draw() for _ in range(3)], w=1.0)
    np.testing.assert_allclose(traj.final.double().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_sdedit_late_start_stays_close_to_the_original(schedule, make_gen):
    x_orig = torch.rand(1, 1, 8, 8, generator=make_gen(0)) * 2 - 1
    ac = schedule.alphas_cumprod.float()

    def oracle(x_t, t, cond):  # knows the original
        a = ac[t].reshape(-1, 1, 1, 1)
        return (x_t - a.sqrt() * x_orig) / (1 - a).sqrt()

    finals = sdedit_sweep(oracle, x_orig, (1, 20, 32), timesteps=TS, schedule=schedule, generator=make_gen(1))
    assert len(finals) == 3
    for f in finals:
        assert torch.isfinite(f).all() and (f - x_orig).abs().max() < 0.05


@pytest.mark.parametrize("i_start", [99, 33, -1])
def test_sdedit_rejects_i_start_past_the_end(schedule, i_start):
    with pytest.raises(ValueError, match="i_start"):
        sdedit(CondModel(), torch.zeros(1, 1, 4, 4), i_start, TS, schedule, torch.zeros(1, 1))


# ----------------------------------------------------------------------------- inpainting


def test_rectangle_mask():
    m = rectangle_mask(6, 8, 1, 2, 4, 7)
    assert m.shape == (1, 1, 6, 8) and m.sum() == 3 * 5
    assert m[0, 0, 1:4, 2:7].eq(1).all() and m[0, 0, 0].eq(0).all() and m[0, 0, :, 7].eq(0).all()


@pytest.mark.parametrize("box", [(0, 0, 7, 8), (3, 0, 3, 8), (0, -1, 6, 8), (0, 4, 6, 2)])
def test_rectangle_mask_rejects_boxes_outside(box):
    with pytest.raises(ValueError, match="outside"):
        rectangle_mask(6, 8, *box)


def test_inpaint_known_pixels_follow_the_forward_process(schedule, abar_ref, make_gen):
    """After each step the unmasked pixels are exactly forward(x_orig, t) with that step's noise."""
    ts = strided_timesteps(150, start=900)  # 900, 750, ..., 0
    x_orig = torch.rand(2, 1, 6, 6, generator=make_gen(0))
    mask = rectangle_mask(6, 6, 1, 1, 4, 5)
    cond = torch.ones(2, 1)
    traj = inpaint(CondModel(), x_orig, mask, ts, schedule, cond, generator=make_gen(3))

    # Replay the generator: start noise, known-region noise at ts[0], then per step
    # (variance noise, known-region noise).
    gen = make_gen(3)
    draw = lambda: torch.randn(x_orig.shape, generator=gen).double().numpy()
    x0 = x_orig.double().numpy()
    m = mask.double().numpy()
    known = lambda t, eps: math.sqrt(abar_ref[t]) * x0 + math.sqrt(1 - abar_ref[t]) * eps
    start = draw()
    x = m * start + (1 - m) * known(ts[0], draw())
    expected = [x]
    for t, tp in pairwise(ts):
        x = hand_loop(x, [t, tp], abar_ref, [draw()], w=1.0)
        x = m * x + (1 - m) * known(tp, draw())
        expected.append(x)

    assert list(traj.times) == ts
    for got, want in zip(traj.x, expected, strict=True):
        got = got.double().numpy()
        # unmasked: the noised original, exactly as the forward process makes it
        np.testing.assert_allclose(got[..., m[0, 0] == 0], want[..., m[0, 0] == 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        assert np.isfinite(got).all()
    # at t = 0 the kept pixels are the original up to sqrt(1 - abar_0) noise
    keep = (mask == 0).expand_as(x_orig)
    assert (traj.final[keep] - x_orig[keep]).abs().max() < 6 * math.sqrt(1 - abar_ref[0])


def test_inpaint_mask_zero_keeps_and_mask_one_generates(schedule, make_gen):
    x_orig = torch.rand(1, 1, 4, 4, generator=make_gen(0))
    ts = [300, 150, 0]
    keep_all = inpaint(CondModel(), x_orig, torch.zeros(4, 4), ts, schedule, torch.ones(1, 1), make_gen(1))
    assert (keep_all.final - x_orig).abs().max() < 0.05
    generate_all = inpaint(CondModel(), x_orig, torch.ones(4, 4), ts, schedule, torch.ones(1, 1), make_gen(1))
    assert (generate_all.final - x_orig).abs().max() > 0.05


@pytest.mark.parametrize(
    "mask,match",
    [
        (torch.ones(1, 1, 5, 4), "mask size"),
        (torch.ones(4, 5), "mask size"),
        (torch.full((4, 4), 2.0), r"\[0, 1\]"),
        (torch.ones(3, 1, 4, 4), "mask"),
    ],
)
def test_inpaint_rejects_bad_masks(schedule, mask, match):
    with pytest.raises(ValueError, match=match):
        inpaint(CondModel(), torch.zeros(2, 1, 4, 4), mask, [30, 0], schedule, torch.ones(2, 1))


def test_check_mask_broadcasts_to_the_image():
    assert check_mask(torch.ones(4, 4), torch.zeros(2, 3, 4, 4)).shape == (1, 1, 4, 4)
    assert check_mask(torch.ones(2, 1, 4, 4), torch.zeros(2, 3, 4, 4)).shape == (2, 1, 4, 4)
