"""``quality_floor``: the cheapest candidate whose predicted quality clears a floor.

The floor is a *realised* quality target (for example 0.75 mean score). Predicted qualities
are estimates, so the policy compares them with ``threshold`` (by default the floor itself);
:func:`calibrate_quality_floor` finds, on held-out outcomes, the least threshold at which the
traffic the policy routes reaches the floor in realised mean quality, with a margin for the
sampling noise of those outcomes (by default the one-sided 90% lower confidence bound of the
mean must clear the floor, so new traffic like the held-out prompts meets it about 9 times
in 10 instead of about half the time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from turnout.errors import ConfigError
from turnout.policies.base import Choice
from turnout.types import CandidateScore, RouteRequest

__all__ = ["QualityFloorPolicy", "calibrate_quality_floor", "floor_choices"]

_INF = float("inf")


def _unit(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ConfigError(f"`{name}` must be a number in [0, 1]; got {value!r}", field=name)
    return float(value)


class QualityFloorPolicy:
    """Cheapest candidate with ``predicted_quality >= threshold``; else the best predicted.

    Args:
        floor: Realised quality the route wants, in [0, 1].
        threshold: Predicted-quality bar in [0, 1]; ``None`` uses ``floor``. Get a calibrated
            one from :func:`calibrate_quality_floor`.

    Raises:
        ConfigError: If ``floor`` or ``threshold`` is outside [0, 1].
    """

    name = "quality_floor"

    def __init__(self, floor: float = 0.7, threshold: float | None = None) -> None:
        self.floor = _unit("floor", floor)
        self.threshold = self.floor if threshold is None else _unit("threshold", threshold)

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Clearing candidates by cost (ascending) first, then the rest by predicted quality."""

        def key(c: CandidateScore) -> tuple[int, float, float, str]:
            cost = _INF if c.cost_usd is None else c.cost_usd
            if c.predicted_quality >= self.threshold:
                return (0, cost, -c.predicted_quality, c.model)
            return (1, -c.predicted_quality, cost, c.model)

        ranked = sorted(candidates, key=key)
        scored = tuple(
            replace(c, score=1.0 if c.predicted_quality >= self.threshold else 0.0) for c in ranked
        )
        top = ranked[0]
        if top.predicted_quality >= self.threshold:
            reason = (
                f"cheapest candidate predicted to clear {self.threshold:.3f} "
                f"(predicted {top.predicted_quality:.3f})"
            )
        else:
            reason = (
                f"no candidate predicted to clear {self.threshold:.3f}; best predicted "
                f"quality instead ({top.predicted_quality:.3f})"
            )
        return Choice(scored, reason)


def floor_choices(
    quality: npt.ArrayLike, cost_usd: npt.ArrayLike, threshold: float
) -> npt.NDArray[np.intp]:
    """The column :class:`QualityFloorPolicy` picks per row (same rule, vectorised).

    Args:
        quality: Predicted quality, shape (n_prompts, n_models).
        cost_usd: Estimated cost, shape (n_prompts, n_models), USD.
        threshold: Predicted-quality bar.

    Returns:
        Chosen column per prompt, shape (n_prompts,).
    """
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    clears = q >= threshold
    cheapest = np.argmin(np.where(clears, c, np.inf), axis=1)
    best = np.argmax(q, axis=1)
    return np.asarray(np.where(clears.any(axis=1), cheapest, best), dtype=np.intp)


def calibrate_quality_floor(
    quality: npt.ArrayLike,
    realised: npt.ArrayLike,
    cost_usd: npt.ArrayLike,
    floor: float,
    *,
    confidence: float = 0.9,
    n_grid: int = 201,
) -> float:
    """The least predicted-quality threshold whose routed traffic reaches ``floor``.

    On held-out prompts (never the test split), simulate :class:`QualityFloorPolicy` at each
    threshold of a grid (quantiles of the predicted qualities, plus 0 and 1) and keep the
    smallest one, hence the cheapest traffic, whose realised mean quality clears ``floor``
    with confidence ``confidence``: the one-sided lower bound ``mean - z * sd / sqrt(n)``
    (normal approximation of the mean of the chosen cells' scores; ``z`` the standard normal
    quantile of ``confidence``, 1.28 at 0.9) must be at least ``floor``. ``confidence=0.5``
    compares the mean itself (no margin). If no threshold clears it, the threshold with the
    highest lower bound.

    Args:
        quality: Predicted quality, shape (n_prompts, n_models).
        realised: Recorded scores, same shape (no NaN in the cells that can be chosen).
        cost_usd: Estimated cost, same shape, USD.
        floor: Target realised mean quality, in [0, 1].
        confidence: Probability, in [0.5, 1), with which the realised mean on traffic like
            these prompts should clear the floor.
        n_grid: Number of quantile thresholds tried.

    Returns:
        The threshold in [0, 1] to pass to :class:`QualityFloorPolicy`.

    Raises:
        ValueError: If the shapes differ or there are no prompts.
        ConfigError: If ``floor`` is outside [0, 1] or ``confidence`` outside [0.5, 1).
    """
    floor = _unit("floor", floor)
    if not (isinstance(confidence, int | float) and 0.5 <= confidence < 1.0):
        raise ConfigError(
            f"`confidence` must be a number in [0.5, 1); got {confidence!r}", field="confidence"
        )
    z = NormalDist().inv_cdf(float(confidence))
    q = np.asarray(quality, dtype=np.float64)
    y = np.asarray(realised, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    if q.shape != y.shape or q.shape != c.shape or q.ndim != 2 or q.shape[0] == 0:
        raise ValueError(
            f"`quality`, `realised` and `cost_usd` must share one non-empty 2-d shape; "
            f"got {q.shape}, {y.shape}, {c.shape}"
        )
    grid = np.unique(np.concatenate(([0.0, 1.0], np.quantile(q, np.linspace(0, 1, n_grid)))))
    rows = np.arange(q.shape[0])
    best_t, best_q = 1.0, -_INF
    for t in grid:
        chosen = y[rows, floor_choices(q, c, float(t))]
        chosen = chosen[~np.isnan(chosen)]
        if chosen.size == 0:
            continue
        spread = float(np.std(chosen, ddof=1)) if chosen.size > 1 else 0.0
        got = float(chosen.mean()) - z * spread / np.sqrt(chosen.size)
        if got >= floor:
            return float(np.clip(t, 0.0, 1.0))
        if got > best_q:
            best_t, best_q = float(t), got
    return float(np.clip(best_t, 0.0, 1.0))
