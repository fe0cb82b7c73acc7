"""The "Check your code" page's dashboard side: ``logic`` (who may run code, the check, the
student's model, the pictures; no Streamlit) and ``view`` (how results look, and the Flow
matching page's "your model" block). Pages use the names below."""

from .logic import (
    CODES,
    MODEL_STEPS,
    NAMES,
    PER_DIGIT,
    SETTING,
    SPECS,
    WEIGHT_SUFFIXES,
    Gate,
    check_parse_map,
    code_key,
    gate_from_env,
    run_check,
    run_model,
    starter_text,
)
from .view import MODEL_KEY, request_context, show_model, show_report, your_model_block

__all__ = [
    "CODES",
    "MODEL_KEY",
    "MODEL_STEPS",
    "NAMES",
    "PER_DIGIT",
    "SETTING",
    "SPECS",
    "WEIGHT_SUFFIXES",
    "Gate",
    "check_parse_map",
    "code_key",
    "gate_from_env",
    "request_context",
    "run_check",
    "run_model",
    "show_model",
    "show_report",
    "starter_text",
    "your_model_block",
]
