"""The catalogue of known mistakes: each a reference implementation with one mistake, a stable
code and the sentence the report prints when a student's output matches it within tolerance.

Codes are stable (graders' CSVs and tests use them); several implementations may share a code
(a timestep off by one happens in three ways). ``ACCEPTED`` lists what the course allows besides
the reference itself: a student matching any of them passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

from .reference import CORRECT, Variant

LOOPS = ("iterative_denoise", "iterative_denoise_cfg", "visual_anagrams", "make_hybrids")
GUIDED = ("iterative_denoise_cfg", "visual_anagrams", "make_hybrids")


@dataclass(frozen=True)
class Mutation:
    code: str
    functions: tuple[str, ...]
    variant: Variant
    message: str


def _m(code, functions, message, **change) -> Mutation:
    return Mutation(code, tuple(functions), replace(CORRECT, **change), message)


CODES = {
    "missing-sqrt": "ᾱ used where √ᾱ belongs (or 1 − ᾱ for √(1 − ᾱ))",
    "coefficients-swapped": "√(1 − ᾱ) multiplies the image and √ᾱ the noise",
    "t-off-by-one": "a timestep off by one (the network asked at t′, a step skipped or missing)",
    "t-swapped": "t and t′ exchanged in ᾱ_t and ᾱ_t′",
    "missing-variance": "add_variance never applied",
    "cfg-sign": "CFG extrapolates away from the condition (conditional and unconditional swapped)",
    "cfg-scale-wrong-term": "the CFG scale multiplies the wrong term, or the base term is wrong",
    "flip-not-undone": "the flipped view's noise estimate is not flipped back",
    "flip-axis": "the anagram's view flips the wrong axis (left-right instead of upside down)",
    "low-high-swapped": "the low-pass is taken of prompt 2's estimate and the high-pass of prompt 1's",
    "x1-fed": "the network sees the data x1 instead of x_t",
    "target-reversed": "the velocity target is x0 − x1 instead of x1 − x0",
    "path-reversed": "x_t = t x0 + (1 − t) x1: the path runs from data to noise",
    "time-reversed": "the sampler runs time from t = 1 to 0",
    "step-size": "the Euler step is not 1 / num_ts on the grid i / num_ts",
}

CATALOGUE = (
    _m(
        "missing-sqrt",
        ["forward"],
        "your x_t uses ᾱ_t and 1 − ᾱ_t where √ᾱ_t and √(1 − ᾱ_t) belong",
        fwd_signal="abar",
        fwd_noise="linear",
    ),
    _m(
        "missing-sqrt",
        ["forward"],
        "your x_t multiplies the image by ᾱ_t where √ᾱ_t belongs",
        fwd_signal="abar",
    ),
    _m(
        "missing-sqrt",
        ["forward"],
        "your x_t multiplies the noise by 1 − ᾱ_t where √(1 − ᾱ_t) belongs",
        fwd_noise="linear",
    ),
    _m(
        "coefficients-swapped",
        ["forward"],
        "your x_t multiplies the image by √(1 − ᾱ_t) and the noise by √ᾱ_t",
        fwd_signal="noise-coef",
        fwd_noise="signal-coef",
    ),
    _m(
        "missing-sqrt",
        LOOPS,
        "your clean estimate x̂_0 uses 1 − ᾱ_t and ᾱ_t where their square roots belong",
        x0_sqrt=False,
    ),
    _m(
        "t-off-by-one",
        LOOPS,
        "your output equals the reference with the network asked at t′ (the next timestep) instead of t",
        net_t="t-prev",
    ),
    _m(
        "t-off-by-one",
        LOOPS,
        "your output equals the reference with the loop starting one step late (at i_start + 1)",
        loop="skip-first",
    ),
    _m(
        "t-off-by-one",
        LOOPS,
        "your output equals the reference with the loop stopping one step early (it never reaches t = 0)",
        loop="stop-early",
    ),
    _m(
        "t-swapped",
        LOOPS,
        "your output equals the reference with t and t′ swapped in ᾱ_t and ᾱ_t′",
        t_swapped=True,
    ),
    _m(
        "missing-variance",
        LOOPS,
        "your output equals the reference without add_variance: the learned variance's noise is never added",
        variance=False,
    ),
    _m(
        "cfg-sign",
        GUIDED,
        "your output equals the reference with the guidance direction reversed: "
        "ε_c + γ (ε_u − ε_c) instead of ε_u + γ (ε_c − ε_u)",
        cfg="reversed",
    ),
    _m(
        "cfg-scale-wrong-term",
        GUIDED,
        "your output equals the reference with ε_c + γ (ε_c − ε_u): the base "
        "term must be the unconditional estimate",
        cfg="base-cond",
    ),
    _m(
        "cfg-scale-wrong-term",
        GUIDED,
        "your output equals the reference with γ (ε_c − ε_u): the "
        "unconditional estimate ε_u is not added back",
        cfg="no-base",
    ),
    _m(
        "cfg-scale-wrong-term",
        GUIDED,
        "your output equals the reference with ε_u + γ ε_c: γ must scale the difference ε_c − ε_u",
        cfg="scale-cond",
    ),
    _m(
        "flip-not-undone",
        ["visual_anagrams"],
        "your output equals the reference with the second noise estimate not flipped back before averaging",
        flip_back=False,
    ),
    _m(
        "flip-axis",
        ["visual_anagrams"],
        "your output equals the reference with a left-right flip; the "
        "course's view is upside down, torch.flip(x, dims=[-2])",
        flip_dims=(-1,),
    ),
    _m(
        "low-high-swapped",
        ["make_hybrids"],
        "your output equals the reference with the bands swapped: the "
        "low-pass must be of prompt 1's estimate, the high-pass of prompt 2's",
        bands_swapped=True,
    ),
    _m(
        "x1-fed",
        ["flow_matching_loss"],
        "your loss equals the reference with the network fed x1 (the data) instead of x_t",
        net_input="x1",
    ),
    _m(
        "target-reversed",
        ["flow_matching_loss"],
        "your loss equals the reference with the target x0 − x1; the velocity from noise to data is x1 − x0",
        target="x0-x1",
    ),
    _m(
        "path-reversed",
        ["flow_matching_loss"],
        "your loss equals the reference with x_t = t x0 + (1 − t) x1; "
        "in the course x_t = (1 − t) x0 + t x1 (t = 0 is noise)",
        path="reversed",
    ),
    _m(
        "time-reversed",
        ["flow_sample"],
        "your sample equals the reference with time running from t = 1 down "
        "to 0; Euler goes from noise at t = 0 to data at t = 1",
        times="reversed",
    ),
    _m(
        "time-reversed",
        ["flow_sample"],
        "your sample equals the reference integrated backwards (x − Δt u, t from 1 down to 0)",
        times="reversed",
        step="minus",
    ),
    _m(
        "step-size",
        ["flow_sample"],
        "your sample equals the reference with steps of size 1 instead of 1 / num_ts",
        step="one",
    ),
    _m(
        "step-size",
        ["flow_sample"],
        "your sample equals the reference with the network asked at "
        "linspace(0, 1, num_ts) while stepping by 1 / num_ts",
        times="linspace",
    ),
    _m(
        "t-off-by-one",
        ["flow_sample"],
        "your sample equals the reference with the network asked at the end "
        "of each step, t = (i + 1) / num_ts",
        times="end",
    ),
)
assert all(m.code in CODES for m in CATALOGUE)

# what the course allows: every combination of these counts as correct
_ACCEPTED_AXES = {
    "iterative_denoise": {"clip_x0": (False, True)},
    "iterative_denoise_cfg": {"clip_x0": (False, True), "variance_from": ("first", "second")},
    "visual_anagrams": {"clip_x0": (False, True), "variance_from": ("first", "second", "second-raw", "mean")},
    "make_hybrids": {
        "clip_x0": (False, True),
        "variance_from": ("first", "second", "mean"),
        "blur": ("reflect", "zeros"),
    },
    "flow_sample": {"clamp": (False, True)},
}
VARIANCE_AXES = ("variance_from",)


def accepted(name: str, variance_matters: bool = True) -> list[Variant]:
    """The implementations that pass for function ``name``, the reference first. Where the lab's
    variance channels are constant (ddpm-class), which branch's variance is used cannot matter."""
    axes = {
        k: v for k, v in _ACCEPTED_AXES.get(name, {}).items() if variance_matters or k not in VARIANCE_AXES
    }
    return [replace(CORRECT, **dict(zip(axes, combo, strict=True))) for combo in product(*axes.values())]


