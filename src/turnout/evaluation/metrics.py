"""Metrics of routers on recorded outcomes: pure numpy functions, no I/O.

A router evaluated offline gives a **cost-quality curve**: one point per setting of its knob
(the willingness to pay of the ``utility`` policy), each point the mean quality and the mean
cost in USD per prompt over the held-out prompts. Everything here is computed from such
points and from the recorded (prompt, model) outcomes.

Sources:

* PGR, APGR and CPT(x%): Ong et al., *RouteLLM: Learning to Route LLMs with Preference Data*
  (arXiv:2406.18665, sec. 5) and its evaluation code (``routellm/evals/evaluate.py``): the
  area under PGR plotted against the share of calls to the strong model, and the least share
  of strong calls that reaches a given PGR.
* AIQ, the non-decreasing convex hull and the zero router: Hu et al., *RouterBench: A
  Benchmark for Multi-LLM Routing System* (arXiv:2403.12031, sec. 3) and its code
  (``evaluation/AIQ.py``).
* Savings at quality parity: the cost saved against always calling the best single model,
  at a point of the router's curve that matches (or nearly matches) that model's quality.
* Confidence intervals: the percentile bootstrap over held-out prompts (Efron and Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13), paired: the router's curve and the
  reference model are measured on the same resampled prompts.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "BOOTSTRAP_METRICS",
    "apgr",
    "aiq",
    "bootstrap_intervals",
    "cheapest_point_reaching",
    "cost_share",
    "cpt",
    "non_decreasing_convex_hull",
    "oracle_choices",
    "per_task_breakdown",
    "pgr",
    "savings_at_quality",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def _as_float(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def non_decreasing_convex_hull(
    cost_usd: npt.ArrayLike, quality: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """The non-decreasing convex hull (NDCH) of cost-quality points, as in RouterBench.

    Any two operating points of a router can be mixed at random, so every point of the
    segment between them is reachable; and paying more never has to lower quality. The NDCH
    is therefore the best quality reachable at each cost: the upper concave envelope of the
    points from the cheapest point (highest quality among the cheapest) to the point of
    highest quality, and flat after it.

    Args:
        cost_usd: Mean cost per prompt of each point, shape (k,), USD. NaN points are dropped.
        quality: Mean quality of each point, shape (k,).

    Returns:
        The hull's vertices ``(cost_usd, quality)``, each of shape (h,), cost strictly
        increasing and quality strictly increasing; the hull is flat after the last vertex.

    Raises:
        ValueError: If the arrays differ in shape or no finite point remains.
    """
    c, q = _as_float(cost_usd), _as_float(quality)
    if c.shape != q.shape:
        raise ValueError(f"`cost_usd` and `quality` must have one shape; got {c.shape}, {q.shape}")
    keep = np.isfinite(c) & np.isfinite(q)
    if not keep.any():
        raise ValueError("the non-decreasing convex hull needs at least one finite point")
    order = np.lexsort((q[keep], c[keep]))
    pts = np.column_stack((c[keep][order], q[keep][order]))
    upper: list[tuple[float, float]] = []
    for x, y in pts:
        # Same cost as the previous vertex: keep only the higher quality.
        if upper and x == upper[-1][0]:
            if y <= upper[-1][1]:
                continue
            upper.pop()
        # Pop while the last vertex lies on or below the chord from the one before it to here.
        while len(upper) >= 2:
            (x1, y1), (x2, y2) = upper[-2], upper[-1]
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) >= 0:
                upper.pop()
            else:
                break
        upper.append((float(x), float(y)))
    hull_c, hull_q = [upper[0][0]], [upper[0][1]]
    for x, y in upper[1:]:
        if y <= hull_q[-1]:
            break
        hull_c.append(x)
        hull_q.append(y)
    return np.array(hull_c), np.array(hull_q)


def aiq(
    cost_usd: npt.ArrayLike,
    quality: npt.ArrayLike,
    cost_min_usd: float,
    cost_max_usd: float,
) -> float:
    """Average improvement in quality (AIQ) of a router, as in RouterBench.

    Definition (RouterBench, sec. 3.2)::

        AIQ = 1 / (c_max - c_min) * integral from c_min to c_max of R(c) dc

    where ``R`` is the router's non-decreasing convex hull (:func:`non_decreasing_convex_hull`)
    and, here, ``c_min`` / ``c_max`` are the mean costs per prompt of the cheapest and the
    most expensive single model on the same prompts, so cost is normalised to [0, 1] over
    that range. As in RouterBench's code, the hull is extended flat to the right of its last
    vertex, and below the router's cheapest point the router reaches no quality (counted 0).
    Points outside [c_min, c_max] shape the hull but only the part inside is integrated.

    Args:
        cost_usd: Mean cost per prompt of each point of the router's curve, shape (k,), USD.
        quality: Mean quality of each point, shape (k,), in [0, 1].
        cost_min_usd: Mean cost per prompt of the cheapest single model, USD.
        cost_max_usd: Mean cost per prompt of the most expensive single model, USD.

    Returns:
        AIQ in [0, 1] (for qualities in [0, 1]).

    Raises:
        ValueError: If ``cost_max_usd <= cost_min_usd`` or the curve has no finite point.
    """
    if not cost_max_usd > cost_min_usd:
        raise ValueError(
            f"`cost_max_usd` must exceed `cost_min_usd`; got {cost_max_usd} <= {cost_min_usd}"
        )
    hull_c, hull_q = non_decreasing_convex_hull(cost_usd, quality)
    start = float(hull_c[0])
    inner = hull_c[(hull_c > cost_min_usd) & (hull_c < cost_max_usd)]
    xs = np.unique(np.concatenate(([cost_min_usd, cost_max_usd], inner)))
    if cost_min_usd < start < cost_max_usd:
        xs = np.unique(np.append(xs, start))
    area = 0.0
    for a, b in zip(xs[:-1], xs[1:], strict=True):
        if b <= start:
            continue  # the router has no point this cheap
        fa = float(np.interp(a, hull_c, hull_q))
        fb = float(np.interp(b, hull_c, hull_q))
        area += (fa + fb) / 2 * (b - a)
    return area / (cost_max_usd - cost_min_usd)


def pgr(quality: npt.ArrayLike, quality_weak: float, quality_strong: float) -> FloatArray:
    """Performance gap recovered, as in RouteLLM.

    ``PGR = (q_router - q_weak) / (q_strong - q_weak)``: 0 at the weak model's quality, 1 at
    the strong model's.

    Args:
        quality: Router quality per point, shape (k,).
        quality_weak: Quality of the weak model (here: the cheapest single model).
        quality_strong: Quality of the strong model (here: the best single model).

    Returns:
        PGR per point, shape (k,); all NaN when ``quality_strong <= quality_weak`` (no gap).
    """
    q = _as_float(quality)
    gap = quality_strong - quality_weak
    if not gap > 0:
        return np.full_like(q, math.nan)
    return (q - quality_weak) / gap


def cost_share(cost_usd: npt.ArrayLike, cost_weak_usd: float, cost_strong_usd: float) -> FloatArray:
    """Cost-normalised "share of strong calls" for routers over more than two models.

    RouteLLM plots PGR against the percentage of calls sent to the strong model, which only
    means something with two models. With more, turnout uses the cost a router spends between
    the weak and the strong model: ``(cost - cost_weak) / (cost_strong - cost_weak)``. With two
    models whose per-call costs are constant this equals the share of strong calls.

    Args:
        cost_usd: Mean cost per prompt of each point, shape (k,), USD.
        cost_weak_usd: Mean cost per prompt of the weak (cheapest) model.
        cost_strong_usd: Mean cost per prompt of the strong (best) model.

    Returns:
        The normalised cost per point, shape (k,); all NaN if the strong model is not dearer.
    """
    c = _as_float(cost_usd)
    span = cost_strong_usd - cost_weak_usd
    if not span > 0:
        return np.full_like(c, math.nan)
    return (c - cost_weak_usd) / span


def _pgr_function(
    strong_share: npt.ArrayLike, pgr_values: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Breakpoints of PGR as a function of the strong share, anchored at (0, 0) and (1, 1).

    Always-weak (share 0, PGR 0) and always-strong (share 1, PGR 1) are reachable by any
    deployment (a fixed policy), so they anchor the curve. Where several points share one
    x, the best PGR is kept.
    """
    x = np.concatenate(([0.0, 1.0], _as_float(strong_share)))
    y = np.concatenate(([0.0, 1.0], _as_float(pgr_values)))
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    xs = np.unique(x)
    ys = np.array([y[x == v].max() for v in xs])
    return xs, ys


