"""The policy seam: given scored candidates, rank them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from turnout.types import CandidateScore, RouteRequest

__all__ = ["Choice", "Policy"]


@dataclass(frozen=True, slots=True)
class Choice:
    """A policy's answer.

    Attributes:
        ranked: Every candidate it was given, best first, each with its policy ``score`` set.
        reason: One line saying why the first one was chosen.
    """

    ranked: tuple[CandidateScore, ...]
    reason: str


@runtime_checkable
class Policy(Protocol):
    """Chooses among eligible candidates. Pure: no I/O, no clock, no globals.

    Randomness comes only from ``seed``, which the router derives from its ``random_state`` and
    the request text, so replay reproduces traffic exactly.
    """

    name: str

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Rank ``candidates`` (non-empty) for ``request``."""
        ...
