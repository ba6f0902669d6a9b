"""Baselines every router is compared with, and the summary of one router's curve.

* **single models**: always the same model; the *best single* model is the one of highest
  mean quality on the held-out prompts (the cheaper one on a tie), the *weak* one is the
  cheapest (RouteLLM's strong / weak pair);
* **random mix** (RouterBench's *zero router*): mixing two models at random reaches every
  point of the segment between them, so its curve is the non-decreasing convex hull of the
  single models' points;
* **oracle**: per prompt, the cheapest model with the best recorded score (a limit, not a
  target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from turnout.evaluation.datasets import CostKind, OutcomeTable
from turnout.evaluation.metrics import (
    aiq,
    apgr,
    bootstrap_intervals,
    cost_share,
    cpt,
    non_decreasing_convex_hull,
    oracle_choices,
    per_task_breakdown,
    pgr,
    savings_at_quality,
)
from turnout.evaluation.replay import FloatArray, RouterCurve, choice_outcomes, outcomes_of
from turnout.evaluation.splits import top_level_task

__all__ = ["Baselines", "ModelPoint", "RouterSummary", "baselines", "summarize"]


@dataclass(frozen=True, slots=True)
class ModelPoint:
    """A point of the cost-quality plane: mean quality and mean cost per prompt (USD)."""

    name: str
    quality: float
    cost_usd: float


@dataclass(frozen=True, eq=False)
class Baselines:
    """Single models, the random mix and the oracle on one table.

    Attributes:
        models: Every single model, in table order.
        best: The best single model (strong).
        weak: The cheapest single model (weak).
        oracle: The oracle's point.
        zero_cost_usd: The random mix's hull vertices, costs in USD, shape (h,).
        zero_quality: Its qualities, shape (h,).
        cost_min_usd: Mean cost of the cheapest single model.
        cost_max_usd: Mean cost of the dearest single model.
        best_index: Column of ``best`` in the table.
        weak_index: Column of ``weak`` in the table.
    """

    models: tuple[ModelPoint, ...]
    best: ModelPoint
    weak: ModelPoint
    oracle: ModelPoint
    zero_cost_usd: FloatArray
    zero_quality: FloatArray
    cost_min_usd: float
    cost_max_usd: float
    best_index: int
    weak_index: int


def baselines(table: OutcomeTable) -> Baselines:
    """Compute the baselines of ``table`` (use the held-out part).

    Raises:
        ValueError: If the table has no prompts.
    """
    if table.n_prompts == 0:
        raise ValueError("baselines need at least one prompt")
    n, m = table.n_prompts, table.n_models
    fixed = np.repeat(np.arange(m)[:, None], n, axis=1)
    quality, cost = outcomes_of(table, fixed)
    models = tuple(
        ModelPoint(name, float(q), float(c))
        for name, q, c in zip(table.models, quality, cost, strict=True)
    )
    best_index = int(min(range(m), key=lambda j: (-quality[j], cost[j], j)))
    weak_index = int(min(range(m), key=lambda j: (cost[j], -quality[j], j)))
    oracle_q, oracle_c = outcomes_of(table, oracle_choices(table.scores, table.cost_usd))
    zc, zq = non_decreasing_convex_hull(cost, quality)
    return Baselines(
        models=models,
        best=models[best_index],
        weak=models[weak_index],
        oracle=ModelPoint("oracle", float(oracle_q[0]), float(oracle_c[0])),
        zero_cost_usd=zc,
        zero_quality=zq,
        cost_min_usd=float(np.nanmin(cost)),
        cost_max_usd=float(np.nanmax(cost)),
        best_index=best_index,
        weak_index=weak_index,
    )


@dataclass(frozen=True, eq=False)
class RouterSummary:
    """The metrics of one router on one table (see :mod:`turnout.evaluation.metrics`).

    Shares (``cpt50``, ``cpt80``) are fractions in [0, 1]; ``savings_*`` are fractions of the
    best single model's cost (NaN: the curve never reaches that quality).

    Attributes:
        name: The router's label.
        apgr: APGR (RouteLLM); NaN when the best single model is also the cheapest.
        cpt50: CPT(50%): least share of strong calls reaching PGR 0.5.
        cpt80: CPT(80%).
        aiq: AIQ (RouterBench), cost normalised over the single models' cost range.
        savings_at_parity: Savings at the best single model's quality.
        savings_at_95: Savings at 95% of its quality.
        savings_at_97: Savings at 97% of its quality.
        max_quality: Highest mean quality on the curve.
        cost_kind: ``"recorded"``, ``"modelled"`` or ``"mixed"`` costs.
        share_kind: ``"calls"`` (two models: share of calls to the strong model) or
            ``"cost"`` (more: cost-normalised, see :func:`~turnout.evaluation.metrics.cost_share`).
        curve: The curve (``None`` for the random mix, which has no choices).
        operating_point: Index of the curve point the per-task breakdown describes: the
            cheapest at parity, else at 95%, else the one of highest quality.
        per_task: Per top-level task: ``(n, quality, cost_usd, best_quality, best_cost_usd)``.
        points: ``(willingness_to_pay, quality, cost_usd, strong_share)`` per point.
        ci95: 95% percentile-bootstrap intervals over the held-out prompts, ``{metric: (low,
            high)}`` for the metrics in :data:`~turnout.evaluation.metrics.BOOTSTRAP_METRICS`
            (empty for the random mix or when a chosen cell has no score); see
            :func:`~turnout.evaluation.metrics.bootstrap_intervals`.
    """

    name: str
    apgr: float
    cpt50: float
    cpt80: float
    aiq: float
    savings_at_parity: float
    savings_at_95: float
    savings_at_97: float
    max_quality: float
    cost_kind: CostKind
    share_kind: str
    curve: RouterCurve | None = None
    operating_point: int = -1
    per_task: dict[str, tuple[int, float, float, float, float]] = field(default_factory=dict)
    points: tuple[tuple[float, float, float, float], ...] = ()
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)


def _strong_share(
    curve: RouterCurve | None, cost_usd: FloatArray, base: Baselines, n_models: int
) -> tuple[FloatArray, str]:
    if curve is not None and n_models == 2:
        return curve.call_share[:, base.best_index].astype(np.float64), "calls"
    return cost_share(cost_usd, base.weak.cost_usd, base.best.cost_usd), "cost"


def summarize(
    name: str,
    quality: FloatArray,
    cost_usd: FloatArray,
    table: OutcomeTable,
    base: Baselines,
    curve: RouterCurve | None = None,
) -> RouterSummary:
    """All metrics of one cost-quality curve on ``table`` against ``base``.

    Args:
        name: Label.
        quality: Mean quality per point, shape (k,).
        cost_usd: Mean cost per prompt per point, shape (k,), USD.
        table: The held-out outcomes the curve was measured on.
        base: ``baselines(table)``.
        curve: The replayed curve, for call shares and the per-task breakdown.
    """
    share, share_kind = _strong_share(curve, cost_usd, base, table.n_models)
    gap = pgr(quality, base.weak.quality, base.best.quality)
    defined = base.best_index != base.weak_index and bool(np.isfinite(gap).all())
    q_best, c_best = base.best.quality, base.best.cost_usd
    savings = [savings_at_quality(cost_usd, quality, f * q_best, c_best) for f in (1, 0.95, 0.97)]
    span = base.cost_max_usd > base.cost_min_usd
    summary_aiq = aiq(cost_usd, quality, base.cost_min_usd, base.cost_max_usd) if span else math.nan
    operating, per_task, ci95 = -1, {}, {}
    if curve is not None:
        ci95 = _intervals(curve, table, base.best_index)
        operating = _operating_point(quality, cost_usd, q_best)
        tasks = np.array([top_level_task(t) for t in table.tasks])
        per_task = per_task_breakdown(
            tasks, table.scores, table.cost_usd, curve.choices[operating], base.best_index
        )
    wtp = curve.willingness_to_pay if curve is not None else np.full(len(quality), math.nan)
    return RouterSummary(
        name=name,
        apgr=apgr(share, gap) if defined else math.nan,
        cpt50=cpt(share, gap, 0.5) if defined else math.nan,
        cpt80=cpt(share, gap, 0.8) if defined else math.nan,
        aiq=summary_aiq,
        savings_at_parity=savings[0],
        savings_at_95=savings[1],
        savings_at_97=savings[2],
        max_quality=float(np.nanmax(quality)),
        cost_kind=table.cost_kind,
        share_kind=share_kind,
        curve=curve,
        operating_point=operating,
        per_task=per_task,
        points=tuple(
            (float(w), float(q), float(c), float(s))
            for w, q, c, s in zip(wtp, quality, cost_usd, share, strict=True)
        ),
        ci95=ci95,
    )


def _intervals(
    curve: RouterCurve, table: OutcomeTable, best_index: int
) -> dict[str, tuple[float, float]]:
    point_scores, point_cost = choice_outcomes(table, curve.choices)
    ref_scores, ref_cost = table.scores[:, best_index], table.cost_usd[:, best_index]
    if not all(np.isfinite(a).all() for a in (point_scores, point_cost, ref_scores, ref_cost)):
        return {}
    return bootstrap_intervals(point_scores, point_cost, ref_scores, ref_cost)


def _operating_point(quality: FloatArray, cost_usd: FloatArray, q_best: float) -> int:
    for target in (q_best, 0.95 * q_best):
        ok = np.flatnonzero(quality >= target - 1e-12)
        if ok.size:
            return int(ok[np.argmin(cost_usd[ok])])
    return int(np.nanargmax(quality))
