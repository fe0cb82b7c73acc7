"""Views for visual anagrams: orthogonal transforms of an image's pixels (Geng et al. 2024).

A visual anagram averages noise estimates taken under several views,
    eps = mean_i view_i^-1(eps_theta(view_i(x_t), t, c_i)),
which is only sound when every view is an orthogonal linear map: then view(noise) is still
standard Gaussian noise and the average stays a noise estimate. Every view here is a pixel
permutation P, or -P (negation), so orthogonality holds by construction and the inverse is the
transpose: the inverse permutation.

A view is stored as its index map on an n x n image: ``out.flat[k] = x.flat[index[k]]``, built
by applying the named operation to an image of pixel numbers. ``transition`` animates the view
continuously (a rotation turning, a card flipping, pieces sliding) for the page and its GIF;
its last frame is the view itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

SKEW = 0.5  # skew: row i shifts by SKEW * (i - n // 2) pixels, wrapping around
PIECES = 4  # patches / jigsaw: a PIECES x PIECES grid of square pieces
INNER_RADIUS = 0.3  # inner circle: radius as a fraction of the image side


def _rot(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda g: torch.rot90(g, k, dims=(-2, -1))


def _skew_shift(i: int, n: int) -> int:
    return math.floor(SKEW * (i - n // 2))


def _skew(g: torch.Tensor) -> torch.Tensor:
    n = g.shape[-1]
    return torch.stack([torch.roll(g[i], _skew_shift(i, n)) for i in range(n)])


def _inner_circle(g: torch.Tensor) -> torch.Tensor:
    return torch.where(_disk(g.shape[-1]), torch.rot90(g, 1, dims=(-2, -1)), g)


def _disk(n: int) -> torch.Tensor:
    """Pixels whose centres lie within INNER_RADIUS * n of the image centre; a 90 degree turn
    about the centre maps pixel centres to pixel centres, so it maps this disk onto itself."""
    c = (n - 1) / 2
    y, x = torch.meshgrid(torch.arange(n) - c, torch.arange(n) - c, indexing="ij")
    return (x**2 + y**2) <= (INNER_RADIUS * n) ** 2


def piece_plan(n: int, turn: bool) -> tuple[int, list[int], list[int]]:
    """(piece side, source piece of each target slot, quarter turns of each piece): a fixed
    shuffle (seed 0, no piece left in place), so the view is the same everywhere."""
    if n % PIECES:
        raise ValueError(f"a {PIECES}x{PIECES} piece view needs a side divisible by {PIECES}, got {n}")
    gen = torch.Generator().manual_seed(0)
    m = PIECES * PIECES
    while True:
        order = torch.randperm(m, generator=gen)
        if not bool((order == torch.arange(m)).any()):
            break
    turns = torch.randint(1, 4, (m,), generator=gen) if turn else torch.zeros(m, dtype=torch.long)
    return n // PIECES, order.tolist(), turns.tolist()


def _pieces(turn: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    def op(g: torch.Tensor) -> torch.Tensor:
        side, order, turns = piece_plan(g.shape[-1], turn)
        out = torch.empty_like(g)
        for slot, (src, k) in enumerate(zip(order, turns, strict=True)):
            sr, sc = divmod(src, PIECES)
            tr, tc = divmod(slot, PIECES)
            piece = g[sr * side : (sr + 1) * side, sc * side : (sc + 1) * side]
            out[tr * side : (tr + 1) * side, tc * side : (tc + 1) * side] = torch.rot90(piece, k)
        return out

    return op


@dataclass(frozen=True)
class View:
    """An orthogonal view: the pixel permutation ``op`` (a function of an (n, n) grid), times
    ``sign``. ``apply``/``invert`` act on the last two dims of any (..., n, n) tensor."""

    name: str
    label: str
    op: Callable[[torch.Tensor], torch.Tensor]
    sign: float = 1.0

    def index(self, n: int) -> torch.Tensor:
        return _index(self.name, n)

    def _gather(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h != w:
            raise ValueError(f"views need square images, got {h}x{w}")
        return x.flatten(-2)[..., index.to(x.device)].view(x.shape)

    def permute(self, x: torch.Tensor) -> torch.Tensor:
        """The permutation alone (for DeepFloyd's variance channels, which carry no sign)."""
        return self._gather(x, self.index(x.shape[-1]))

    def unpermute(self, x: torch.Tensor) -> torch.Tensor:
        return self._gather(x, _inverse_index(self.name, x.shape[-1]))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return self.permute(x) * self.sign if self.sign != 1 else self.permute(x)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        return self.unpermute(x) * self.sign if self.sign != 1 else self.unpermute(x)

    def apply_unit(self, img: torch.Tensor) -> torch.Tensor:
        """The view of a [0, 1] image (negation is about mid-grey there: 1 - x)."""
        return (self.apply(img * 2 - 1) + 1) / 2

    def transition(self, img: torch.Tensor, s: float) -> torch.Tensor:
        """The [0, 1] image (..., C, n, n) a fraction ``s`` of the way into the view: s = 0 is the
        image, s = 1 exactly ``apply_unit(img)``."""
        if s <= 0:
            return img.clone()
        if s >= 1:
            return self.apply_unit(img)
        return _TRANSITIONS[self.name](img, s)


@lru_cache(maxsize=64)
def _index(name: str, n: int) -> torch.Tensor:
    grid = torch.arange(n * n).view(n, n)
    index = get_view(name).op(grid).reshape(-1)
    if not torch.equal(index.sort().values, torch.arange(n * n)):
        raise AssertionError(f"view {name!r} is not a permutation at {n}x{n}")
    return index


@lru_cache(maxsize=64)
def _inverse_index(name: str, n: int) -> torch.Tensor:
    return torch.argsort(_index(name, n))


# ----------------------------------------------------------------------------- animation


def _warp(img: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Sample ``img`` through a 2x3 affine map (normalized coordinates), black outside (or the
    nearest edge pixel, ``padding="border"``)."""
    shape = img.shape
    x = img.reshape(-1, *shape[-3:]).float()
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=True).reshape(shape)


def _rotate(img: torch.Tensor, degrees: float, padding: str = "zeros") -> torch.Tensor:
    """Counter-clockwise on screen, like torch.rot90."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    return _warp(img, theta, padding)


def _turning(quarters: int) -> Callable[[torch.Tensor, float], torch.Tensor]:
    return lambda img, s: _rotate(img, 90 * quarters * s)


def _flipping(img: torch.Tensor, s: float) -> torch.Tensor:
    """A card turning over about its horizontal axis: the height shrinks by cos(pi s)."""
    c = math.cos(math.pi * s)
    return _warp(img, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1 / c if abs(c) > 1e-3 else 1e3, 0.0]]))


