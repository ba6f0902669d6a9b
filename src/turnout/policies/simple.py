"""Policies that need no learned predictor: ``cheapest`` and ``fixed``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from turnout.policies.base import Choice
from turnout.types import CandidateScore, RouteRequest

__all__ = ["CheapestPolicy", "FixedPolicy"]

_INF = float("inf")


def _cost_key(c: CandidateScore) -> tuple[float, float, str]:
    # Unpriced models sort last; ties broken by higher predicted quality, then id.
    return (_INF if c.cost_usd is None else c.cost_usd, -c.predicted_quality, c.model)


class CheapestPolicy:
    """Always the candidate with the lowest estimated cost (unpriced models last)."""

    name = "cheapest"

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Rank by estimated cost, ascending."""
        ranked = sorted(candidates, key=_cost_key)
        scored = tuple(
            replace(c, score=-(c.cost_usd if c.cost_usd is not None else _INF)) for c in ranked
        )
        return Choice(scored, f"cheapest eligible candidate ({ranked[0].model})")


class FixedPolicy:
    """Always ``model`` when it is eligible; otherwise the cheapest eligible candidate.

    Args:
        model: The model id to send everything to.
    """

    name = "fixed"

    def __init__(self, model: str) -> None:
        self.model = model

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Put ``model`` first, the rest by cost."""
        ranked = sorted(candidates, key=lambda c: (c.model != self.model, *_cost_key(c)))
        scored = tuple(replace(c, score=1.0 if c.model == self.model else 0.0) for c in ranked)
        if ranked[0].model == self.model:
            return Choice(scored, f"fixed policy: always {self.model}")
        return Choice(scored, f"fixed model {self.model} not eligible; cheapest instead")
