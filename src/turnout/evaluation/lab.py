"""One offline evaluation end to end: split, train each predictor, replay, measure, report.

This is what ``turnout eval`` and ``benchmarks/quality.py`` run. Each predictor is fitted on
the training split only; every router is then replayed over the held-out prompts with a
sweep of the ``utility`` policy's willingness to pay (:func:`turnout.evaluation.replay.sweep`),
and compared with the single models, the random mix and the oracle on the same prompts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from turnout.catalog import Catalog
from turnout.evaluation.baselines import RouterSummary, baselines, summarize
from turnout.evaluation.datasets import OutcomeTable, concat_tables
from turnout.evaluation.replay import PolicyFactory, Progress, RouterCurve, sweep_parts
from turnout.evaluation.report import EvalReport
from turnout.evaluation.splits import (
    Split,
    kfold_by_prompt,
    leave_one_task_out,
    split_by_prompt,
    split_cross_task,
    top_level_task,
)
from turnout.policies.base import Policy
from turnout.predictors.base import OutputLengthPredictor, QualityPredictor
from turnout.router import Router

__all__ = [
    "RouterSpec",
    "complete_rows",
    "evaluate",
    "make_parts",
    "make_split",
    "fit_length_predictor",
    "specs_from_registry",
    "utility_policy",
]

SPLITS = ("random", "cross-task")


@dataclass(frozen=True)
class RouterSpec:
    """A router to evaluate: a name and how to build its (unfitted) predictors.

    Attributes:
        name: Label in reports.
        predictor: Returns a new, unfitted quality predictor.
        length_predictor: Fits an output-length predictor on the training table, or ``None``
            (the router then assumes its default output length for every model).
    """

    name: str
    predictor: Callable[[], QualityPredictor]
    length_predictor: Callable[[OutcomeTable], OutputLengthPredictor | None] | None = None


def utility_policy(willingness_to_pay_usd: float) -> Policy:
    """The ``utility`` policy at a willingness to pay (USD per quality point)."""
    from turnout.policies import POLICIES

    if "utility" not in POLICIES:
        raise RuntimeError("the `utility` policy is not registered in turnout.policies.POLICIES")
    policy: Policy = POLICIES["utility"](willingness_to_pay_usd=willingness_to_pay_usd)
    return policy


def complete_rows(table: OutcomeTable) -> OutcomeTable:
    """The rows whose every model has a recorded score (replay needs the chosen cell)."""
    return table.subset(np.flatnonzero(table.observed.all(axis=1)))


def make_split(
    table: OutcomeTable,
    split: str = "random",
    *,
    seed: int = 0,
    test_size: float = 0.2,
    test_tasks: Sequence[str] | None = None,
) -> Split:
    """Split ``table`` by prompt text (``"random"``) or by task (``"cross-task"``).

    Raises:
        ValueError: If ``split`` is unknown or the split is impossible.
    """
    if split == "random":
        return split_by_prompt(table, test_size=test_size, seed=seed)
    if split == "cross-task":
        return split_cross_task(table, test_tasks=test_tasks, seed=seed)
    raise ValueError(f"`split` must be one of {list(SPLITS)}; got {split!r}")


def make_parts(
    table: OutcomeTable,
    split: str = "random",
    *,
    seed: int = 0,
    test_size: float = 0.2,
    test_tasks: Sequence[str] | None = None,
    folds: int = 1,
) -> list[Split]:
    """The train/test parts of an evaluation.

    ``folds <= 1``: one split (:func:`make_split`). ``folds >= 2`` with ``"random"``: k-fold
    cross-fitting by prompt text (:func:`~turnout.evaluation.splits.kfold_by_prompt`), so
    every prompt is scored by a router that never saw it. ``folds >= 2`` with
    ``"cross-task"``: leave-one-task-out, each top-level task held out once.

    Raises:
        ValueError: If ``split`` is unknown or the split is impossible.
    """
    if folds <= 1:
        return [make_split(table, split, seed=seed, test_size=test_size, test_tasks=test_tasks)]
    if split == "random":
        return kfold_by_prompt(table, folds, seed)
    if split == "cross-task":
        return leave_one_task_out(table)
    raise ValueError(f"`split` must be one of {list(SPLITS)}; got {split!r}")


def evaluate(
    table: OutcomeTable,
    routers: Sequence[RouterSpec],
    *,
    split: str = "random",
    seed: int = 0,
    test_size: float = 0.2,
    test_tasks: Sequence[str] | None = None,
    folds: int = 1,
    policy_factory: PolicyFactory = utility_policy,
    n_points: int = 48,
    catalog: Catalog | None = None,
    dataset: str | None = None,
    progress: Callable[[str, str], Progress] | None = None,
) -> EvalReport:
    """Train each router's predictor on the training split and evaluate it on the test split.

    Args:
        table: All outcomes.
        routers: The routers to build and evaluate.
        split: ``"random"`` (by prompt text) or ``"cross-task"``.
        seed: Split seed (also the routers' ``random_state``).
        test_size: Share of prompt texts held out by the random split.
        test_tasks: Held-out tasks of the cross-task split (``None``: a seeded choice).
        folds: ``>= 2`` cross-fits (see :func:`make_parts`); the predictor is trained once
            per fold.
        policy_factory: The policy at a willingness to pay (default: ``utility``).
        n_points: Points of each willingness-to-pay sweep.
        catalog: Cards to route with; ``None`` uses cards carrying the table's prices.
        dataset: Label of the data in the report (default: ``table.source``).
        progress: ``progress(router_name, stage)`` returns a ``(done, total)`` callback.

    Returns:
        The report: baselines, random mix and every router's metrics on the held-out prompts.

    Raises:
        ValueError: If the split is impossible or the test side has no complete row.
    """
    parts = make_parts(
        table, split, seed=seed, test_size=test_size, test_tasks=test_tasks, folds=folds
    )
    tests = [complete_rows(p.test) for p in parts]
    test = concat_tables(tests)
    if test.n_prompts == 0:
        raise ValueError("the test split has no prompt with a recorded score for every model")
    base = baselines(test)
    cards = catalog if catalog is not None else table.to_catalog()
    summaries, train_s = [], {}
    by_benchmark: dict[str, dict[str, RouterSummary]] = {}
    for spec in routers:
        fitted = progress(spec.name, "train") if progress is not None else None
        started = time.perf_counter()
        pairs = []
        for i, (part, part_test) in enumerate(zip(parts, tests, strict=True)):
            train = part.train
            predictor = spec.predictor().fit(list(train.prompts), train.scores, list(train.models))
            length = spec.length_predictor(train) if spec.length_predictor is not None else None
            router = Router(
                cards,
                list(table.models),
                policy_factory(0.0),
                predictor=predictor,
                length_predictor=length,
                random_state=seed,
                name=spec.name,
            )
            pairs.append((router, part_test))
            if fitted is not None:
                fitted(i + 1, len(parts))
        train_s[spec.name] = (time.perf_counter() - started) / len(parts)
        tick = progress(spec.name, "replay") if progress is not None else None
        curve, _ = sweep_parts(pairs, policy_factory, n_points=n_points, progress=tick)
        summaries.append(summarize(spec.name, curve.quality, curve.cost_usd, test, base, curve))
        by_benchmark[spec.name] = _by_benchmark(spec.name, test, curve)
    mix = summarize("random mix", base.zero_quality, base.zero_cost_usd, test, base)
    held = tuple(t for p in parts for t in p.test_tasks)
    label = split
    if len(parts) > 1:
        label += " (leave-one-task-out)" if split == "cross-task" else f" ({len(parts)}-fold)"
    return EvalReport(
        dataset=dataset or table.source,
        split=label,
        seed=seed,
        test_tasks=held,
        n_train_prompts=round(float(np.mean([p.train.n_prompts for p in parts]))),
        n_test_prompts=test.n_prompts,
        models=table.models,
        cost_kind=test.cost_kind,
        baselines=base,
        random_mix=mix,
        routers=tuple(summaries),
        train_s=train_s,
        by_benchmark=by_benchmark,
        extra={"folds": len(parts)},
    )


def _by_benchmark(name: str, test: OutcomeTable, curve: RouterCurve) -> dict[str, RouterSummary]:
    """The same curve's choices, measured on each top-level task (benchmark) of ``test``.

    Each benchmark gets its own baselines (best single, cheapest, random mix) computed on its
    prompts, so APGR and CPT are the ones RouteLLM reports per benchmark.
    """
    tasks = np.array([top_level_task(t) for t in test.tasks])
    out: dict[str, RouterSummary] = {}
    groups = sorted(set(tasks.tolist()))
    if len(groups) < 2:
        return out
    for group in groups:
        idx = np.flatnonzero(tasks == group)
        sub = test.subset(idx)
        part = RouterCurve.from_choices(name, sub, curve.choices[:, idx], curve.willingness_to_pay)
        out[group] = summarize(name, part.quality, part.cost_usd, sub, baselines(sub), part)
    return out


def fit_length_predictor(train: OutcomeTable) -> OutputLengthPredictor | None:
    """The output-length predictor of turnout fitted on ``train.output_tokens``, if available.

    The router turns predicted output tokens into its cost estimates; without a length
    predictor it assumes its default length for every model.
    """
    from turnout import predictors

    cls = getattr(predictors, "LengthPredictor", None)
    if cls is None:
        return None
    fitted: OutputLengthPredictor = cls().fit(
        list(train.prompts), train.output_tokens, list(train.models)
    )
    return fitted


def specs_from_registry(
    names: Sequence[str],
    registry: Mapping[str, Callable[[], QualityPredictor]],
    *,
    length_predictor: Callable[[OutcomeTable], OutputLengthPredictor | None] | None = (
        fit_length_predictor
    ),
) -> list[RouterSpec]:
    """One :class:`RouterSpec` per predictor name of ``registry``.

    Args:
        names: Predictor names.
        registry: Name to predictor class (e.g. ``turnout.predictors.PREDICTORS``).
        length_predictor: Fits each router's output-length predictor on its training split.

    Raises:
        UnknownPredictorError: If a name is not registered (the message lists the known ones).
    """
    from turnout.errors import UnknownPredictorError

    specs = []
    for name in names:
        if name not in registry:
            raise UnknownPredictorError(
                f"unknown predictor {name!r}; known: {', '.join(sorted(registry)) or 'none'}"
            )
        specs.append(RouterSpec(name, registry[name], length_predictor))
    return specs
