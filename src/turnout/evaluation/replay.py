"""Replay a :class:`turnout.Router` over recorded outcomes, with the code that serves traffic.

Replay predicts quality and output tokens for all held-out prompts in one batch
(:meth:`Router.predict_quality`, :meth:`Router.predict_output_tokens`), then calls
:meth:`Router.route` once per prompt with those rows, exactly as the gateway would decide.
The chosen model's *recorded* score is the quality, and the table's cost of that
(prompt, model) cell (recorded, or modelled; see :mod:`turnout.evaluation.datasets`) is the
cost. No provider is called.

:func:`sweep` replays one router under a grid of willingness-to-pay values of the ``utility``
policy, from always-the-cheapest to always-the-best-predicted, to draw its cost-quality curve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from turnout.evaluation.datasets import OutcomeTable, concat_tables
from turnout.evaluation.metrics import cheapest_point_reaching
from turnout.features import count_message_tokens
from turnout.policies.base import Policy
from turnout.router import Router
from turnout.types import RouteRequest

__all__ = [
    "RouterCurve",
    "choice_outcomes",
    "operating_point",
    "outcomes_of",
    "replay",
    "requests_for",
    "sweep",
    "sweep_parts",
    "willingness_grid",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
PolicyFactory = Callable[[float], Policy]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class RouterCurve:
    """A router's cost-quality curve on one table.

    Attributes:
        name: The router's label.
        willingness_to_pay: The knob of each point, shape (k,), USD per quality point
            (NaN for points that are not a willingness to pay).
        choices: Chosen column of the table per point and prompt, shape (k, n_prompts).
        quality: Mean recorded quality of the choices per point, shape (k,).
        cost_usd: Mean cost per prompt of the choices per point, shape (k,), USD.
        call_share: Share of prompts sent to each model per point, shape (k, n_models).
    """

    name: str
    willingness_to_pay: FloatArray
    choices: IntArray
    quality: FloatArray
    cost_usd: FloatArray
    call_share: FloatArray

    @classmethod
    def from_choices(
        cls,
        name: str,
        table: OutcomeTable,
        choices: npt.ArrayLike,
        willingness_to_pay: npt.ArrayLike | None = None,
    ) -> RouterCurve:
        """Build a curve from chosen columns of shape (k, n_prompts)."""
        ch = np.atleast_2d(np.asarray(choices, dtype=np.intp))
        quality, cost = outcomes_of(table, ch)
        share = np.stack([np.bincount(row, minlength=table.n_models) for row in ch]) / max(
            ch.shape[1], 1
        )
        wtp = (
            np.full(len(ch), np.nan)
            if willingness_to_pay is None
            else np.asarray(willingness_to_pay, dtype=np.float64)
        )
        return cls(name, wtp, ch, quality, cost, share.astype(np.float64))


def outcomes_of(table: OutcomeTable, choices: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Mean recorded quality and mean cost per prompt of chosen columns.

    Args:
        table: The outcomes.
        choices: Chosen column per prompt, shape (n_prompts,) or (k, n_prompts).

    Returns:
        ``(quality, cost_usd)``, each of shape (k,) (or scalars' arrays of shape (1,)).
        A chosen cell without a recorded score counts as NaN and is left out of the mean.
    """
    scores, costs = choice_outcomes(table, choices)
    valid = ~np.isnan(scores)
    count = valid.sum(axis=1).astype(np.float64)
    count[count == 0] = np.nan
    quality = np.where(valid, scores, 0.0).sum(axis=1) / count
    cost = np.where(valid, costs, 0.0).sum(axis=1) / count
    return quality.astype(np.float64), cost.astype(np.float64)


