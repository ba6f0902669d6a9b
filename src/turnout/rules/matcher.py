"""Matching rules against signals, with the reason each earlier rule did not match.

Pure functions: :func:`match_rules` takes the ordered rules and one request's
:class:`~turnout.signals.Signals` and returns the first rule that matches plus, for every
rule before it, every condition that failed. :func:`shadowing_rule` finds rules that can
never match because an earlier rule already takes every request they would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turnout.rules.spec import CATEGORY_NAMES, FloatRange, IntRange, RuleSpec, RuleWhen
from turnout.signals.signals import Signals

__all__ = ["RuleMatch", "RuleMiss", "covers", "match_rules", "misses", "shadowing_rule"]


@dataclass(frozen=True, slots=True)
class RuleMiss:
    """An earlier rule that did not match, and why (one phrase per failed condition)."""

    rule: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rule": self.rule, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The outcome of matching one request.

    Attributes:
        index: Position of the matched rule, or ``None`` if no rule matched (the route's own
            candidates and policy then apply).
        rule: The matched rule, or ``None``.
        skipped: Every rule before the match (all rules if none matched), with its reasons.
    """

    index: int | None
    rule: RuleSpec | None
    skipped: tuple[RuleMiss, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``RouteDecision.rule`` and ``POST /v1/route``."""
        return {
            "matched": self.rule.name if self.rule else None,
            "index": self.index,
            "description": self.rule.description
            if self.rule
            else "no rule matched: route default candidates and policy",
            "not_matched": [m.to_dict() for m in self.skipped],
        }


def _listed(values: Sequence[str]) -> str:
    return " or ".join(values)


def misses(when: RuleWhen, s: Signals) -> list[str]:
    """Every condition of ``when`` that ``s`` fails, in words; empty means it matches.

    Args:
        when: A rule's conditions.
        s: One request's signals.

    Returns:
        One phrase per failed condition, e.g. ``"category is chat, wants reasoning or math"``.
    """
    out: list[str] = []
    if when.category is not None and s.category not in when.category:
        out.append(
            f"category is {s.category} (confidence {s.category_confidence:.2f}), "
            f"wants {_listed(when.category)}"
        )
    if (
        when.min_category_confidence is not None
        and s.category_confidence < when.min_category_confidence
    ):
        out.append(
            f"category confidence {s.category_confidence:.2f} < {when.min_category_confidence:g}"
        )
    if when.difficulty is not None and not when.difficulty.contains(s.difficulty):
        out.append(f"difficulty {s.difficulty:.2f} not in {when.difficulty.describe()}")
    if when.tier is not None and s.tier not in when.tier:
        out.append(f"tier is {s.tier or 'unset'}, wants {_listed(when.tier)}")
    for name, value, wants in (
        ("images", s.has_images, when.images),
        ("tools", s.tools, when.tools),
        ("structured_output", s.structured_output, when.structured_output),
    ):
        if wants is not None and value != wants:
            out.append(f"{name} is {str(value).lower()}, wants {str(wants).lower()}")
    if when.language is not None and s.language not in when.language:
        out.append(f"language is {s.language}, wants {_listed(when.language)}")
    if when.input_tokens is not None and not when.input_tokens.contains(s.input_tokens):
        out.append(f"input_tokens {s.input_tokens} not in {when.input_tokens.describe()}")
    if when.conversation_depth is not None and not when.conversation_depth.contains(
        s.conversation_depth
    ):
        out.append(
            f"conversation_depth {s.conversation_depth} not in {when.conversation_depth.describe()}"
        )
    for key, accepted in (when.metadata or {}).items():
        given = s.metadata.get(key)
        if given not in accepted:
            got = "absent" if given is None else repr(given)
            out.append(f"metadata {key} is {got}, wants {_listed(accepted)}")
    return out


def match_rules(rules: Sequence[RuleSpec], signals: Signals) -> RuleMatch:
    """The first rule whose conditions hold, and why each earlier rule did not.

    Args:
        rules: Ordered rules (first match wins).
        signals: The request's signals.

    Returns:
        The match; ``index`` and ``rule`` are ``None`` if no rule matched.
    """
    skipped: list[RuleMiss] = []
    for i, rule in enumerate(rules):
        reasons = misses(rule.when, signals)
        if not reasons:
            return RuleMatch(i, rule, tuple(skipped))
        skipped.append(RuleMiss(rule.name, tuple(reasons)))
    return RuleMatch(None, None, tuple(skipped))


_UNIT = FloatRange(min=0.0, max=1.0)


def _range_covers(a: FloatRange | None, b: FloatRange | None, domain: FloatRange) -> bool:
    if a is None:
        return True
    bounded_a = FloatRange(
        min=domain.min if a.min is None else a.min, max=domain.max if a.max is None else a.max
    )
    bounded_b = (
        domain
        if b is None
        else FloatRange(
            min=domain.min if b.min is None else b.min, max=domain.max if b.max is None else b.max
        )
    )
    return bounded_a.covers(bounded_b)


def _set_covers(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    return a is None or (b is not None and set(b) <= set(a))


def covers(a: RuleWhen, b: RuleWhen) -> bool:
    """Whether every request matching ``b`` also matches ``a`` (conservative).

    A ``True`` is always right; a ``False`` may miss some subtle overlaps (conditions that
    only jointly cover each other), so validation never rejects a rule wrongly.
    """
    category_a = None if a.category and set(a.category) >= set(CATEGORY_NAMES) else a.category
    conf_ok = (
        not a.min_category_confidence
        or (b.min_category_confidence or 0.0) >= a.min_category_confidence
    )
    bools_ok = all(
        wa is None or wa == wb
        for wa, wb in (
            (a.images, b.images),
            (a.tools, b.tools),
            (a.structured_output, b.structured_output),
        )
    )
    metadata_ok = a.metadata is None or (
        b.metadata is not None
        and all(k in b.metadata and set(b.metadata[k]) <= set(v) for k, v in a.metadata.items())
    )
    return (
        _set_covers(category_a, b.category)
        and conf_ok
        and _range_covers(a.difficulty, b.difficulty, _UNIT)
        and _set_covers(a.tier, b.tier)
        and bools_ok
        and _set_covers(a.language, b.language)
        and _range_covers(a.input_tokens, b.input_tokens, IntRange(min=0))
        and _range_covers(a.conversation_depth, b.conversation_depth, IntRange(min=0))
        and metadata_ok
    )


def shadowing_rule(rules: Sequence[RuleSpec], index: int) -> int | None:
    """The first earlier rule that takes every request ``rules[index]`` would, if any."""
    for i in range(index):
        if covers(rules[i].when, rules[index].when):
            return i
    return None
