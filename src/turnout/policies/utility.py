"""``utility``: the candidate with the best predicted quality for its cost and latency.

Score of a candidate (higher is better)::

    score = predicted_quality
            - cost_usd / willingness_to_pay_usd
            - latency_penalty_per_s * latency_s

``willingness_to_pay_usd`` (the issue's lambda, as in RouterBench) is what one quality point
is worth, in USD: a candidate that costs ``dc`` USD more and is predicted ``dq`` better wins
once ``willingness_to_pay_usd > dc / dq``. Equivalently the cost penalty per USD is
``1 / willingness_to_pay_usd`` quality points. ``willingness_to_pay_usd = 0`` means quality is
worth nothing: the cheapest candidate (ties: higher predicted quality); ``inf`` means cost is
no object: the best predicted quality (ties: cheaper). ``latency_penalty_per_s`` (mu) is in
quality points per second of estimated latency. Unpriced candidates count as infinitely
expensive unless the willingness to pay is infinite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from turnout.errors import ConfigError
from turnout.policies.base import Choice
from turnout.types import CandidateScore, RouteRequest

__all__ = ["UtilityPolicy"]

_INF = float("inf")


class UtilityPolicy:
    """Maximise ``quality - cost_usd / willingness_to_pay_usd - mu * latency_s``.

    Args:
        willingness_to_pay_usd: USD one quality point is worth (>= 0; ``inf`` allowed).
        latency_penalty_per_s: Quality points lost per second of estimated latency (>= 0).

    Raises:
        ConfigError: If a parameter is negative or NaN (names the parameter and value).
    """

    name = "utility"

    def __init__(
        self, willingness_to_pay_usd: float = 1.0, latency_penalty_per_s: float = 0.0
    ) -> None:
        for field, value in (
            ("willingness_to_pay_usd", willingness_to_pay_usd),
            ("latency_penalty_per_s", latency_penalty_per_s),
        ):
            if not (isinstance(value, int | float) and value >= 0):
                raise ConfigError(f"`{field}` must be a number >= 0; got {value!r}", field=field)
        self.willingness_to_pay_usd = float(willingness_to_pay_usd)
        self.latency_penalty_per_s = float(latency_penalty_per_s)

    def score(self, c: CandidateScore) -> float:
        """The utility of one candidate (quality points; ``-inf`` if unpriced)."""
        wtp = self.willingness_to_pay_usd
        latency = self.latency_penalty_per_s * c.latency_s
        if math.isinf(wtp):
            return c.predicted_quality - latency
        if c.cost_usd is None or wtp == 0:
            return -_INF if c.cost_usd is None else -c.cost_usd
        return c.predicted_quality - c.cost_usd / wtp - latency

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Rank by utility, best first; ties by lower cost, then model id."""
        # CandidateScore(...) rather than dataclasses.replace: this is the routing hot path.
        scored = [
            CandidateScore(
                c.model,
                c.predicted_quality,
                c.cost_usd,
                c.latency_s,
                c.output_tokens,
                self.score(c),
            )
            for c in candidates
        ]
        ranked = sorted(
            scored,
            key=lambda c: (
                -c.score,
                _INF if c.cost_usd is None else c.cost_usd,
                -c.predicted_quality,
                c.model,
            ),
        )
        top = ranked[0]
        cost = "unpriced" if top.cost_usd is None else f"${top.cost_usd:.6f}"
        reason = (
            f"best utility: predicted quality {top.predicted_quality:.3f} at {cost} "
            f"(willingness to pay ${self.willingness_to_pay_usd:g} per quality point)"
        )
        return Choice(tuple(ranked), reason)
