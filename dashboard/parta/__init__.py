"""Part A, computed: what each Part A page shows, without Streamlit.

``contract`` holds the ``PartABackend`` Protocol and its result types; ``live`` the backend that
runs a model here (``LiveBackend``: sampling and denoising; its edits in ``live_edits``, the model
helpers under both in ``live_model``); ``views`` the cheap pictures pages compute themselves. The
precomputed pack's backend is ``dashboard.pack.PackBackend``.
"""

from engine.course import SDEDIT_I_STARTS
from engine.illusions import VIEWS
from engine.packs import PART0_PROMPTS, PART0_STRIDES

from .contract import Cond, DenoiseComparison, HybridResult, NotInPack, PartABackend, Progress, step_progress
from .live import LiveBackend
from .views import ANAGRAM_DEFAULTS, forward_image, steps_of, view_frames, viewed

__all__ = ["ANAGRAM_DEFAULTS", "PART0_PROMPTS", "PART0_STRIDES", "SDEDIT_I_STARTS", "VIEWS", "Cond",
           "DenoiseComparison", "HybridResult", "LiveBackend", "NotInPack", "PartABackend", "Progress",
           "forward_image", "step_progress", "steps_of", "view_frames", "viewed"]
