"""Declarative routing rules as they appear in the YAML config (pydantic, ``extra="forbid"``).

A route may list ordered ``rules``; the first whose ``when`` matches the request's
:class:`~turnout.signals.Signals` picks the candidates, policy and constraints. A rule with
an empty ``when`` is a catch-all (the default rule)::

    rules:
      - name: hard-reasoning
        description: complex reasoning and maths go to the strongest model
        when: {category: [reasoning, math], difficulty: {min: 0.5}}
        candidates: [claude-sonnet-4-5]
        policy: fixed
        params: {model: claude-sonnet-4-5}
      - name: batch
        when: {tier: [batch]}
        candidates: [llama-3.1-8b-instant, gpt-4o-mini]
        policy: cheapest
      - name: default
        when: {}

Fields a rule leaves out (``candidates``, ``policy``) come from its route.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from turnout.signals.classifier import CATEGORIES, UNKNOWN
from turnout.signals.language import LANGUAGES

__all__ = [
    "CATEGORY_NAMES",
    "LANGUAGE_NAMES",
    "FloatRange",
    "IntRange",
    "RuleConstraints",
    "RuleSpec",
    "RuleWhen",
]

#: Category names a rule may name: the classifier's categories and ``"unknown"``.
CATEGORY_NAMES: tuple[str, ...] = (*CATEGORIES, UNKNOWN)
#: Language codes a rule may name.
LANGUAGE_NAMES: tuple[str, ...] = (*LANGUAGES, "unknown")

CategoryName = Literal[
    "code",
    "math",
    "reasoning",
    "knowledge_qa",
    "creative_writing",
    "summarisation",
    "extraction",
    "translation",
    "chat",
    "unknown",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatRange(_Strict):
    """A closed interval; a missing bound is open on that side.

    Raises:
        ValidationError: If ``min > max`` (the range could never hold a value).
    """

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> FloatRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"empty range: min {self.min} > max {self.max}")
        return self

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def covers(self, other: FloatRange) -> bool:
        """Whether every value in ``other`` lies in this range."""
        lo = self.min is None or (other.min is not None and other.min >= self.min)
        hi = self.max is None or (other.max is not None and other.max <= self.max)
        return lo and hi

    def describe(self) -> str:
        """The range in words, e.g. ``"[0.5, 1]"`` or ``">= 0.5"``."""
        if self.min is not None and self.max is not None:
            return f"[{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f">= {self.min:g}"
        return f"<= {self.max:g}" if self.max is not None else "any"


class IntRange(FloatRange):
    """A closed interval of non-negative integers (token counts, turns)."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class UnitRange(FloatRange):
    """A closed interval inside [0, 1] (difficulty, confidence)."""

    min: float | None = Field(default=None, ge=0, le=1)
    max: float | None = Field(default=None, ge=0, le=1)


class RuleWhen(_Strict):
    """Conditions on the request's signals.

    All given conditions must hold (AND); a list matches any of its values (OR). An empty
    ``when`` matches every request.

    Attributes:
        category: Task categories (``"unknown"`` included).
        min_category_confidence: Least classifier confidence, in [0, 1].
        difficulty: Range of the difficulty estimate, within [0, 1].
        tier: ``interactive`` and/or ``batch``; a request with no tier matches neither.
        images: ``true``: only requests with images; ``false``: only requests without.
        tools: ``true``: only requests offering tools; ``false``: only requests without.
        structured_output: ``true``: only requests asking for JSON output; ``false``: not.
        language: ISO 639-1 codes (or ``"unknown"``).
        input_tokens: Range of estimated prompt tokens.
        conversation_depth: Range of the number of user turns.
        metadata: Caller metadata key -> accepted values, e.g. ``{team: [support]}``; every
            key given must be present with one of its values.
    """

    category: list[CategoryName] | None = Field(default=None, min_length=1)
    min_category_confidence: float | None = Field(default=None, ge=0, le=1)
    difficulty: UnitRange | None = None
    tier: list[Literal["interactive", "batch"]] | None = Field(default=None, min_length=1)
    images: bool | None = None
    tools: bool | None = None
    structured_output: bool | None = None
    language: list[str] | None = Field(default=None, min_length=1)
    input_tokens: IntRange | None = None
    conversation_depth: IntRange | None = None
    metadata: dict[str, list[str]] | None = Field(default=None, min_length=1)

    @field_validator("language")
    @classmethod
    def _known_languages(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            bad = [v for v in value if v not in LANGUAGE_NAMES]
            if bad:
                raise ValueError(f"unknown language code(s) {bad}; known: {sorted(LANGUAGE_NAMES)}")
        return value

    @field_validator("metadata")
    @classmethod
    def _non_empty_values(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for key, accepted in (value or {}).items():
            if not accepted:
                raise ValueError(f"metadata key {key!r} lists no accepted value: never matches")
        return value

    @property
    def is_catch_all(self) -> bool:
        """Whether this ``when`` sets no condition at all."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


class RuleConstraints(_Strict):
    """Hard constraints a rule adds; where the route also sets one, the stricter applies.

    Attributes:
        max_cost_usd: Per-request cost ceiling, USD (estimated cost).
        max_latency_s: Latency SLO, seconds (TTFT prior + output tokens / speed).
        max_ttft_s: Time-to-first-token SLO, seconds (the card's TTFT prior).
    """

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_latency_s: float | None = Field(default=None, gt=0)
    max_ttft_s: float | None = Field(default=None, gt=0)


class RuleSpec(_Strict):
    """One declarative rule.

    Attributes:
        name: Unique within the route; a label only (renaming never changes a decision).
        description: What the rule is for, in the operator's words.
        when: The conditions (see :class:`RuleWhen`); empty = catch-all.
        candidates: Catalog model ids; ``None`` = the route's candidates.
        policy: A key of ``turnout.policies.POLICIES``; ``None`` = the route's policy.
        params: Keyword arguments of ``policy`` (only with ``policy``).
        constraints: Extra hard constraints for requests this rule matches.
    """

    name: str = Field(min_length=1)
    description: str = ""
    when: RuleWhen = RuleWhen()
    candidates: list[str] | None = Field(default=None, min_length=1)
    policy: str | None = None
    params: dict[str, Any] | None = None
    constraints: RuleConstraints = RuleConstraints()

    @model_validator(mode="after")
    def _params_need_policy(self) -> RuleSpec:
        if self.params is not None and self.policy is None:
            raise ValueError("`params` needs `policy` (params of the route's policy stay there)")
        return self
