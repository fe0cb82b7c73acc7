"""Check your code: run a student's own Project 5 functions against the lab's reference and name
the bug (``docs/check-your-code.md``).

- ``contract``: the functions checked, their signatures, the result types, settings and limits;
- ``lab``: ``stage_1`` and the flow ``unet`` as the notebook sees them, on the lab's models;
- ``reference`` / ``mutations``: the course's implementations and the catalogue of known mistakes;
- ``inputs``: the seeded cases; ``sandbox`` (parent) / ``child`` + ``guard`` (the student's
  process): isolation; ``compare`` / ``judge`` / ``grade``: verdicts; ``report``: table, JSON, CSV;
- ``student_model``: a student's own Part B model, sampled and scored; ``starter``: the starter file.
"""

from .contract import NAMES, CheckReport, CheckSettings, FunctionResult, Limits, parse_map, parse_only
from .grade import check_file, check_folder, check_source
from .lab import LabSpec
from .mutations import CATALOGUE, CODES
from .starter import starter_text

__all__ = [
    "CATALOGUE",
    "CODES",
    "NAMES",
    "CheckReport",
    "CheckSettings",
    "FunctionResult",
    "LabSpec",
    "Limits",
    "check_file",
    "check_folder",
    "check_source",
    "parse_map",
    "parse_only",
    "starter_text",
]
