"""The demo's router: train the default predictor, pick an operating point, save, cache.

The router the demo serves is turnout's default quality predictor
(:data:`turnout.predictors.DEFAULT_PREDICTOR`) behind the ``utility`` policy. Its one knob,
the willingness to pay (USD per quality point), is chosen **on the training prompts only**:

1. cross-fit on the training prompts: split them into ``folds`` folds by prompt text, fit
   the predictor on all folds but one and score the held-back fold, for each fold in turn;
2. sweep the willingness to pay over those out-of-fold scores
   (:func:`turnout.evaluation.replay.sweep_parts`) and keep the cheapest setting whose quality
   reaches ``target_quality_share`` (default 95%) of the best single model's quality there,
   with a margin: the paired 90% lower confidence bound must reach it
   (:data:`TARGET_CONFIDENCE`), so the held-out prompts fall short less often;
3. refit the predictor on all training prompts and save it, with that setting, as a router
   file (:func:`turnout.artifact.save_router`) that the gateway loads.

The held-out prompts the demo sends are never seen. The result is cached under
``cache_dir`` keyed by the dataset's training content, the predictor and turnout's version, so
a second run starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from turnout import __version__
from turnout.evaluation.datasets import OutcomeTable
from turnout.evaluation.replay import operating_point, replay, sweep, sweep_parts
from turnout.evaluation.splits import kfold_by_prompt
from turnout.router import Router

__all__ = ["RouterSetup", "default_cache_dir", "prepare_router"]

Log = Callable[[str], None]
Tick = Callable[[int, int], None]
POLICY = "utility"
#: Probability with which the operating point's cross-fitted quality must clear the target
#: (one-sided lower confidence bound; see ``cheapest_point_reaching``).
TARGET_CONFIDENCE = 0.9
WTP_PARAM = "willingness_to_pay_usd"


@dataclass
class RouterSetup:
    """A trained router ready for the gateway's config.

    Attributes:
        path: The router file.
        policy: Policy name for the route.
        params: Policy parameters (the chosen willingness to pay).
        seed: The route's ``random_state``.
        description: One line for the report.
        predictor: Name of the quality predictor.
        validation: How the operating point was chosen (quality and cost on validation).
        trained_s: Seconds spent training (0 when loaded from the cache).
        from_cache: Whether it was loaded from the cache.
    """

    path: Path
    policy: str
    params: dict[str, Any]
    seed: int
    description: str
    predictor: str = ""
    validation: dict[str, float] = field(default_factory=dict)
    trained_s: float = 0.0
    from_cache: bool = False

    def _load(self, test: OutcomeTable, wtp: float | None = None) -> Router:
        from turnout.artifact import load_router
        from turnout.catalog import Catalog
        from turnout.policies import POLICIES

        params = dict(self.params)
        if wtp is not None:
            params[WTP_PARAM] = wtp
        return load_router(
            str(self.path),
            catalog=test.to_catalog(Catalog.default()),
            candidates=list(test.models),
            policy=POLICIES[self.policy](**params),
            random_state=self.seed,
        )

    def curve(self, test: OutcomeTable) -> list[tuple[float, float]]:
        """Offline cost-quality points of this router over ``test`` at other settings.

        Returns:
            ``(cost per prompt in USD, mean quality)`` for a sweep of willingness to pay,
            computed by replay without the gateway (for the picture only).
        """
        from turnout.evaluation.lab import utility_policy

        points = sweep(self._load(test, 0.0), test, utility_policy, n_points=24)
        return [(float(c), float(q)) for c, q in zip(points.cost_usd, points.quality, strict=True)]

    def replay_choices(self, test: OutcomeTable) -> list[str]:
        """The model the library's router picks for each prompt of ``test``, offline.

        The same router file and policy the gateway serves, replayed with
        :func:`turnout.evaluation.replay.replay`; the demo compares these picks with the
        models the gateway's ledger records.
        """
        return [test.models[j] for j in replay(self._load(test), test)]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/turnout/demo`` (``~/.cache/turnout/demo`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "turnout" / "demo"


def _fingerprint(train: OutcomeTable, predictor: str, target: float, seed: int, folds: int) -> str:
    digest = hashlib.sha256()
    for part in (
        __version__,
        predictor,
        repr(target),
        f"confidence={TARGET_CONFIDENCE}",
        str(seed),
        str(folds),
        *train.models,
    ):
        digest.update(part.encode() + b"\0")
    for prompt in train.prompts:
        digest.update(prompt.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(np.nan_to_num(train.scores, nan=-1.0).tobytes())
    digest.update(np.nan_to_num(train.cost_usd, nan=-1.0).tobytes())
    return digest.hexdigest()[:16]


def _fit(name: str, table: OutcomeTable) -> Any:
    from turnout.predictors import PREDICTORS

    return PREDICTORS[name]().fit(list(table.prompts), table.scores, list(table.models))


def _router(name: str, table: OutcomeTable, wtp: float, seed: int) -> Router:
    from turnout.evaluation.lab import fit_length_predictor, utility_policy

    return Router(
        table.to_catalog(),
        list(table.models),
        utility_policy(wtp),
        predictor=_fit(name, table),
        length_predictor=fit_length_predictor(table),
        random_state=seed,
        name=name,
    )


def _calibrate(
    name: str, train: OutcomeTable, target: float, seed: int, folds: int, tick: Tick
) -> tuple[float, dict[str, float]]:
    """The cheapest willingness to pay whose cross-fitted quality reaches the target.

    "Reaches" has a margin for noise (:func:`~turnout.evaluation.metrics.cheapest_point_reaching`
    at :data:`TARGET_CONFIDENCE`): the paired one-sided lower confidence bound of the quality
    minus the target must be at least 0.

    Every training prompt is scored by a router fitted on the other folds (cross-fitting),
    so the chosen setting is measured on prompts its router never saw, with predictors
    trained on nearly as much data as the final one.
    """
    from turnout.evaluation.lab import utility_policy

    parts = kfold_by_prompt(train, folds, seed + 1)
    pairs = []
    for i, part in enumerate(parts):
        pairs.append((_router(name, part.train, 0.0, seed), part.test))
        tick(i + 1, folds + 1)
    curve, scored = sweep_parts(pairs, utility_policy, n_points=64)
    best_quality = float(np.nanmax(np.nanmean(scored.scores, axis=0)))
    wanted = target * best_quality
    k, _ = operating_point(curve, scored, target, confidence=TARGET_CONFIDENCE)
    wtp = float(curve.willingness_to_pay[k])
    return wtp, {
        "target_quality": wanted,
        "target_confidence": TARGET_CONFIDENCE,
        "best_single_quality": best_quality,
        "quality": float(curve.quality[k]),
        "cost_per_prompt_usd": float(curve.cost_usd[k]),
        "prompts": float(scored.n_prompts),
        "folds": float(folds),
    }


def prepare_router(
    train: OutcomeTable,
    *,
    dataset: str,
    seed: int = 0,
    target_quality_share: float = 0.95,
    folds: int = 5,
    cache_dir: Path | None = None,
    retrain: bool = False,
    log: Log = print,
    progress: Tick | None = None,
) -> RouterSetup:
    """Train (or load from the cache) the demo's router on ``train``.

    Args:
        train: The training prompts.
        dataset: Dataset name (for the cache file name and the report).
        seed: Seed of the validation split and the router.
        target_quality_share: Share of the best single model's quality the operating point
            must reach on cross-fitted training prompts, in (0, 1].
        folds: Folds of the cross-fitting that chooses the operating point (>= 2).
        cache_dir: Cache folder; ``None`` uses :func:`default_cache_dir`.
        retrain: Ignore a cached router.
        log: Progress lines.
        progress: Called as ``progress(fits_done, fits_total)`` while training.

    Returns:
        The router file and the route settings for the gateway.

    Raises:
        ValueError: If ``target_quality_share`` is not in (0, 1].
    """
    if not 0 < target_quality_share <= 1:
        raise ValueError(f"`target_quality_share` must be in (0, 1]; got {target_quality_share!r}")
    from turnout.artifact import save_router
    from turnout.predictors import DEFAULT_PREDICTOR

    name = str(DEFAULT_PREDICTOR)
    folder = cache_dir or default_cache_dir()
    key = _fingerprint(train, name, target_quality_share, seed, folds)
    path = folder / f"{dataset}-{name}-{key}.router"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file() and not retrain:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        log(f"router: loaded from the cache ({path})")
        return RouterSetup(path=path, from_cache=True, trained_s=0.0, **meta)
    log(f"router: training {name} on {train.n_prompts} prompts (cached afterwards in {folder})")
    started = time.perf_counter()
    tick = progress or (lambda done, total: None)
    wtp, validation = _calibrate(name, train, target_quality_share, seed, folds, tick)
    router = _router(name, train, wtp, seed)
    tick(folds + 1, folds + 1)
    folder.mkdir(parents=True, exist_ok=True)
    save_router(
        router,
        path,
        metadata={"dataset": dataset, "predictor": name, "prompts": train.n_prompts, **validation},
    )
    trained_s = time.perf_counter() - started
    meta = {
        "policy": POLICY,
        "params": {WTP_PARAM: wtp},
        "seed": seed,
        "predictor": name,
        "validation": validation,
        "description": (
            f"`{name}` predictor + `{POLICY}` policy, willingness to pay ${wtp:.3g} per quality "
            f"point: the cheapest setting reaching {target_quality_share:.0%} of the best "
            f"single model's quality on the training prompts, {folds}-fold cross-fitted "
            f"({validation['quality']:.3f} vs {validation['best_single_quality']:.3f})"
        ),
    }
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    log(f"router: trained and calibrated in {trained_s:.1f} s")
    return RouterSetup(path=path, trained_s=trained_s, **meta)
