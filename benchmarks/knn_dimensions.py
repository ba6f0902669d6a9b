"""The kNN member's reduced dimensions (``n_components``): routing quality at 64 and 128.

Measured only inside the training part of ``benchmarks/quality.py``'s split (its 20% test side,
seed 0, is dropped unread): 4-fold cross-fitting by prompt text (seed 1) over the training
prompts, the default ``ensemble`` with its ``knn`` member at each setting, out-of-fold
predictions swept over the ``utility`` policy's willingness to pay exactly as in
``benchmarks/quality_ceilings.py`` (400 values; the dataset's modelled cost as the estimate).

Usage (from the repository root; about 10 minutes on 2 cores)::

    python benchmarks/knn_dimensions.py [--data-dir DIR] [--dims 64 128]

Writes ``benchmarks/results/knn_dimensions.md``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from turnout.evaluation import load_outcomes
from turnout.evaluation.splits import kfold_by_prompt, split_by_prompt
from turnout.predictors import ensemble
from turnout.predictors.knn import KNNPredictor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_ceilings import curve_metrics, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(path: Path, dims: int) -> dict[str, float | None]:
    """Out-of-fold metrics of the default ensemble with ``knn(n_components=dims)``."""
    table = load_outcomes(path)
    train, _ = split_by_prompt(table, 0.2, seed=0)  # the test side is dropped unread
    saved = ensemble.MEMBERS["knn"]
    ensemble.MEMBERS["knn"] = functools.partial(KNNPredictor, n_components=dims)  # type: ignore[assignment]
    try:
        preds, scores, cost = [], [], []
        for part in kfold_by_prompt(train, 4, seed=1):
            tr, te = part.train, part.test
            model = ensemble.EnsemblePredictor().fit(list(tr.prompts), tr.scores, list(tr.models))
            preds.append(model.predict(list(te.prompts)))
            scores.append(te.scores)
            cost.append(te.cost_usd)
    finally:
        ensemble.MEMBERS["knn"] = saved
    s, c = np.vstack(scores), np.vstack(cost)
    quality, spent = sweep(np.vstack(preds), c, s)
    return curve_metrics(quality, spent, s, c)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    lines = [
        "# kNN member: reduced dimensions",
        "",
        f"Produced by `python benchmarks/knn_dimensions.py` at "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}). Default ensemble, 4-fold "
        "out-of-fold inside the training split (test prompts never read); costs modelled.",
        "",
        "| dataset | n_components | max quality | savings @parity | @95% | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("llmrouter", "routellm"):
        for dims in args.dims:
            began = time.perf_counter()
            m = measure(args.data_dir / f"{name}.jsonl.gz", dims)
            took = time.perf_counter() - began
            row = (
                f"| {name} | {dims} | {m['max_quality']:.4f} | {_pct(m['savings_at_parity'])} | "
                f"{_pct(m['savings_at_95'])} | {took:.0f} |"
            )
            print(row, flush=True)
            lines.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "knn_dimensions.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
