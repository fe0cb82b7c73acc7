"""The course's settings (CS180 Project 5), named once and read everywhere.

Every page default, CLI default, benchmark and test takes these from here, as nanoGPT's config and
diffusers' scheduler configs do; a literal 7 in a page would be a second truth.
``tests/system/test_course_settings.py`` fails when one of them reappears as a literal elsewhere.

Part A (DDPM: x_0 clean, t counts down 990 -> 0): the strided loop with stride 30 (33 steps),
CFG gamma 7 from A1.6 on, SDEdit from the i_start values below. Part B (flow matching: x_0 noise,
x_1 data, t runs 0 -> 1): 300 Euler steps, CFG gamma 5 (B2.5); the single-step denoiser trains at
sigma 0.5 and is shown on the sigma grid of B1.2.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- Part A (DDPM)

DDPM_GUIDANCE = 7.0  # gamma from A1.6 on (CFG, SDEdit, inpainting, edits, anagrams, hybrids)
STRIDE = 30  # the strided timesteps 990, 960, ..., 0
FIRST_TIMESTEP = 990  # where the strided loop starts (t = 999 has abar ~ 2e-9)
COURSE_DDPM_STEPS = FIRST_TIMESTEP // STRIDE  # 33 denoising steps at stride 30
SDEDIT_I_STARTS = (1, 3, 5, 7, 10, 20)  # A1.7: small i_start = lots of noise = big edits
FAST_STEPS = 20  # DDIM / DPM-Solver++ steps when none are given

# ----------------------------------------------------------------------------- Part B (flow matching)

FLOW_GUIDANCE = 5.0  # B2.5 gamma for the class-conditioned flow
EULER_STEPS = 300  # num_ts of the course's Euler sampler (Algorithm B.2 / B.4)
DENOISER_SIGMA = 0.5  # B1.2: the sigma the single-step denoiser trains at
SIGMA_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)  # B1.2's figure of sigmas

# ----------------------------------------------------------------------------- both, by model kind

GUIDANCE = {"ddpm": DDPM_GUIDANCE, "flow": FLOW_GUIDANCE}  # per model kind ("ddpm" or "flow")
COURSE_SAMPLER = {"ddpm": ("ddpm", COURSE_DDPM_STEPS), "flow": ("euler", EULER_STEPS)}  # (sampler, steps)

# ----------------------------------------------------------------------------- the fewer-steps pass rule

FD_MARGIN = 0.10  # a sampler "matches the course" within 10 % of its Fréchet distance
MIN_ACCURACY = {"ddpm": 0.95, "flow": 0.97}  # ... and with at least this classifier accuracy


def guidance_for(kind: str, class_conditioned: bool = True) -> float | None:
    """The course's CFG scale for a "ddpm" or "flow" model; None for a model without classes."""
    return GUIDANCE[kind] if class_conditioned else None


def matches_course(fd: float, course_fd: float, accuracy: float | None, kind: str) -> bool:
    """The fewer-steps pass rule: FD within ``FD_MARGIN`` of the course's and, where there is an
    accuracy (class models), at least ``MIN_ACCURACY[kind]``."""
    return fd <= course_fd * (1 + FD_MARGIN) and (accuracy is None or accuracy >= MIN_ACCURACY[kind])
