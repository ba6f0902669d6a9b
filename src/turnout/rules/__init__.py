"""Declarative, ordered routing rules over request signals (see :mod:`turnout.signals`).

Specs (:class:`RuleSpec`) come from the route's ``rules`` in the YAML config; validation
(:func:`check_rules`, :func:`parse_rules`) names each bad field path and value; matching
(:func:`match_rules`) is pure and explains every rule that did not match; :class:`RuleRouter`
turns the match into a decision with :class:`turnout.Router`.
"""

from turnout.rules.engine import RuleRouter, build_policy, check_rules, parse_rules
from turnout.rules.explain import explanation_lines, route_with_config
from turnout.rules.matcher import RuleMatch, RuleMiss, covers, match_rules, misses
from turnout.rules.routes import RouteLike, rule_router_for_route
from turnout.rules.spec import (
    CATEGORY_NAMES,
    LANGUAGE_NAMES,
    FloatRange,
    IntRange,
    RuleConstraints,
    RuleSpec,
    RuleWhen,
)

__all__ = [
    "CATEGORY_NAMES",
    "LANGUAGE_NAMES",
    "FloatRange",
    "IntRange",
    "RuleConstraints",
    "RuleMatch",
    "RouteLike",
    "RuleMiss",
    "RuleRouter",
    "RuleSpec",
    "RuleWhen",
    "build_policy",
    "check_rules",
    "covers",
    "explanation_lines",
    "match_rules",
    "misses",
    "parse_rules",
    "route_with_config",
    "rule_router_for_route",
]
