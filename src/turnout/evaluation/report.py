"""An evaluation's results as JSON, a markdown table, a rich table and a PNG plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnout.evaluation.baselines import Baselines, RouterSummary
from turnout.evaluation.datasets import CostKind

__all__ = ["COST_NOTES", "EvalReport"]

#: What each cost kind means, printed with every report.
COST_NOTES: dict[str, str] = {
    "recorded": "costs are the USD amounts recorded by the dataset's source",
    "modelled": (
        "costs are modelled: list price x tokens (input tokens counted offline from the prompt, "
        "output tokens from recorded responses where present, else a per-model/task estimate)"
    ),
    "mixed": "costs are recorded where the source has them and modelled elsewhere",
}


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f}%"


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(s: RouterSummary, metric: str, *, pct: bool, sep: str = " ") -> str:
    """``sep + [low, high]``: the summary's 95% bootstrap interval of ``metric``, or ``""``."""
    if metric not in s.ci95:
        return ""
    show = _pct if pct else _fmt
    low, high = s.ci95[metric]
    return f"{sep}[{show(low)}, {show(high)}]"


def _ci_json(s: RouterSummary) -> dict[str, list[float | None]]:
    return {m: [_num(lo), _num(hi)] for m, (lo, hi) in s.ci95.items()}


