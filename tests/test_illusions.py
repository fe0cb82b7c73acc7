"""Visual anagrams and hybrid images (A1.8-A1.9)."""

import math

import pytest
import torch

from engine.denoise import gaussian_blur
from engine.illusions import AnagramModel, HybridModel, View, fft_magnitude, get_view, viewing_distance


def grid(h=3, w=4, b=1, c=1):
    return torch.arange(b * c * h * w, dtype=torch.float32).reshape(b, c, h, w)


def test_flip_is_a_vertical_flip_and_its_own_inverse():
    x = grid(3, 4)
    flip = get_view("flip")
    assert torch.equal(flip.apply(x)[0, 0, 0], x[0, 0, 2])  # top row <- bottom row
    assert torch.equal(flip.apply(x)[0, 0, :, 0], x[0, 0, :, 0].flip(0))
    assert torch.equal(flip.apply(flip.apply(x)), x)
    assert torch.equal(flip.invert(flip.apply(x)), x)


def test_rot90_invert_undoes_apply():
    rot = get_view("rot90")
    x = grid(3, 5, b=2, c=3)
    y = rot.apply(x)
    assert y.shape == (2, 3, 5, 3) and not torch.equal(rot.apply(grid(4, 4)), grid(4, 4))
    assert torch.equal(rot.invert(y), x)
    assert torch.equal(rot.apply(rot.invert(x)), x)
    sq = grid(4, 4)
    assert torch.equal(rot.apply(rot.apply(rot.apply(rot.apply(sq)))), sq)
    # counter-clockwise: the top-right corner moves to the top-left
    assert y[0, 0, 0, 0] == x[0, 0, 0, -1]


def test_identity_view_and_unknown_views():
    x = grid()
    assert torch.equal(get_view("identity").apply(x), x)
    with pytest.raises(ValueError, match="unknown view 'mirror'"):
        get_view("mirror")
    with pytest.raises(ValueError, match="unknown view"):
        View("mirror").apply(x)


class Model:
    def __init__(self, variance=False):
        self.calls = 0
        self.variance = variance

    def __call__(self, x, t, cond):
        self.calls += 1
        w = cond.reshape(-1, 1, 1, 1)
        # depends on position (not view-equivariant) so a wrong view would show
        pos = torch.linspace(0, 1, x.shape[-2]).reshape(1, 1, -1, 1)
        eps = 0.5 * x * w + pos * w + 0.001 * t.float().reshape(-1, 1, 1, 1)
        if self.variance:
            return torch.cat([eps, torch.full_like(eps, 0.1) * w], 1)
        return eps


@pytest.mark.parametrize("view", ["flip", "rot90"])
def test_anagram_averages_the_upright_and_the_viewed_estimate(make_gen, view):
    x = torch.randn(2, 3, 6, 6, generator=make_gen(0))
    t = torch.tensor([700, 700])
    c1, c2 = torch.tensor([[1.0]]), torch.tensor([[3.0]])
    model = Model()
    v = get_view(view)
    out = AnagramModel(model, c1, c2, view)(x, t)
    assert model.calls == 1  # both branches in one batched call
    eps_1 = model(x, t, c1.expand(2, 1))
    eps_2 = model(v.apply(x), t, c2.expand(2, 1))
    torch.testing.assert_close(out, (eps_1 + v.invert(eps_2)) / 2)


def test_anagram_keeps_the_first_branch_variance(make_gen):
    x = torch.randn(1, 3, 4, 4, generator=make_gen(0))
    out = AnagramModel(Model(variance=True), torch.tensor([[2.0]]), torch.tensor([[5.0]]), "flip")(
        x, torch.tensor([10])
    )
    assert out.shape == (1, 6, 4, 4)
    torch.testing.assert_close(out[:, 3:], torch.full((1, 3, 4, 4), 0.2))


def test_hybrid_is_lowpass_of_far_plus_highpass_of_near(make_gen):
    x = torch.randn(2, 3, 40, 40, generator=make_gen(0))
    t = torch.tensor([500, 500])
    far, near = torch.tensor([[1.0]]), torch.tensor([[4.0]])
    model = Model()
    hybrid = HybridModel(model, far, near, kernel_size=33, sigma=2.0)
    out = hybrid(x, t)
    assert model.calls == 1
    e_far, e_near = model(x, t, far.expand(2, 1)), model(x, t, near.expand(2, 1))
    low = gaussian_blur(e_far, 33, 2.0)
    high = e_near - gaussian_blur(e_near, 33, 2.0)
    torch.testing.assert_close(out, low + high)


def test_hybrid_of_one_prompt_is_that_prompt(make_gen):
    x = torch.randn(1, 1, 28, 28, generator=make_gen(0))  # small image: the kernel shrinks to fit
    t = torch.tensor([100])
    c = torch.tensor([[2.0]])
    out = HybridModel(Model(), c, c)(x, t)
    torch.testing.assert_close(out, Model()(x, t, c), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan")])
def test_hybrid_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        HybridModel(Model(), torch.ones(1, 1), torch.ones(1, 1), sigma=sigma)


def test_fft_magnitude_of_a_constant_is_a_centred_dc_peak():
    h, w, c = 8, 6, 0.5
    mag = fft_magnitude(torch.full((2, 3, h, w), c))
    assert mag.shape == (h, w)
    assert mag[h // 2, w // 2].item() == pytest.approx(math.log1p(h * w * c), rel=1e-5)
    mag[h // 2, w // 2] = 0
    assert mag.abs().max() < 1e-5


def test_fft_magnitude_of_a_cosine_peaks_at_its_frequency():
    n, k = 16, 3
    cols = torch.cos(2 * math.pi * k * torch.arange(n) / n)
    mag = fft_magnitude(cols.expand(n, n).clone())
    peaks = {tuple(i.tolist()) for i in (mag > 1).nonzero()}
    assert peaks == {(n // 2, n // 2 - k), (n // 2, n // 2 + k)}


def test_viewing_distance(make_gen):
    x = torch.rand(1, 3, 32, 32, generator=make_gen(0))
    assert torch.equal(viewing_distance(x, 1.0), x)
    far = viewing_distance(x, 4.0)
    assert far.shape == x.shape and torch.isfinite(far).all()
    high = lambda im: (im[..., 1:, :] - im[..., :-1, :]).abs().mean()
    assert high(far) < high(x) / 2  # detail is gone from far away
