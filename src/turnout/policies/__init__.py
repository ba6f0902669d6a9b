"""Routing policies: one small module each, registered in :data:`POLICIES`."""

from turnout.policies.base import Choice, Policy
from turnout.policies.simple import CheapestPolicy, FixedPolicy

POLICIES: dict[str, type] = {
    "cheapest": CheapestPolicy,
    "fixed": FixedPolicy,
}

__all__ = ["POLICIES", "CheapestPolicy", "Choice", "FixedPolicy", "Policy"]