def apgr(strong_share: npt.ArrayLike, pgr_values: npt.ArrayLike) -> float:
    """Average performance gap recovered (APGR), as in RouteLLM.

    Definition (RouteLLM, sec. 5.1): the area under the curve of PGR against the share of
    calls to the strong model, for shares in [0, 1]::

        APGR = integral from 0 to 1 of PGR(x) dx

    computed with the trapezoidal rule through the router's points sorted by share, as
    RouteLLM's ``evaluate.py`` does, with the always-weak (0, 0) and always-strong (1, 1)
    points added. Points outside [0, 1] (possible with :func:`cost_share`) shape the
    segments that cross the borders but are not integrated.

    Args:
        strong_share: Share of strong calls (or :func:`cost_share`) per point, shape (k,).
        pgr_values: PGR per point, shape (k,) (see :func:`pgr`).

    Returns:
        APGR; 0.5 for a random mix of the weak and strong model, 1 for a router that
        recovers the whole gap without calling the strong model.
    """
    xs, ys = _pgr_function(strong_share, pgr_values)
    grid = np.unique(np.concatenate(([0.0, 1.0], xs[(xs > 0) & (xs < 1)])))
    values = np.interp(grid, xs, ys)
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid)))


def cpt(strong_share: npt.ArrayLike, pgr_values: npt.ArrayLike, target_pgr: float) -> float:
    """Call-performance threshold CPT(x%), as in RouteLLM.

    Definition (RouteLLM, sec. 5.1): the least share of calls to the strong model at which
    the router reaches PGR ``target_pgr``. PGR between two points is interpolated linearly
    (RouteLLM's ``np.interp``); here the answer is the first crossing along increasing
    share, which equals RouteLLM's value on a monotone curve and stays defined otherwise.

    Args:
        strong_share: Share of strong calls (or :func:`cost_share`) per point, shape (k,).
        pgr_values: PGR per point, shape (k,).
        target_pgr: The PGR to reach, e.g. 0.5 for CPT(50%).

    Returns:
        The share in [0, 1] (multiply by 100 for RouteLLM's percentage); never NaN for a
        target in [0, 1] because always-strong reaches PGR 1.
    """
    xs, ys = _pgr_function(strong_share, pgr_values)
    inside = (xs >= 0) & (xs <= 1)
    xs, ys = xs[inside], ys[inside]
    if ys[0] >= target_pgr:
        return float(xs[0])
    for i in range(1, len(xs)):
        if ys[i] >= target_pgr:
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            return float(x0 + (target_pgr - y0) / (y1 - y0) * (x1 - x0))
    return math.nan