def _negating(img: torch.Tensor, s: float) -> torch.Tensor:
    return (1 - s) * img + s * (1 - img)


def _skewing(img: torch.Tensor, s: float) -> torch.Tensor:
    n = img.shape[-1]
    rows = [torch.roll(img[..., i : i + 1, :], round(s * _skew_shift(i, n)), dims=-1) for i in range(n)]
    return torch.cat(rows, dim=-2)


def _inner_turning(img: torch.Tensor, s: float) -> torch.Tensor:
    return torch.where(_disk(img.shape[-1]), _rotate(img, 90 * s), img)


def _sliding(turn: bool) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """Each piece slides in a straight line to its new slot, turning on the way."""

    def frame(img: torch.Tensor, s: float) -> torch.Tensor:
        n = img.shape[-1]
        side, order, turns = piece_plan(n, turn)
        out = torch.zeros_like(img)
        for slot, (src, k) in enumerate(zip(order, turns, strict=True)):
            (sr, sc), (tr, tc) = divmod(src, PIECES), divmod(slot, PIECES)
            piece = img[..., sr * side : (sr + 1) * side, sc * side : (sc + 1) * side]
            piece = _rotate(piece, 90 * k * s, "border") if k else piece
            r, c = round(side * (sr + s * (tr - sr))), round(side * (sc + s * (tc - sc)))
            out[..., r : r + side, c : c + side] = torch.maximum(out[..., r : r + side, c : c + side], piece)
        return out

    return frame


_TRANSITIONS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "identity": lambda img, s: img.clone(),
    "flip": _flipping,
    "rot90": _turning(1),
    "rot180": _turning(2),
    "rot270": _turning(-1),
    "negate": _negating,
    "skew": _skewing,
    "inner_circle": _inner_turning,
    "patches": _sliding(False),
    "jigsaw": _sliding(True),
}

VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("identity", "as is", lambda g: g),
        View("flip", "flip upside down", lambda g: torch.flip(g, dims=(-2,))),
        View("rot90", "turn 90° left", _rot(1)),
        View("rot180", "turn 180°", _rot(2)),
        View("rot270", "turn 90° right", _rot(-1)),
        View("negate", "negative", lambda g: g, sign=-1.0),
        View("skew", "skew rows", _skew),
        View("inner_circle", "turn the inner circle", _inner_circle),
        View("patches", f"shuffle {PIECES}×{PIECES} patches", _pieces(False)),
        View("jigsaw", f"jigsaw: shuffle and turn {PIECES}×{PIECES} pieces", _pieces(True)),
    )
}


def get_view(name: str) -> View:
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; choose from {sorted(VIEWS)}")
    return VIEWS[name]


def transition_frames(img: torch.Tensor, view: str | View, frames: int = 24) -> torch.Tensor:
    """(frames, ..., C, n, n): the [0, 1] image turning into its view, first frame the image,
    last frame the view."""
    v = get_view(view) if isinstance(view, str) else view
    if frames < 2:
        raise ValueError(f"an animation needs at least 2 frames, got {frames}")
    return torch.stack([v.transition(img, k / (frames - 1)) for k in range(frames)]).clamp(0, 1)