def mutations(name: str, variance_matters: bool = True) -> list[tuple[Mutation, Variant]]:
    """(mutation, implementation) for function ``name``: each catalogued mistake on top of every
    accepted alternative (a student may clip x0_hat *and* reverse the guidance)."""
    out = []
    for base in accepted(name, variance_matters):  # the plain reference's mistakes first: the usual case
        for m in (m for m in CATALOGUE if name in m.functions):
            changed = {
                f: getattr(m.variant, f)
                for f in m.variant.__dataclass_fields__
                if getattr(m.variant, f) != getattr(CORRECT, f)
            }
            out.append((m, replace(base, **changed)))
    return out


_ACCEPTED_WORDS = {
    ("clip_x0", True): "x̂_0 clipped to [-1, 1]",
    ("variance_from", "second"): "the other branch's variance",
    ("variance_from", "second-raw"): "prompt 2's variance unflipped",
    ("variance_from", "mean"): "the mean of both variances",
    ("blur", "zeros"): "a zero-padded blur",
    ("clamp", True): "the sample clamped to [0, 1]",
}


def describe(v: Variant) -> str:
    """How an accepted implementation differs from the reference, in words ("" for the reference)."""
    return ", ".join(w for (f, val), w in _ACCEPTED_WORDS.items() if getattr(v, f) == val)
