"""The "Check your code" contract: which of a student's Project 5 functions the lab checks, with
which signatures, on which inputs, and what a verdict looks like (``docs/check-your-code.md``).

Conventions are the course's. DDPM (Part A): x_0 is clean, t counts down 990 -> 0 on the strided
``timesteps`` list. Flow matching (Part B): x0 is the noise, x1 the data, x_t = (1 - t) x0 + t x1,
t runs 0 -> 1. A student's file is written as in the course's notebook: it reads the globals
``stage_1``, ``alphas_cumprod``, ``add_variance`` and ``device`` that the checker defines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..course import DDPM_GUIDANCE, EULER_STEPS, FIRST_TIMESTEP, STRIDE
from ..schedule import strided_timesteps

PASS, FAIL, ERROR, MISSING = "pass", "fail", "error", "missing"
STATUSES = (PASS, FAIL, ERROR, MISSING)

NOTEBOOK_FORWARD_TS = (250, 500, 750)  # the notebook's t for the forward process (A1.1)
DENOISE_I_START = 10  # the notebook's i_start for iterative_denoise (A1.4)
HYBRID_KERNEL, HYBRID_SIGMA = 33, 2  # the notebook's Gaussian low-pass for hybrid images (A1.9)
FLIP_DIMS = (-2,)  # the anagram's second view: upside down, torch.flip(x, dims=[-2])


@dataclass(frozen=True)
class FunctionSpec:
    """One checked function: its name, the notebook's signature and what it must return."""

    name: str
    signature: str
    doc: str
    kind: str  # "random" (judged statistically), "loop" (DDPM loop), "loss", "flow" (Euler loop)


FUNCTIONS = (
    FunctionSpec(
        "forward",
        "forward(im, t)",
        "im (B, C, H, W) clean in [-1, 1], t an int timestep -> "
        "im_noisy = sqrt(abar_t) im + sqrt(1 - abar_t) eps, eps ~ N(0, I) (A1.1, Eq. A.2)",
        "random",
    ),
    FunctionSpec(
        "iterative_denoise",
        "iterative_denoise(im_noisy, i_start, prompt_embeds, timesteps, display=False)",
        "denoise im_noisy (at timesteps[i_start]) step by step down to t = 0 with Eq. A.3 and "
        "add_variance (A1.4) -> image",
        "loop",
    ),
    FunctionSpec(
        "iterative_denoise_cfg",
        f"iterative_denoise_cfg(im_noisy, i_start, prompt_embeds, uncond_prompt_embeds, timesteps, "
        f"scale={DDPM_GUIDANCE:g}, display=False)",
        "the same loop with eps = eps_u + scale (eps_c - eps_u) (A1.6) -> image",
        "loop",
    ),
    FunctionSpec(
        "visual_anagrams",
        f"visual_anagrams(im_noisy, i_start, prompt_embeds_1, prompt_embeds_2, uncond_prompt_embeds, "
        f"timesteps, scale={DDPM_GUIDANCE:g})",
        "eps = (eps_1(x_t) + flip(eps_2(flip(x_t)))) / 2, flip = torch.flip(x, dims=[-2]), each "
        "eps with CFG (A1.8) -> image",
        "loop",
    ),
    FunctionSpec(
        "make_hybrids",
        f"make_hybrids(im_noisy, i_start, prompt_embeds_1, prompt_embeds_2, uncond_prompt_embeds, "
        f"timesteps, scale={DDPM_GUIDANCE:g}, kernel_size={HYBRID_KERNEL}, sigma={HYBRID_SIGMA})",
        "eps = lowpass(eps_1) + highpass(eps_2), lowpass a Gaussian blur, each eps with CFG (A1.9) -> image",
        "loop",
    ),
    FunctionSpec(
        "flow_matching_loss",
        "flow_matching_loss(unet, x1, x0, t)",
        "x_t = (1 - t) x0 + t x1, loss = mean (unet(x_t, t) - (x1 - x0))^2; t (B,) in [0, 1] "
        "(B2.1) -> scalar tensor",
        "loss",
    ),
    FunctionSpec(
        "flow_sample",
        f"flow_sample(unet, x0, num_ts={EULER_STEPS})",
        "Euler steps x <- x + (1 / num_ts) unet(x, t) from t = 0 to 1 (B2.2) -> x1",
        "flow",
    ),
)
NAMES = tuple(f.name for f in FUNCTIONS)
SPECS = {f.name: f for f in FUNCTIONS}


