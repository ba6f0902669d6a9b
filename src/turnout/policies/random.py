"""``random``: a seeded uniform (or weighted) draw among the eligible candidates.

A baseline, and a way to explore. Its only randomness is the ``seed`` the router passes
(derived from the router's ``random_state`` and the request text), so the same request gets
the same model on every replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from turnout.errors import ConfigError
from turnout.policies.base import Choice
from turnout.types import CandidateScore, RouteRequest

__all__ = ["RandomPolicy"]

_INF = float("inf")


class RandomPolicy:
    """Draw one candidate at random (seeded); the rest follow by cost.

    Args:
        weights: Optional relative weight per model id (>= 0); models not named weigh 1.
            ``None``: uniform.

    Raises:
        ConfigError: If a weight is negative or not a number.
    """

    name = "random"

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        for model, w in (weights or {}).items():
            if not (isinstance(w, int | float) and w >= 0):
                raise ConfigError(
                    f"`weights[{model!r}]` must be a number >= 0; got {w!r}", field="weights"
                )
        self.weights = dict(weights) if weights is not None else None

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Draw the first candidate with ``numpy.random.default_rng(seed)``."""
        ordered = sorted(candidates, key=lambda c: c.model)
        w = np.array([(self.weights or {}).get(c.model, 1.0) for c in ordered], dtype=np.float64)
        if w.sum() <= 0:
            w = np.ones_like(w)
        pick = int(np.random.default_rng(seed).choice(len(ordered), p=w / w.sum()))
        first = ordered[pick]
        rest = sorted(
            (c for c in ordered if c is not first),
            key=lambda c: (_INF if c.cost_usd is None else c.cost_usd, c.model),
        )
        ranked = (replace(first, score=1.0), *(replace(c, score=0.0) for c in rest))
        return Choice(ranked, f"random draw (seed {seed}) among {len(ordered)} candidates")
