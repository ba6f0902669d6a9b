"""The demo's report, built from the gateway's own ledger.

The join: every request the client sent has the gateway's ``x-request-id``; the ledger row of
that id says which model answered, what it cost (priced by the gateway from the usage the
upstream reported) and how long it took. The quality of the request is the recorded score of
the answering model on that prompt (the replay upstream answered with exactly that recorded
answer). Baselines (always the best model, always the cheapest, the oracle) are computed from
the dataset on the same prompts, at the dataset's costs, which are the very costs the gateway
charges for those answers (the report checks this per request).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from turnout.demo.client import SentRequest
from turnout.evaluation.datasets import OutcomeTable
from turnout.storage.base import LedgerRow

__all__ = ["Baseline", "DemoReport", "ModelUsage", "build_report"]


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What the gateway's ledger says one model did during the run."""

    model: str
    requests: int
    share: float
    cost_usd: float
    mean_quality: float


@dataclass(frozen=True, slots=True)
class Baseline:
    """A fixed strategy on the same prompts, from the dataset.

    Attributes:
        name: Label (``"always gpt-4-1106-preview"``).
        model: The model it always calls (``""`` for the oracle).
        cost_usd: Total cost on the answered prompts, USD.
        cost_per_request_usd: Mean cost per prompt, USD.
        mean_quality: Mean recorded score.
    """

    name: str
    model: str
    cost_usd: float
    cost_per_request_usd: float
    mean_quality: float