def savings_at_quality(
    cost_usd: npt.ArrayLike,
    quality: npt.ArrayLike,
    target_quality: float,
    reference_cost_usd: float,
) -> float:
    """Cost saved against a reference at the cheapest point reaching a target quality.

    Definition::

        savings = 1 - (cost of the cheapest point with quality >= target) / reference_cost

    With the target the best single model's quality (or 95% / 97% of it) and the reference
    that model's cost, this is *savings at parity* (at 95%, at 97%). Only measured points of
    the curve count (no interpolation between them): a conservative reading.

    Args:
        cost_usd: Mean cost per prompt of each point, shape (k,), USD.
        quality: Mean quality of each point, shape (k,).
        target_quality: The quality to reach.
        reference_cost_usd: Mean cost per prompt of the reference (best single model), USD.

    Returns:
        The savings (negative if the point costs more than the reference); NaN if no point
        reaches the target.
    """
    c, q = _as_float(cost_usd), _as_float(quality)
    reached = np.isfinite(c) & (q >= target_quality - 1e-12)
    if not reached.any() or not reference_cost_usd > 0:
        return math.nan
    return float(1.0 - c[reached].min() / reference_cost_usd)


def oracle_choices(scores: npt.ArrayLike, cost_usd: npt.ArrayLike) -> IntArray:
    """The oracle: per prompt, the cheapest model among those with the best recorded score.

    An upper bound no router reaches on noisy 0/1 scores (it knows the outcome); report it as
    the limit, not as a target.

    Args:
        scores: Recorded quality, shape (n_prompts, n_models); NaN cells are never chosen.
        cost_usd: Cost of each (prompt, model), shape (n_prompts, n_models), USD.

    Returns:
        Chosen column per prompt, shape (n_prompts,); the cheapest column where a row has
        no recorded score.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    filled = np.where(np.isnan(s), -np.inf, s)
    best = filled.max(axis=1, keepdims=True)
    tied = filled >= best - 1e-12
    cost = np.where(tied & np.isfinite(c), c, np.inf)
    chosen: IntArray = np.argmin(cost, axis=1).astype(np.intp)
    return chosen


def per_task_breakdown(
    tasks: npt.ArrayLike,
    scores: npt.ArrayLike,
    cost_usd: npt.ArrayLike,
    choices: npt.ArrayLike,
    reference: int,
) -> dict[str, tuple[int, float, float, float, float]]:
    """Mean quality and cost per task of a router's choices and of a reference model.

    Args:
        tasks: Task of each prompt, shape (n_prompts,).
        scores: Recorded quality, shape (n_prompts, n_models).
        cost_usd: Cost per (prompt, model), shape (n_prompts, n_models), USD.
        choices: The router's chosen column per prompt, shape (n_prompts,).
        reference: Column of the reference model (the best single model).

    Returns:
        ``{task: (n_prompts, router_quality, router_cost_usd, reference_quality,
        reference_cost_usd)}``, means over the task's prompts, tasks sorted by name.
    """
    t = np.asarray(tasks)
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    ch = np.asarray(choices, dtype=np.intp)
    rows = np.arange(len(ch))
    chosen_q, chosen_c = s[rows, ch], c[rows, ch]
    out: dict[str, tuple[int, float, float, float, float]] = {}
    for task in sorted({str(x) for x in t}):
        m = t == task
        out[task] = (
            int(m.sum()),
            float(np.nanmean(chosen_q[m])) if np.isfinite(chosen_q[m]).any() else math.nan,
            float(np.nanmean(chosen_c[m])) if np.isfinite(chosen_c[m]).any() else math.nan,
            float(np.nanmean(s[m, reference])) if np.isfinite(s[m, reference]).any() else math.nan,
            float(np.nanmean(c[m, reference])) if np.isfinite(c[m, reference]).any() else math.nan,
        )
    return out


#: The metrics :func:`bootstrap_intervals` gives intervals for.
BOOTSTRAP_METRICS = ("savings_at_parity", "savings_at_95", "savings_at_97", "max_quality")


def bootstrap_intervals(
    point_scores: npt.ArrayLike,
    point_cost_usd: npt.ArrayLike,
    reference_scores: npt.ArrayLike,
    reference_cost_usd: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of savings and max quality over held-out prompts.

    Each replicate draws ``n_prompts`` prompts with replacement and measures, on those same
    prompts, every point of the router's curve and the reference (the best single model on
    the full test set, kept fixed), then the savings at parity / 95% / 97% of the reference's
    quality (:func:`savings_at_quality`, measured points only) and the highest mean quality.
    A replicate whose curve never reaches a target counts as savings ``-inf`` (no saving
    possible), so an interval's low end of ``-inf`` says the target is missed in more than
    ``(1 - level) / 2`` of the replicates.

    Args:
        point_scores: Recorded quality of each point's choice per prompt, shape (k, n_prompts).
        point_cost_usd: Cost of each point's choice per prompt, shape (k, n_prompts), USD.
        reference_scores: The reference model's quality per prompt, shape (n_prompts,).
        reference_cost_usd: Its cost per prompt, shape (n_prompts,), USD.
        n_boot: Bootstrap replicates.
        level: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling.

    Returns:
        ``{metric: (low, high)}`` for each name in :data:`BOOTSTRAP_METRICS`; savings as
        fractions of the reference's cost, max quality in score units.

    Raises:
        ValueError: If the shapes disagree, a value is NaN, ``n_boot < 1`` or ``level`` is
            not in (0, 1).
    """
    q = np.atleast_2d(np.asarray(point_scores, dtype=np.float64))
    c = np.atleast_2d(np.asarray(point_cost_usd, dtype=np.float64))
    rq = np.asarray(reference_scores, dtype=np.float64)
    rc = np.asarray(reference_cost_usd, dtype=np.float64)
    n = q.shape[1]
    if c.shape != q.shape or rq.shape != (n,) or rc.shape != (n,) or n == 0:
        raise ValueError(
            "bootstrap shapes disagree: point_scores and point_cost_usd must be (k, n_prompts) "
            f"and the references (n_prompts,); got {q.shape}, {c.shape}, {rq.shape}, {rc.shape}"
        )
    if not all(np.isfinite(a).all() for a in (q, c, rq, rc)):
        raise ValueError("bootstrap inputs must be finite (drop prompts without a score first)")
    if n_boot < 1:
        raise ValueError(f"`n_boot` must be >= 1; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1); got {level!r}")
    rng = np.random.default_rng(seed)
    # Resample as counts per prompt: quality of every point at once is one matrix product.
    stacked = np.vstack([q, c, rq[None, :], rc[None, :]]).T  # (n, 2k + 2)
    k = q.shape[0]
    values: dict[str, list[float]] = {name: [] for name in BOOTSTRAP_METRICS}
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
        means = counts @ stacked / n  # (b, 2k + 2)
        for row in means:
            pq, pc, ref_q, ref_c = row[:k], row[k : 2 * k], row[2 * k], row[2 * k + 1]
            for name, frac in (
                ("savings_at_parity", 1.0),
                ("savings_at_95", 0.95),
                ("savings_at_97", 0.97),
            ):
                saved = savings_at_quality(pc, pq, frac * ref_q, ref_c)
                values[name].append(-math.inf if math.isnan(saved) else saved)
            values["max_quality"].append(float(pq.max()))
        done += b
    tail = 100.0 * (1.0 - level) / 2.0
    out: dict[str, tuple[float, float]] = {}
    for name, vals in values.items():
        lo, hi = np.percentile(np.asarray(vals), [tail, 100.0 - tail], method="lower")
        out[name] = (float(lo), float(hi))
    return out


