"""Routing speed: one decision (feature extraction included), training time, peak memory.

Measures, on this machine:

1. training the default router (``turnout.predictors.DEFAULT_PREDICTOR`` with the fast
   hashing encoder, plus the output-length predictor) on **all** of ``llmrouter``
   (goal: < 60 s), and the process's peak resident memory;
2. p50 / p99 of one routing decision for a 256-token prompt with the fast encoder (goal:
   p50 <= 0.5 ms): building the :class:`~turnout.types.RouteRequest` from an OpenAI chat body
   (text extraction, token count) plus ``Router.route`` (encoding, quality and length
   prediction, constraints, utility policy);
3. the same with the sentence encoder (all-MiniLM-L6-v2, ``ml`` extra; goal: p50 <= 20 ms),
   its kNN trained on a subset of the prompts (the latency depends on the prompt, not on
   the training set size beyond the similarity product).

Usage::

    python benchmarks/route_latency.py [--data PATH] [--calls N] [--skip-sentence]

Writes ``benchmarks/results/route_latency.md`` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from turnout.evaluation.datasets import OutcomeTable, load_outcomes
from turnout.evaluation.lab import fit_length_predictor
from turnout.features import count_tokens, encoders, route_request_from_chat
from turnout.policies import UtilityPolicy
from turnout.predictors import (
    DEFAULT_PREDICTOR,
    PREDICTORS,
    KNNPredictor,
    OutputLengthPredictor,
)
from turnout.predictors._common import single_thread
from turnout.router import Router

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "llmrouter.jsonl.gz"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prompt_of_tokens(texts: list[str], target: int = 256) -> str:
    """Real dataset prompts joined and cut to about ``target`` tokens (turnout's counter)."""
    words: list[str] = []
    for text in texts:
        words += text.split()
        if count_tokens(" ".join(words)) >= target:
            break
    while count_tokens(" ".join(words)) > target:
        words.pop()
    return " ".join(words)


def timings_ms(fn: Callable[[], object], calls: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


Row = tuple[str, str, str, str]


def knn_rows(router: Router, prompt: str, body: Mapping[str, Any], calls: int) -> list[Row]:
    """The kNN member alone, and a decision with its matrix cut (what the rest costs)."""
    predictor = router.predictor
    members = [m for m in getattr(predictor, "members_", []) if isinstance(m, KNNPredictor)]
    if not members or predictor is None:
        return []
    knn = members[0]
    row = predictor.encoder_.encode_one(prompt)  # type: ignore[attr-defined]

    def knn_alone() -> object:
        with single_thread():
            return knn._predict_row(row)

    alone = timings_ms(knn_alone, calls)
    # The same decisions with the kNN member's training matrix cut to 512 rows, small enough
    # not to flush the CPU caches on every call (other predictions: a diagnostic only).
    small = pickle.loads(pickle.dumps(predictor))
    for member in small.members_:
        if isinstance(member, KNNPredictor):
            member.train_ = np.ascontiguousarray(member.train_[:512])
            member._filled = member._filled[:512]
            member._observed = member._observed[:512]
    small_router = Router(
        router.catalog,
        router.candidates,
        router.policy,
        predictor=small,
        length_predictor=router.length_predictor,
    )

    def decide_small() -> object:
        encoders._LAST[0] = None
        return small_router.route(route_request_from_chat(body))

    cut = timings_ms(decide_small, calls)
    n_train, n_dims = knn.train_.shape
    return [
        (
            f"of which: the kNN member ({n_train:,} x {n_dims} float32 scan, top "
            f"{knn.n_neighbors}; timed alone, so with warmer caches)",
            f"{pct(alone, 50):.3f} ms",
            f"{pct(alone, 99):.3f} ms",
            "",
        ),
        (
            "diagnostic: one decision with the kNN member's matrix cut to 512 rows "
            "(other predictions; the rest of a decision when the scan does not flush the caches)",
            f"{pct(cut, 50):.3f} ms",
            f"{pct(cut, 99):.3f} ms",
            "",
        ),
    ]


def sentence_rows(
    table: OutcomeTable,
    length: OutputLengthPredictor | None,
    body: Mapping[str, Any],
    n_train: int,
    calls: int,
) -> list[Row]:
    """One decision with the sentence encoder, traced and plain transformer alternately.

    Raises:
        ImportError: If the ``ml`` extra is missing.
    """
    n = min(n_train, table.n_prompts)
    knn = KNNPredictor(encoder="minilm").fit(
        list(table.prompts[:n]), table.scores[:n], list(table.models)
    )
    sentence = knn.encoder_
    assert isinstance(sentence, encoders.SentenceEncoder)
    precision = sentence.resolved_precision()
    slow_router = Router(
        table.to_catalog(),
        list(table.models),
        UtilityPolicy(0.001),
        predictor=knn,
        length_predictor=length,
    )

    def decide_slow() -> object:
        return slow_router.route(route_request_from_chat(body))

    # One prompt runs through the traced transformer; the plain module is timed in
    # alternating blocks of 10 decisions, so that load changes hit both alike.
    traced = sentence._traced()
    slow: list[float] = []
    plain: list[float] = []
    timings_ms(decide_slow, 5)
    for _ in range(max(1, calls // 10)):
        sentence._traced_net = traced
        slow += timings_ms(decide_slow, 10, warmup=1)
        if traced is not None:
            sentence._traced_net = None
            plain += timings_ms(decide_slow, 10, warmup=1)
    sentence._traced_net = traced
    rows = [
        (
            f"one decision, sentence encoder (knn over MiniLM in {precision}, "
            f"{n} training prompts{', traced transformer' if traced is not None else ''})",
            f"{pct(slow, 50):.2f} ms",
            f"{pct(slow, 99):.2f} ms",
            "p50 <= 20 ms",
        )
    ]
    if plain:
        rows.append(
            (
                "the same through the plain (untraced) transformer, timed in alternating "
                "blocks of 10",
                f"{pct(plain, 50):.2f} ms",
                f"{pct(plain, 99):.2f} ms",
                "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--sentence-calls", type=int, default=100)
    parser.add_argument("--sentence-train", type=int, default=1000)
    parser.add_argument("--skip-sentence", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "route_latency.md")
    args = parser.parse_args()

    table = load_outcomes(args.data)
    rss_loaded = peak_rss_mib()
    started = time.perf_counter()
    predictor = PREDICTORS[DEFAULT_PREDICTOR]().fit(
        list(table.prompts), table.scores, list(table.models)
    )
    length = fit_length_predictor(table)
    train_s = time.perf_counter() - started
    rss_trained = peak_rss_mib()
    catalog = table.to_catalog()
    router = Router(
        catalog,
        list(table.models),
        UtilityPolicy(willingness_to_pay_usd=0.001),
        predictor=predictor,
        length_predictor=length,
    )
    prompt = prompt_of_tokens(list(table.prompts[::7]))
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}

    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())

    def decide() -> object:
        # A new prompt's decision: the encoders' one-prompt cache is emptied first, so each
        # call encodes the prompt (once, shared by the quality and length predictors).
        encoders._LAST[0] = None
        return router.route(route_request_from_chat(body))

    def decide_again() -> object:
        return router.route(route_request_from_chat(body))

    fast = timings_ms(decide, args.calls)
    again = timings_ms(decide_again, args.calls)

    def encode_uncached() -> object:
        encoders._LAST[0] = None  # defeat the one-prompt cache the router relies on
        return predictor.encoder_.encode_one(prompt)

    encode = timings_ms(encode_uncached, args.calls)
    tokens = timings_ms(lambda: count_tokens(prompt), args.calls)
    rows = [
        (
            f"one decision, fast encoder ({DEFAULT_PREDICTOR}), 256-token prompt",
            f"{pct(fast, 50):.3f} ms",
            f"{pct(fast, 99):.3f} ms",
            "p50 <= 0.5 ms",
        ),
        (
            "the same prompt again (encoding cached)",
            f"{pct(again, 50):.3f} ms",
            f"{pct(again, 99):.3f} ms",
            "",
        ),
        (
            "of which: encoding the prompt (hashing-words, uncached)",
            f"{pct(encode, 50):.3f} ms",
            f"{pct(encode, 99):.3f} ms",
            "",
        ),
        (
            "of which: counting the prompt's tokens",
            f"{pct(tokens, 50):.3f} ms",
            f"{pct(tokens, 99):.3f} ms",
            "",
        ),
        *knn_rows(router, prompt, body, args.calls),
    ]
    sentence_note = "skipped (--skip-sentence)"
    if not args.skip_sentence:
        try:
            rows += sentence_rows(table, length, body, args.sentence_train, args.sentence_calls)
            sentence_note = "measured"
        except ImportError as exc:
            sentence_note = f"not measured: {exc}"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    lines = [
        "# Routing speed",
        "",
        "Command: `python benchmarks/route_latency.py` "
        f"(data: `{args.data.name}`, {table.n_prompts} prompts x {len(table.models)} models; "
        f"code at commit {commit}).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average (1 / 5 / 15 min) {load_start} before the "
        f"fast-encoder timings and {load} at the end (the machine is shared with other jobs, "
        "so tails are noisy).",
        "",
        "| measure | p50 | p99 | goal |",
        "|---|---:|---:|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "| training (all prompts, fast encoder) | value | goal |",
        "|---|---:|---|",
        f"| `{DEFAULT_PREDICTOR}` quality predictor + output-length predictor | "
        f"{train_s:.1f} s | < 60 s |",
        f"| peak resident memory after loading the data | {rss_loaded:.0f} MiB | |",
        f"| peak resident memory after training | {rss_trained:.0f} MiB | |",
        f"| peak resident memory at the end | {peak_rss_mib():.0f} MiB | |",
        "",
        f"Decisions measured: {args.calls} (fast), {args.sentence_calls} (sentence encoder: "
        f"{sentence_note}). Each includes `route_request_from_chat` (text extraction, token "
        "count) and `Router.route` (encoding, quality and output-length prediction, "
        "constraints, utility policy); the first row empties the one-prompt encoding cache "
        "before every call, as for a new prompt, the second does not. Single-prompt "
        "predictions run with one BLAS / torch thread. Median of all "
        f"{args.calls} fast calls: {statistics.median(fast):.3f} ms.",
        "",
        "Where the fast decision's time goes: the kNN member compares the prompt with every "
        "training prompt, a scan of a float32 matrix (1.4 MB for 5,610 x 64; it was 2.9 MB "
        "with 128 dimensions, more than one core's 2 MB L2 cache on this machine, which "
        "evicted the rest of the decision's data and code from the cache on every call: 0.55 "
        "ms p50 per decision with 128, 0.43 ms with 64, both measured with this script; the "
        "quality of both is in `benchmarks/results/knn_dimensions.md`). The diagnostic row "
        "(the same decisions with that matrix cut to 512 rows) is the rest's cost without the "
        "scan's memory traffic, which the other jobs on the machine share. The sentence "
        "encoder's time is the transformer's "
        "forward pass on one thread; the traced module runs the same kernels with less Python "
        "(outputs bitwise equal to the plain module's, checked when it is built).",
        "",
    ]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
