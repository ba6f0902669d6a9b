"""Request signals: task category, difficulty, language, modality, tools, tier, caller.

Computed once per request by :func:`compute_signals`; matched by :mod:`turnout.rules`.
"""

from turnout.signals.classifier import (
    CATEGORIES,
    UNKNOWN,
    Category,
    CategoryClassifier,
    CategoryPrediction,
    default_classifier,
)
from turnout.signals.language import LANGUAGES, detect_language
from turnout.signals.signals import (
    TIER_HEADER,
    TIERS,
    Signals,
    Tier,
    compute_signals,
    parse_tier,
)
from turnout.signals.terms import prompt_terms

__all__ = [
    "CATEGORIES",
    "LANGUAGES",
    "TIERS",
    "TIER_HEADER",
    "UNKNOWN",
    "Category",
    "CategoryClassifier",
    "CategoryPrediction",
    "Signals",
    "Tier",
    "compute_signals",
    "default_classifier",
    "detect_language",
    "parse_tier",
    "prompt_terms",
]