def course_timesteps() -> list[int]:
    """The course's strided list, 990, 960, ..., 0 (what ``timesteps`` is in every call)."""
    return strided_timesteps(STRIDE, FIRST_TIMESTEP)


@dataclass(frozen=True)
class CheckSettings:
    """The fixed inputs of a check. Every random draw comes from generators seeded from ``seed``,
    so a check is reproducible and the reference sees the same inputs and noise as the student."""

    seed: int = 0
    forward_ts: tuple[int, ...] = NOTEBOOK_FORWARD_TS
    forward_batch: int = 16  # images per forward call: 16 x 784 pixels per t for the statistics
    denoise_i_start: int = DENOISE_I_START
    guided_i_start: int = 0  # CFG, anagrams and hybrids start from pure noise, as in the course
    scale: float = DDPM_GUIDANCE
    flow_batch: int = 4
    flow_steps: int = EULER_STEPS // 15  # fewer than the course's 300 Euler steps: a fast check
    labels: tuple[int, int] = (6, 9)  # the two prompts (for ddpm-class: digit classes)


@dataclass(frozen=True)
class Limits:
    """What the student's process may use. ``wall_s`` and ``cpu_s`` are per function, ``memory_mb``
    is address space on top of what the checker's own process already maps (torch and the model)."""

    wall_s: float = 60.0
    cpu_s: int = 120
    memory_mb: int = 2048
    startup_s: float = 120.0  # importing torch and loading the model (a busy machine is slow)
    grace_s: float = 10.0  # past the wall time, before the checker kills a function that ignores its timer
    file_mb: int = 64  # the largest file the student's code may write in its scratch folder


def parse_map(items) -> dict[str, str]:
    """``--map theirs=ours`` values (repeatable, or comma-separated) -> {ours: theirs}."""
    out: dict[str, str] = {}
    for item in items or ():
        for pair in str(item).split(","):
            if not pair.strip():
                continue
            theirs, sep, ours = pair.partition("=")
            theirs, ours = theirs.strip(), ours.strip()
            if not sep or not theirs.isidentifier() or ours not in SPECS:
                raise ValueError(f"--map takes theirs=ours with ours one of {', '.join(NAMES)}; got {pair!r}")
            out[ours] = theirs
    return out


def parse_only(text: str | None) -> tuple[str, ...]:
    """``--only forward,flow_sample`` -> those names in contract order (all of them for None)."""
    if not text:
        return NAMES
    asked = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in asked if n not in SPECS]
    if bad or not asked:
        raise ValueError(f"--only takes names from {', '.join(NAMES)}; got {text!r}")
    return tuple(n for n in NAMES if n in asked)


@dataclass
class Trail:
    """Both trajectories of a loop, state by state, for the step slider: ``steps`` the notebook's
    i (or the Euler step), ``times`` the t the network saw, ``yours``/``reference`` (K, ...) in
    [0, 1]; ``diverged`` the index of the first step where they part (None: never)."""

    steps: list[int]
    times: list[float]
    yours: object
    reference: object
    diverged: int | None = None


@dataclass
class FunctionResult:
    """One function's verdict. ``status`` is one of STATUSES; ``bug`` a catalogue code or None;
    ``max_abs_err`` the largest difference from the reference (for ``forward``: from the fitted
    coefficients); ``message`` says what happened in one or two sentences. The rest is for the
    page: images in [0, 1] (``yours``, ``reference``), the loops' ``trail``, ``numbers``,
    ``divergence`` (a sentence) and what the function printed."""

    name: str
    status: str
    bug: str | None = None
    max_abs_err: float | None = None
    message: str = ""
    divergence: str | None = None
    yours: object = None
    reference: object = None
    trail: Trail | None = None
    numbers: dict = field(default_factory=dict)
    stdout: str = ""
    matched: object = None  # the accepted implementation a pass matched, where not the reference itself

    def summary(self) -> dict:
        """The four fields of the ``--json`` contract."""
        err = self.max_abs_err
        return {
            "status": self.status,
            "bug": self.bug,
            "max_abs_err": None if err is None else float(f"{err:.6g}"),
            "message": self.message,
        }


@dataclass
class CheckReport:
    """Every checked function's result, in contract order; ``notes`` are sandbox facts (e.g. no
    network isolation on this OS) and ``seconds`` the whole check's wall time."""

    functions: dict[str, FunctionResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Everything present passes (the CLI's exit status 0)."""
        return all(r.status in (PASS, MISSING) for r in self.functions.values())

    def to_json(self) -> dict:
        return {"functions": {n: r.summary() for n, r in self.functions.items()}}