@dataclass(frozen=True, eq=False)
class EvalReport:
    """Everything one ``turnout eval`` run measured.

    Attributes:
        dataset: Path or name of the outcome file.
        split: ``"random"`` or ``"cross-task"``.
        seed: Split seed.
        test_tasks: Held-out tasks of a cross-task split.
        n_train_prompts: Prompts the predictors were trained on.
        n_test_prompts: Held-out prompts the routers were replayed on.
        models: The table's models.
        cost_kind: ``"recorded"``, ``"modelled"`` or ``"mixed"`` (test split).
        baselines: Single models, best single, weak, oracle, random mix.
        random_mix: Metrics of the random mix (RouterBench's zero router).
        routers: Metrics of each replayed router, in the order given.
        train_s: Training time of each router's predictor, seconds.
        extra: Free-form notes carried into the JSON.
        by_benchmark: Per router, its metrics on each top-level task of the test split
            (each with that task's own baselines); empty with a single task.
    """

    dataset: str
    split: str
    seed: int
    test_tasks: tuple[str, ...]
    n_train_prompts: int
    n_test_prompts: int
    models: tuple[str, ...]
    cost_kind: CostKind
    baselines: Baselines
    random_mix: RouterSummary
    routers: tuple[RouterSummary, ...]
    train_s: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    by_benchmark: Mapping[str, Mapping[str, RouterSummary]] = field(default_factory=dict)

    # ----------------------------------------------------------------- JSON
    def _summary_json(self, s: RouterSummary) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apgr": _num(s.apgr),
            "cpt50": _num(s.cpt50),
            "cpt80": _num(s.cpt80),
            "aiq": _num(s.aiq),
            "savings_at_parity": _num(s.savings_at_parity),
            "savings_at_95": _num(s.savings_at_95),
            "savings_at_97": _num(s.savings_at_97),
            "max_quality": _num(s.max_quality),
            "ci95": _ci_json(s),
            "cost_kind": s.cost_kind,
            "strong_share_kind": s.share_kind,
            "curve": [
                {
                    "willingness_to_pay_usd": _num(w),
                    "quality": _num(q),
                    "cost_usd": _num(c),
                    "strong_share": _num(x),
                }
                for w, q, c, x in s.points
            ],
        }
        if s.curve is not None and s.operating_point >= 0:
            k = s.operating_point
            out["operating_point"] = {
                "willingness_to_pay_usd": _num(float(s.curve.willingness_to_pay[k])),
                "quality": _num(float(s.curve.quality[k])),
                "cost_usd": _num(float(s.curve.cost_usd[k])),
                "call_share": {
                    m: float(x) for m, x in zip(self.models, s.curve.call_share[k], strict=True)
                },
            }
            out["per_task"] = {
                task: {
                    "n_prompts": n,
                    "quality": _num(q),
                    "cost_usd": _num(c),
                    "best_single_quality": _num(bq),
                    "best_single_cost_usd": _num(bc),
                }
                for task, (n, q, c, bq, bc) in s.per_task.items()
            }
        if s.name in self.train_s:
            out["train_s"] = round(self.train_s[s.name], 3)
        groups = self.by_benchmark.get(s.name, {}) if s is not self.random_mix else {}
        if groups:
            out["by_benchmark"] = {g: _metrics_json(b) for g, b in groups.items()}
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN becomes ``None`` (e.g. a savings target never reached)."""
        b = self.baselines
        return {
            "dataset": self.dataset,
            "split": self.split,
            "seed": self.seed,
            "test_tasks": list(self.test_tasks),
            "n_train_prompts": self.n_train_prompts,
            "n_test_prompts": self.n_test_prompts,
            "models": list(self.models),
            "cost_kind": self.cost_kind,
            "cost_note": COST_NOTES[self.cost_kind],
            "best_single": {
                "model": b.best.name,
                "quality": _num(b.best.quality),
                "cost_usd": _num(b.best.cost_usd),
            },
            "weak": {
                "model": b.weak.name,
                "quality": _num(b.weak.quality),
                "cost_usd": _num(b.weak.cost_usd),
            },
            "oracle": {"quality": _num(b.oracle.quality), "cost_usd": _num(b.oracle.cost_usd)},
            "single_models": [
                {"model": p.name, "quality": _num(p.quality), "cost_usd": _num(p.cost_usd)}
                for p in b.models
            ],
            "random_mix": self._summary_json(self.random_mix),
            "routers": {s.name: self._summary_json(s) for s in self.routers},
            **dict(self.extra),
        }

    # ------------------------------------------------------------- tables
    def rows(self, *, ci_sep: str = " ") -> list[list[str]]:
        """Rows of the summary table (header first): routers, random mix, oracle, models.

        Max quality and savings carry their 95% bootstrap interval over the held-out prompts
        in brackets where it was computed (``n/a`` as a low end: the target is missed in more
        than 2.5% of the resamples), after ``ci_sep``.
        """
        header = [
            "router",
            "max quality",
            "savings @parity",
            "@97%",
            "@95%",
            "APGR",
            "CPT(50%)",
            "CPT(80%)",
            "AIQ",
        ]
        rows = [header]
        for s in (*self.routers, self.random_mix):
            rows.append(
                [
                    s.name,
                    _fmt(s.max_quality) + _ci(s, "max_quality", pct=False, sep=ci_sep),
                    _pct(s.savings_at_parity) + _ci(s, "savings_at_parity", pct=True, sep=ci_sep),
                    _pct(s.savings_at_97) + _ci(s, "savings_at_97", pct=True, sep=ci_sep),
                    _pct(s.savings_at_95) + _ci(s, "savings_at_95", pct=True, sep=ci_sep),
                    _fmt(s.apgr),
                    _pct(s.cpt50),
                    _pct(s.cpt80),
                    _fmt(s.aiq),
                ]
            )
        return rows

    def model_rows(self) -> list[list[str]]:
        """Rows (header first) of single models and the oracle: quality and USD per prompt."""
        b = self.baselines
        rows = [["baseline", "quality", "USD / prompt", "role"]]
        for p in b.models:
            role = ", ".join(
                r for r, ok in (("best single", p is b.best), ("cheapest", p is b.weak)) if ok
            )
            rows.append([p.name, _fmt(p.quality), f"{p.cost_usd:.3g}", role])
        rows.append(["oracle", _fmt(b.oracle.quality), f"{b.oracle.cost_usd:.3g}", "limit"])
        return rows

    def benchmark_rows(self) -> list[list[str]]:
        """Rows (header first) of each router's metrics per top-level task (benchmark)."""
        rows = [
            ["router", "benchmark", "prompts", "APGR", "CPT(50%)", "CPT(80%)", "@95%", "@parity"]
        ]
        for name, groups in self.by_benchmark.items():
            for group, s in groups.items():
                n = len(s.curve.choices[0]) if s.curve is not None else 0
                rows.append(
                    [
                        name,
                        group,
                        str(n),
                        _fmt(s.apgr),
                        _pct(s.cpt50),
                        _pct(s.cpt80),
                        _pct(s.savings_at_95),
                        _pct(s.savings_at_parity),
                    ]
                )
        return rows

    def header_lines(self) -> list[str]:
        """The context of the numbers: data, split, sizes, best single model, cost kind."""
        b = self.baselines
        split = self.split
        if self.test_tasks:
            split += f" (held-out tasks: {', '.join(self.test_tasks)})"
        return [
            f"data: {self.dataset}; split: {split}, seed {self.seed}; "
            f"train {self.n_train_prompts} prompts, test {self.n_test_prompts} prompts",
            f"best single: {b.best.name} (quality {b.best.quality:.3f}, "
            f"${b.best.cost_usd:.3g}/prompt); cheapest: {b.weak.name}",
            f"cost: {self.cost_kind} ({COST_NOTES[self.cost_kind]})",
        ]

    def to_markdown(self, *, per_task: bool = True) -> str:
        """The report as markdown: context lines, summary table, baselines, per-task table."""
        lines = [f"- {line}" for line in self.header_lines()]
        lines += ["", *_md_table(self.rows()), "", *_md_table(self.model_rows())]
        if any(self.by_benchmark.values()):
            lines += ["", "Per benchmark (each with its own best single and cheapest model):", ""]
            lines += _md_table(self.benchmark_rows())
        if per_task and self.routers and self.routers[0].per_task:
            first = self.routers[0]
            lines += ["", f"Per task, {first.name} at its operating point:", ""]
            rows = [["task", "prompts", "quality", "USD / prompt", "best single q", "its USD"]]
            for task, (n, q, c, bq, bc) in first.per_task.items():
                rows.append([task, str(n), _fmt(q), f"{c:.3g}", _fmt(bq), f"{bc:.3g}"])
            lines += _md_table(rows)
        return "\n".join(lines) + "\n"

    def print_rich(self) -> None:
        """Print the summary and baseline tables to the terminal with rich (intervals below)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console(width=max(Console().width, 120))
        for line in self.header_lines():
            console.print(line, highlight=False, soft_wrap=True)
        for rows in (self.rows(ci_sep="\n"), self.model_rows()):
            table = Table(*rows[0])
            for column in table.columns:
                column.no_wrap = True
            for row in rows[1:]:
                table.add_row(*(escape(cell) for cell in row))  # "[n/a, ...]" is not markup
            console.print(table)
        console.print(
            "Savings are against always calling the best single model. Below each value: its "
            "95% paired-bootstrap interval over the held-out prompts (1,000 resamples, the "
            "trained router fixed). n/a: the curve never reaches that quality (savings), or "
            "the best single model is also the cheapest (APGR, CPT).",
            highlight=False,
            soft_wrap=True,
        )

    # --------------------------------------------------------------- plot
    def plot(self, path: str | Path, *, title: str | None = None) -> None:
        """Save a PNG of each router's curve, every single model, the random mix and the oracle.

        Raises:
            ImportError: If matplotlib (the ``lab`` extra) is not installed.
        """
        from turnout.evaluation.plot import plot_report

        plot_report(self, Path(path), title=title)


def _metrics_json(s: RouterSummary) -> dict[str, Any]:
    return {
        "apgr": _num(s.apgr),
        "cpt50": _num(s.cpt50),
        "cpt80": _num(s.cpt80),
        "aiq": _num(s.aiq),
        "savings_at_parity": _num(s.savings_at_parity),
        "savings_at_95": _num(s.savings_at_95),
        "savings_at_97": _num(s.savings_at_97),
        "max_quality": _num(s.max_quality),
        "ci95": _ci_json(s),
        "n_prompts": len(s.curve.choices[0]) if s.curve is not None else None,
    }


def _md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    head, *body = rows
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return out