@dataclass
class DemoReport:
    """Everything ``turnout demo`` reports; :meth:`to_markdown` and ``asdict`` render it."""

    dataset: str
    dataset_title: str
    dataset_source: str
    dataset_licence: str
    cost_kind: str
    cost_note: str
    router: str
    n_train: int
    n_test: int
    n_sent: int
    concurrency: int
    n_ok: int
    n_failed: int
    ledger_rows: int
    per_model: list[ModelUsage]
    cost_usd: float
    cost_per_request_usd: float
    unpriced_requests: int
    mean_quality: float
    always_best: Baseline
    always_cheapest: Baseline
    oracle: Baseline
    singles: list[Baseline]
    random_mix_quality_at_same_cost: float
    savings_vs_best: float
    quality_vs_best: float
    latency_s: dict[str, float]
    gateway_overhead_s: dict[str, float]
    client_latency_s: dict[str, float]
    max_cost_mismatch_usd: float
    prompt_mismatches: int
    library_agreement: int
    upstream_delay_s: float
    router_trained_s: float = 0.0
    router_from_cache: bool = False
    command: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN, e.g. the quality of a model that got no request, is None)."""
        return dict(_no_nan(asdict(self)))

    def headline(self) -> str:
        """The one-line savings figure."""
        return (
            f"turnout saved {self.savings_vs_best:.1%} of the cost of always calling "
            f"{self.always_best.model} (${self.cost_usd:.4f} vs ${self.always_best.cost_usd:.4f} "
            f"for {self.n_ok} prompts) at {self.quality_vs_best:.1%} of its quality "
            f"({self.mean_quality:.3f} vs {self.always_best.mean_quality:.3f}); costs "
            f"{self.cost_kind}."
        )

    def to_markdown(self) -> str:
        """The report as markdown."""
        ms = 1000.0
        lines = [
            f"# turnout demo: {self.dataset}",
            "",
            f"**{self.headline()}**",
            "",
            f"- Data: {self.dataset_title}. Source: {self.dataset_source} "
            f"({self.dataset_licence}).",
            "- Upstreams: one loopback server per model, **replaying recorded outcomes** (the "
            "recorded answer text and usage of that model on that prompt), not live models; "
            + (
                "they answer at once."
                if self.upstream_delay_s == 0
                else f"each waits {self.upstream_delay_s:g} s before answering."
            ),
            f"- Router: {self.router}; trained on {self.n_train} prompts ("
            + (
                "loaded from the cache"
                if self.router_from_cache
                else f"{self.router_trained_s:.1f} s"
            )
            + f"), tested on "
            f"{self.n_sent} held-out prompts (of {self.n_test}), sent through the gateway with "
            f'the `openai` client (`model: "auto"`) at concurrency {self.concurrency}.',
            f"- Costs are **{self.cost_kind}**: {self.cost_note}",
            f"- Everything below the baselines comes from the gateway's SQLite ledger "
            f"({self.ledger_rows} rows; {self.n_ok} answered, {self.n_failed} failed).",
            "",
            "## Cost and quality on the held-out prompts",
            "",
            "| strategy | cost (USD) | per request (USD) | quality (mean recorded score) |",
            "|---|---:|---:|---:|",
            f"| **turnout `auto` (from the ledger)** | {self.cost_usd:.6f} | "
            f"{self.cost_per_request_usd:.8f} | {self.mean_quality:.3f} |",
        ]
        for b in (*self.singles, self.oracle):
            tags = [
                tag
                for tag, ref in (("best", self.always_best), ("cheapest", self.always_cheapest))
                if b.model and b.model == ref.model
            ]
            label = b.name + (f" ({' and '.join(tags)})" if tags else "")
            lines.append(
                f"| {label} | {b.cost_usd:.6f} | {b.cost_per_request_usd:.8f} | "
                f"{b.mean_quality:.3f} |"
            )
        lines += [
            "",
            f"Savings against {self.always_best.name}: **{self.savings_vs_best:.1%}**, "
            f"keeping {self.quality_vs_best:.1%} of its quality. A random mix of the cheapest "
            f"and the best model at the same cost would score "
            f"{self.random_mix_quality_at_same_cost:.3f}. The oracle (per prompt, the cheapest "
            "model with the best recorded score) is an upper bound no router reaches.",
        ]
        if self.always_best.model == self.always_cheapest.model:
            lines += [
                "",
                f"On this dataset {self.always_best.model} is both the best and the cheapest "
                "model (on the training prompts): there is nothing to save against it, and the "
                "router's job is only to avoid the dearer, weaker model.",
            ]
        lines += [
            "",
            "## Requests per model (ledger)",
            "",
            "| model | requests | share | cost (USD) | quality |",
            "|---|---:|---:|---:|---:|",
        ]
        for m in self.per_model:
            lines.append(
                f"| {m.model} | {m.requests} | {m.share:.1%} | {m.cost_usd:.6f} | "
                + ("-" if math.isnan(m.mean_quality) else f"{m.mean_quality:.3f}")
                + " |"
            )
        lines += [
            "",
            "## Latency (ledger; client for the last row)",
            "",
            "| measure | p50 (ms) | p90 (ms) | p99 (ms) |",
            "|---|---:|---:|---:|",
        ]
        for label, d in (
            ("request latency in the gateway", self.latency_s),
            ("gateway overhead (latency minus upstream attempts)", self.gateway_overhead_s),
            ("client wall time", self.client_latency_s),
        ):
            lines.append(
                f"| {label} | {d['p50'] * ms:.2f} | {d['p90'] * ms:.2f} | {d['p99'] * ms:.2f} |"
            )
        lines += [
            "",
            "The gateway, the replay upstreams and the `openai` client share one Python process "
            "here (one event loop each, one GIL), so these latencies include contention with the "
            "client and are an upper bound on the gateway's own overhead; the gateway benchmark "
            "measures it in isolation.",
            "",
            "## Checks",
            "",
            f"- Ledger cost vs the dataset's cost of the same answers: largest difference "
            f"${self.max_cost_mismatch_usd:.2e}.",
            f"- Ledger prompt text differing from the prompt sent: {self.prompt_mismatches}.",
            f"- The library's offline replay of the same router file chose the model the "
            f"gateway chose for {self.library_agreement} of {self.n_ok} prompts.",
            f"- Requests without a price in the ledger: {self.unpriced_requests}.",
        ]
        if self.command:
            lines += ["", f"Produced by: `{self.command}`"]
        if self.files:
            lines += ["", "Files: " + ", ".join(f"`{v}`" for v in self.files.values())]
        return "\n".join(lines) + "\n"


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan}
    arr = np.asarray(values, dtype=float)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


def _baseline(model: str, cost: float, quality: float, n: int) -> Baseline:
    name = f"always {model}" if model else "oracle (upper bound)"
    return Baseline(name, model, cost, cost / n if n else math.nan, quality)


def build_report(
    *,
    test: OutcomeTable,
    train: OutcomeTable,
    sent: Sequence[SentRequest],
    ledger: Sequence[LedgerRow],
    info: Mapping[str, Any],
) -> DemoReport:
    """Join the client's request ids to the ledger and compare with the baselines.

    Args:
        test: The held-out prompts that were sent, in the order of ``SentRequest.row``.
        train: The training prompts (chooses which model is "best" and "cheapest" without
            looking at the test prompts).
        sent: What the client sent, one per prompt.
        ledger: Every row of the gateway's ledger for the run.
        info: Descriptive fields of :class:`DemoReport` (``dataset``, ``dataset_title``,
            ``dataset_source``, ``dataset_licence``, ``router``, ``concurrency``,
            ``upstream_delay_s``, ``n_test``, ``command``, and ``library_choices``: the model
            the library's offline replay picks per test row).

    Returns:
        The report.
    """
    by_id = {r.request_id: r for r in ledger}
    library: Sequence[str] = info.get("library_choices", ())
    rows: list[tuple[int, LedgerRow]] = []
    for s in sent:
        row = by_id.get(s.request_id)
        if row is not None and row.status == "ok" and row.model in test.models:
            rows.append((s.row, row))
    n_ok = len(rows)
    idx = np.array([i for i, _ in rows], dtype=np.intp)
    cols = np.array([test.model_index(str(r.model)) for _, r in rows], dtype=np.intp)
    quality = test.scores[idx, cols] if n_ok else np.zeros(0)
    dataset_cost = test.cost_usd[idx, cols] if n_ok else np.zeros(0)
    ledger_cost = np.array([np.nan if r.cost_usd is None else r.cost_usd for _, r in rows])
    priced = ~np.isnan(ledger_cost)
    mismatch = float(np.max(np.abs(ledger_cost[priced] - dataset_cost[priced]), initial=0.0))
    prompt_mismatches = sum(
        1 for i, r in rows if r.prompt_text is not None and test.prompts[i] not in r.prompt_text
    )
    cost_usd = float(ledger_cost[priced].sum())

    per_model = []
    for j, model in enumerate(test.models):
        mask = cols == j
        per_model.append(
            ModelUsage(
                model=model,
                requests=int(mask.sum()),
                share=float(mask.mean()) if n_ok else 0.0,
                cost_usd=float(np.nansum(ledger_cost[mask])),
                mean_quality=float(quality[mask].mean()) if mask.any() else math.nan,
            )
        )

    train_quality = np.nanmean(train.scores, axis=0)
    train_cost = np.nanmean(train.cost_usd, axis=0)
    best_j = int(np.nanargmax(train_quality))
    cheap_j = int(np.nanargmin(train_cost))
    sub_scores = test.scores[idx]
    sub_costs = test.cost_usd[idx]
    singles = [
        _baseline(
            model,
            float(np.nansum(sub_costs[:, j])),
            float(np.nanmean(sub_scores[:, j])) if n_ok else math.nan,
            n_ok,
        )
        for j, model in enumerate(test.models)
    ]
    best, cheap = singles[best_j], singles[cheap_j]
    oracle_cost = 0.0
    oracle_quality = 0.0
    for scores_row, costs_row in zip(sub_scores, sub_costs, strict=True):
        top = np.nanmax(scores_row)
        winners = np.flatnonzero(scores_row == top)
        oracle_cost += float(np.min(costs_row[winners]))
        oracle_quality += float(top)
    oracle = _baseline("", oracle_cost, oracle_quality / max(n_ok, 1), n_ok)

    mean_quality = float(quality.mean()) if n_ok else math.nan
    span = best.cost_usd - cheap.cost_usd
    p = min(max((cost_usd - cheap.cost_usd) / span, 0.0), 1.0) if span > 0 else 1.0
    random_mix = (1 - p) * cheap.mean_quality + p * best.mean_quality

    recorded = bool(test.cost_recorded[idx, cols].all()) if n_ok else False
    cost_kind = "recorded" if recorded else "modelled"
    cost_note = (
        "the upstreams replayed the token counts the source recorded for each call and the "
        "gateway priced them at the dataset's prices; they equal the source's recorded "
        "cost_usd (see Checks)."
        if recorded
        else "the source recorded no token usage, so turnout counted the prompt and the "
        "recorded answer with its offline tokenizer; the upstreams report those counts and "
        "the gateway priced them at the list prices of the dataset's price file."
        if test.responses is not None
        else "the source recorded neither token usage nor answers, so turnout counted the "
        "prompt with its offline tokenizer and took each model's output tokens from its "
        "per-model estimate; the upstreams report those counts and the gateway priced them "
        "at the list prices of the dataset's price file."
    )
    overhead = [max(r.latency_s - sum(a.latency_s for a in r.attempts), 0.0) for _, r in rows]
    ok_ids = {r.request_id for _, r in rows}
    return DemoReport(
        dataset=str(info["dataset"]),
        dataset_title=str(info["dataset_title"]),
        dataset_source=str(info["dataset_source"]),
        dataset_licence=str(info["dataset_licence"]),
        cost_kind=cost_kind,
        cost_note=cost_note,
        router=str(info["router"]),
        n_train=len(train),
        n_test=int(info.get("n_test", len(test))),
        n_sent=len(sent),
        concurrency=int(info["concurrency"]),
        n_ok=n_ok,
        n_failed=len(sent) - n_ok,
        ledger_rows=len(ledger),
        per_model=per_model,
        cost_usd=cost_usd,
        cost_per_request_usd=cost_usd / n_ok if n_ok else math.nan,
        unpriced_requests=int((~priced).sum()),
        mean_quality=mean_quality,
        always_best=best,
        always_cheapest=cheap,
        oracle=oracle,
        singles=singles,
        random_mix_quality_at_same_cost=float(random_mix),
        savings_vs_best=1 - cost_usd / best.cost_usd if best.cost_usd > 0 else math.nan,
        quality_vs_best=mean_quality / best.mean_quality if best.mean_quality else math.nan,
        latency_s=_percentiles([r.latency_s for _, r in rows]),
        gateway_overhead_s=_percentiles(overhead),
        client_latency_s=_percentiles([s.client_latency_s for s in sent if s.request_id in ok_ids]),
        max_cost_mismatch_usd=mismatch,
        prompt_mismatches=prompt_mismatches,
        library_agreement=sum(1 for i, r in rows if i < len(library) and library[i] == r.model),
        upstream_delay_s=float(info.get("upstream_delay_s", 0.0)),
        router_trained_s=float(info.get("router_trained_s", 0.0)),
        router_from_cache=bool(info.get("router_from_cache", False)),
        command=str(info.get("command", "")),
    )
