"""The course's settings as the pages use them: ``engine.course``'s names (pages import only
``dashboard``), and the choices the widgets offer around them, each built from those names so the
course's value is always among them."""

from engine.course import (
    COURSE_DDPM_STEPS,
    DDPM_GUIDANCE,
    DENOISER_SIGMA,
    EULER_STEPS,
    FAST_STEPS,
    FD_MARGIN,
    FLOW_GUIDANCE,
    GUIDANCE,
    SDEDIT_I_STARTS,
    SIGMA_GRID,
    STRIDE,
    matches_course,
)

STRIDE_CHOICES = (10, 20, STRIDE, 50, 100)  # the course's loop: 99 to 10 steps
FAST_STEP_CHOICES = (3, 4, 5, 7, 10, 15, FAST_STEPS, COURSE_DDPM_STEPS, 50)  # DDIM / DPM-Solver++
FLOW_STEP_CHOICES = (5, 10, FAST_STEPS, 50, 100, EULER_STEPS)  # an ODE solver for flow matching
GAMMA_SWEEP = (0.0, 1.0, 3.0, FLOW_GUIDANCE, DDPM_GUIDANCE)  # CFG from none to the course's
GAMMA_RANGE = (0.0, 10.0, 0.5)  # a γ slider: min, max, step

__all__ = [
    "COURSE_DDPM_STEPS",
    "DDPM_GUIDANCE",
    "DENOISER_SIGMA",
    "EULER_STEPS",
    "FAST_STEPS",
    "FAST_STEP_CHOICES",
    "FD_MARGIN",
    "FLOW_GUIDANCE",
    "FLOW_STEP_CHOICES",
    "GAMMA_RANGE",
    "GAMMA_SWEEP",
    "GUIDANCE",
    "SDEDIT_I_STARTS",
    "SIGMA_GRID",
    "STRIDE",
    "STRIDE_CHOICES",
    "matches_course",
]