def choice_outcomes(table: OutcomeTable, choices: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Recorded quality and cost of chosen columns, per prompt.

    Args:
        table: The outcomes.
        choices: Chosen column per prompt, shape (n_prompts,) or (k, n_prompts).

    Returns:
        ``(scores, cost_usd)``, each of shape (k, n_prompts) (k = 1 for one row of choices);
        NaN where the chosen cell has no recorded score.
    """
    ch = np.atleast_2d(np.asarray(choices, dtype=np.intp))
    rows = np.arange(ch.shape[1])
    return table.scores[rows, ch], table.cost_usd[rows, ch]


def operating_point(
    curve: RouterCurve, table: OutcomeTable, share: float, *, confidence: float
) -> tuple[int, bool]:
    """The cheapest point of ``curve`` reaching ``share`` of the best single model, with a margin.

    The best single model is the column of ``table`` with the highest mean score; the test is
    :func:`turnout.evaluation.metrics.cheapest_point_reaching` on the curve's recorded outcomes.

    Args:
        curve: A curve replayed on ``table`` (``curve.choices`` of shape (k, n_prompts)).
        table: The outcomes the curve was measured on.
        share: Share of the best single model's mean quality to reach, in (0, 1].
        confidence: In [0.5, 1).

    Returns:
        ``(index of the point, whether it reaches the target)``.
    """
    scores, cost = choice_outcomes(table, curve.choices)
    best = int(np.nanargmax(np.nanmean(table.scores, axis=0)))
    return cheapest_point_reaching(
        scores, cost, table.scores[:, best], share, confidence=confidence
    )


def requests_for(prompts: Sequence[str]) -> list[RouteRequest]:
    """One :class:`RouteRequest` per prompt, as the gateway builds it for one user message."""
    return [RouteRequest(text=p, prompt=p, input_tokens=count_message_tokens([p])) for p in prompts]


def _columns(router: Router, table: OutcomeTable) -> dict[str, int]:
    missing = [m for m in router.candidates if m not in table.models]
    if missing:
        raise ValueError(
            f"router candidates {missing} have no recorded outcomes in the table "
            f"(models: {list(table.models)})"
        )
    return {m: table.models.index(m) for m in router.candidates}


def replay(
    router: Router,
    table: OutcomeTable,
    *,
    requests: Sequence[RouteRequest] | None = None,
    quality: Sequence[Sequence[float]] | None = None,
    output_tokens: Sequence[Sequence[float]] | None = None,
) -> IntArray:
    """Route every prompt of ``table`` with ``router.route`` and return the chosen columns.

    Args:
        router: The router; its candidates must be columns of ``table``.
        table: The held-out outcomes.
        requests: Prebuilt requests (see :func:`requests_for`); built if ``None``.
        quality: Predicted quality, shape (n_prompts, n_candidates); predicted if ``None``.
        output_tokens: Predicted output tokens, same shape; predicted if ``None``.

    Returns:
        Chosen column of ``table.models`` per prompt, shape (n_prompts,).

    Raises:
        ValueError: If a candidate of the router is not a column of the table.
        NoEligibleModelError: If the router's constraints remove every candidate.
    """
    col = _columns(router, table)
    reqs = requests if requests is not None else requests_for(table.prompts)
    q = quality if quality is not None else router.predict_quality(table.prompts)
    out = (
        output_tokens if output_tokens is not None else router.predict_output_tokens(table.prompts)
    )
    return np.fromiter(
        (
            col[router.route(r, quality=q[i], output_tokens=out[i]).model]
            for i, r in enumerate(reqs)
        ),
        dtype=np.intp,
        count=len(reqs),
    )


def willingness_grid(
    quality: npt.ArrayLike, cost_usd: npt.ArrayLike, n_points: int = 48
) -> FloatArray:
    """Willingness-to-pay values at which a utility router's choices change, evenly by count.

    For one prompt, a model that costs ``dc`` more and is predicted ``dq`` better is worth
    choosing once the willingness to pay exceeds ``dc / dq`` USD per quality point. The grid
    is ``0`` (always the cheapest), the quantiles of those switch points over all prompts and
    model pairs (so each step changes about as many decisions, and the curve is dense where
    decisions are), and ``inf`` (always the best predicted).

    Args:
        quality: Predicted quality, shape (n_prompts, n_models).
        cost_usd: Estimated cost, shape (n_prompts, n_models), USD.
        n_points: Number of quantiles between the two ends.

    Returns:
        Sorted distinct values, shape (<= n_points + 2,), USD per quality point.
    """
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    dq = q[:, :, None] - q[:, None, :]
    dc = c[:, :, None] - c[:, None, :]
    useful = (dq > 0) & (dc > 0)
    switch = dc[useful] / dq[useful]
    switch = switch[np.isfinite(switch)]
    if switch.size == 0:
        return np.array([0.0, np.inf])
    inner = np.quantile(switch, np.linspace(0.0, 1.0, n_points))
    return np.unique(np.concatenate(([0.0], inner, [np.inf])))


def _predicted_cost(
    router: Router, requests: Sequence[RouteRequest], output_tokens: Sequence[Sequence[float]]
) -> FloatArray:
    inp = np.array([r.input_tokens for r in requests], dtype=np.float64)[:, None]
    price_in = np.array([c.input_usd_per_mtok or 0.0 for c in router.cards])
    price_out = np.array([c.output_usd_per_mtok or 0.0 for c in router.cards])
    out = np.asarray(output_tokens, dtype=np.float64).reshape(len(requests), len(router.cards))
    return np.asarray((inp * price_in + out * price_out) / 1e6, dtype=np.float64)


def sweep(
    router: Router,
    table: OutcomeTable,
    policy_factory: PolicyFactory,
    *,
    grid: Sequence[float] | None = None,
    n_points: int = 48,
    name: str | None = None,
    progress: Progress | None = None,
) -> RouterCurve:
    """The cost-quality curve of ``router`` under a sweep of willingness to pay.

    Predictions are made once; each grid value builds ``router.with_policy(policy_factory(w))``
    and replays every prompt through :meth:`Router.route`.

    Args:
        router: The router (its own policy is not used).
        table: The held-out outcomes.
        policy_factory: Builds the policy for a willingness to pay in USD per quality point
            (e.g. the ``utility`` policy).
        grid: Willingness-to-pay values; ``None`` uses :func:`willingness_grid` on the
            router's own predictions.
        n_points: Grid size when ``grid`` is ``None``.
        name: Label of the curve; defaults to ``router.name``.
        progress: Called as ``progress(done, total)`` after each grid value.

    Returns:
        The curve, one point per grid value.
    """
    curve, _ = sweep_parts(
        [(router, table)],
        policy_factory,
        grid=grid,
        n_points=n_points,
        name=name,
        progress=progress,
    )
    return curve


def sweep_parts(
    parts: Sequence[tuple[Router, OutcomeTable]],
    policy_factory: PolicyFactory,
    *,
    grid: Sequence[float] | None = None,
    n_points: int = 48,
    name: str | None = None,
    progress: Progress | None = None,
) -> tuple[RouterCurve, OutcomeTable]:
    """One curve over several (router, held-out table) pairs, e.g. the folds of cross-fitting.

    Every part is replayed with its own router at the same willingness-to-pay values (the grid
    comes from all parts' predictions together); the choices are concatenated in part order.

    Args:
        parts: ``(router, table)`` pairs; all tables share one model list.
        policy_factory: As in :func:`sweep`.
        grid: As in :func:`sweep`.
        n_points: As in :func:`sweep`.
        name: Label of the curve; defaults to the first router's name.
        progress: As in :func:`sweep`.

    Returns:
        The curve and the concatenated table it was measured on.

    Raises:
        ValueError: If ``parts`` is empty or the tables' models differ.
    """
    if not parts:
        raise ValueError("`parts` must hold at least one (router, table) pair; got none")
    table = concat_tables([t for _, t in parts])
    prepared = []
    for router, part in parts:
        requests = requests_for(part.prompts)
        quality = router.predict_quality(part.prompts)
        out = router.predict_output_tokens(part.prompts)
        prepared.append((router, part, requests, quality, out))
    if grid is None:
        q_all = np.concatenate([np.asarray(q, dtype=np.float64) for _, _, _, q, _ in prepared])
        c_all = np.concatenate([_predicted_cost(r, rq, o) for r, _, rq, _, o in prepared])
        grid_values = willingness_grid(q_all, c_all, n_points)
    else:
        grid_values = np.asarray(grid, dtype=np.float64)
    rows = []
    for i, wtp in enumerate(grid_values):
        policy = policy_factory(float(wtp))
        rows.append(
            np.concatenate(
                [
                    replay(r.with_policy(policy), part, requests=rq, quality=q, output_tokens=o)
                    for r, part, rq, q, o in prepared
                ]
            )
        )
        if progress is not None:
            progress(i + 1, len(grid_values))
    label = name or parts[0][0].name
    return RouterCurve.from_choices(label, table, np.stack(rows), grid_values), table
