"""Routing policies: one small module each, registered in :data:`POLICIES`.

==================  ===========================================================================
name                chooses
==================  ===========================================================================
``utility``         max ``quality - cost_usd / willingness_to_pay_usd - mu * latency_s``
``quality_floor``   the cheapest candidate predicted to clear a (calibrated) quality bar
``threshold``       strong or weak model by the predicted quality gap (RouteLLM)
``cheapest``        the lowest estimated cost
``fixed``           always one model (when eligible)
``random``          a seeded random draw
==================  ===========================================================================

All are pure: no I/O, no clock, randomness only from the ``seed`` the router passes.
"""

from turnout.policies.base import Choice, Policy
from turnout.policies.floor import QualityFloorPolicy, calibrate_quality_floor
from turnout.policies.random import RandomPolicy
from turnout.policies.simple import CheapestPolicy, FixedPolicy
from turnout.policies.threshold import ThresholdPolicy, calibrate_threshold
from turnout.policies.utility import UtilityPolicy

POLICIES: dict[str, type] = {
    "cheapest": CheapestPolicy,
    "fixed": FixedPolicy,
    "quality_floor": QualityFloorPolicy,
    "random": RandomPolicy,
    "threshold": ThresholdPolicy,
    "utility": UtilityPolicy,
}

__all__ = [
    "POLICIES",
    "CheapestPolicy",
    "Choice",
    "FixedPolicy",
    "Policy",
    "QualityFloorPolicy",
    "RandomPolicy",
    "ThresholdPolicy",
    "UtilityPolicy",
    "calibrate_quality_floor",
    "calibrate_threshold",
]