def cheapest_point_reaching(
    point_scores: npt.ArrayLike,
    point_cost_usd: npt.ArrayLike,
    reference_scores: npt.ArrayLike,
    share: float,
    *,
    confidence: float = 0.9,
) -> tuple[int, bool]:
    """The cheapest curve point whose quality reaches ``share`` of a reference's, with a margin.

    Per prompt ``i`` and point ``k`` the paired difference is
    ``d[k, i] = score[k, i] - share * reference[i]``; a point qualifies when the one-sided
    lower confidence bound of its mean, ``mean(d[k]) - z * sd(d[k]) / sqrt(n)`` (normal
    approximation, ``z`` the standard normal quantile of ``confidence``: 1.28 at 0.9, 0 at
    0.5), is at least 0. Choosing the cheapest point that merely reaches the target on the
    calibration prompts lands below it on new prompts more often than not (the chosen point
    is the one the noise favoured); the margin makes traffic like the calibration prompts reach
    it with about ``confidence`` probability.

    Args:
        point_scores: Recorded quality of each point's choice per prompt, shape (k, n_prompts).
        point_cost_usd: Cost of each point's choice per prompt, shape (k, n_prompts), USD.
        reference_scores: The reference model's quality per prompt, shape (n_prompts,).
        share: Share of the reference's mean quality to reach, in (0, 1].
        confidence: In [0.5, 1).

    Returns:
        ``(index of the point, whether it qualifies)``; if no point qualifies, the point with
        the highest lower bound and ``False``.

    Raises:
        ValueError: If shapes disagree, there are no prompts, or ``share`` / ``confidence``
            are out of range.
    """
    from statistics import NormalDist

    q = np.atleast_2d(np.asarray(point_scores, dtype=np.float64))
    c = np.atleast_2d(np.asarray(point_cost_usd, dtype=np.float64))
    ref = np.asarray(reference_scores, dtype=np.float64)
    n = q.shape[1]
    if c.shape != q.shape or ref.shape != (n,) or n == 0:
        raise ValueError(
            "shapes disagree: point_scores and point_cost_usd must be (k, n_prompts) and "
            f"reference_scores (n_prompts,); got {q.shape}, {c.shape}, {ref.shape}"
        )
    if not 0 < share <= 1:
        raise ValueError(f"`share` must be in (0, 1]; got {share!r}")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"`confidence` must be in [0.5, 1); got {confidence!r}")
    z = NormalDist().inv_cdf(confidence)
    d = q - share * ref[None, :]
    spread = np.nanstd(d, axis=1, ddof=1) if n > 1 else np.zeros(len(d))
    lower = np.nanmean(d, axis=1) - z * spread / math.sqrt(n)
    ok = np.flatnonzero(lower >= -1e-12)
    if ok.size:
        cost = np.nanmean(c, axis=1)
        return int(ok[np.argmin(cost[ok])]), True
    return int(np.nanargmax(lower)), False
