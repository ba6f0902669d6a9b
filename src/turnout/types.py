"""Plain, frozen value types that cross turnout's seams.

``RouteRequest`` goes into :meth:`turnout.Router.route`; ``RouteDecision`` comes out. ``Usage``
is the gateway's one internal form of token usage, whatever the provider reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CandidateScore", "Removal", "RouteDecision", "RouteRequest", "Usage"]


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the router needs to know about one request.

    Build it with :func:`turnout.features.route_request_from_chat` from an OpenAI chat body,
    or directly.

    Attributes:
        text: All text of the request (system, user, assistant and tool turns), joined.
        prompt: The text the quality predictor reads: the last user turn(s).
        input_tokens: Estimated prompt tokens (offline tokenizer).
        max_output_tokens: The caller's ``max_tokens`` / ``max_completion_tokens``, if given.
        required_capabilities: Capabilities the request needs (``"vision"``, ``"tools"``,
            ``"json_schema"``, ``"reasoning"``).
        allowed_models: If set, only these model ids may be chosen.
        max_cost_usd: If set, candidates whose estimated cost exceeds it are removed.
        max_latency_s: Latency SLO: candidates whose estimated total latency exceeds it are removed.
        max_ttft_s: TTFT SLO: candidates whose prior time to first token exceeds it are removed.
        tier: ``"interactive"`` or ``"batch"`` or ``None``.
        metadata: Caller metadata (key id, team, ...), never used to reach an upstream.
    """

    text: str = ""
    prompt: str = ""
    input_tokens: int = 0
    max_output_tokens: int | None = None
    required_capabilities: frozenset[str] = frozenset()
    allowed_models: frozenset[str] | None = None
    max_cost_usd: float | None = None
    max_latency_s: float | None = None
    max_ttft_s: float | None = None
    tier: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """The router's estimates for one candidate model.

    Attributes:
        model: Model id.
        predicted_quality: Expected quality in [0, 1].
        cost_usd: Estimated cost of this request on this model, USD (modelled, not recorded);
            ``None`` if the model is unpriced.
        latency_s: Estimated total latency, seconds (TTFT prior + output tokens / speed).
        output_tokens: Estimated output tokens.
        score: The policy's score for this candidate (higher is better); policies define it.
    """

    model: str
    predicted_quality: float
    cost_usd: float | None
    latency_s: float
    output_tokens: float
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class Removal:
    """A candidate removed by a hard constraint, with the reason in words."""

    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The router's answer for one request.

    Attributes:
        model: The chosen model id.
        fallbacks: Other eligible models, best first; the gateway walks them on failure.
        candidates: Estimates for every eligible candidate, in ranked order (chosen first).
        removed: Candidates removed by hard constraints, each with its reason.
        policy: Name of the policy that chose.
        reason: One line saying why this model.
        route: The route alias the request came in on, if any.
        signals: Request signals the decision was based on (category, difficulty, ...).
        rule: The declarative rule that set candidates and policy (``turnout.rules``): its
            name and, for each earlier rule, why it did not match; empty without rules.
    """

    model: str
    fallbacks: tuple[str, ...]
    candidates: tuple[CandidateScore, ...]
    removed: tuple[Removal, ...]
    policy: str
    reason: str
    route: str | None = None
    signals: Mapping[str, Any] = field(default_factory=dict)
    rule: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ranked(self) -> tuple[str, ...]:
        """The chosen model followed by the fallbacks."""
        return (self.model, *self.fallbacks)

    def candidate(self, model: str) -> CandidateScore:
        """The estimates for ``model``.

        Raises:
            KeyError: If ``model`` was not an eligible candidate.
        """
        for c in self.candidates:
            if c.model == model:
                return c
        raise KeyError(model)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole decision."""
        return {
            "route": self.route,
            "model": self.model,
            "fallbacks": list(self.fallbacks),
            "policy": self.policy,
            "reason": self.reason,
            "candidates": [
                {
                    "model": c.model,
                    "predicted_quality": c.predicted_quality,
                    "cost_usd": c.cost_usd,
                    "latency_s": c.latency_s,
                    "output_tokens": c.output_tokens,
                    "score": c.score,
                }
                for c in self.candidates
            ],
            "removed": [{"model": r.model, "reason": r.reason} for r in self.removed],
            "signals": dict(self.signals),
            "rule": dict(self.rule),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage in turnout's one internal form, normalised from any provider.

    Attributes:
        input_tokens: All prompt tokens, cached reads and cache writes included.
        cached_input_tokens: Of ``input_tokens``, those read from the prompt cache.
        cache_write_input_tokens: Of ``input_tokens``, those written to the prompt cache.
        output_tokens: All generated tokens, reasoning tokens included.
        reasoning_tokens: Of ``output_tokens``, those spent on hidden reasoning.
        estimated: True when the upstream reported no usage and turnout counted the tokens.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens
