"""Latency that task-aware routes add to a routing decision.

For each prompt (a seeded sample of the shared datasets' prompts plus the hand-written
classifier examples) it times, in-process and single-threaded:

* ``compute_signals`` (category classifier, difficulty, language, request shape);
* ``match_rules`` over the rules of ``examples/enterprise.yaml``;
* the whole ``RuleRouter.route`` (signals + match + the matched rule's ``Router.route``),
  against ``Router.route`` alone on the same request with the route's own router: the
  difference is what rules add to a decision.

Each timing is the best of ``--repeat`` runs per prompt (to shed scheduler noise on a shared
machine); percentiles are over prompts. Results go to ``benchmarks/results/signals.md``.

Run: ``python benchmarks/signals_latency.py`` (about half a minute; ``--predictor none`` skips
fitting the quality predictor).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from turnout import route_request_from_chat  # noqa: E402
from turnout.config import load_config  # noqa: E402
from turnout.evaluation.datasets import load_outcomes  # noqa: E402
from turnout.predictors import PREDICTORS  # noqa: E402
from turnout.router import Router  # noqa: E402
from turnout.rules import build_policy, match_rules, rule_router_for_route  # noqa: E402
from turnout.signals import compute_signals, default_classifier  # noqa: E402

RESULTS = ROOT / "benchmarks/results/signals.md"
EXAMPLES = ROOT / "src/turnout/data/classifier/examples"


def load_prompts(data_dir: Path, n: int, seed: int) -> list[str]:
    """A seeded sample of unique prompts from the shared datasets and the examples."""
    prompts: set[str] = set()
    for name in ("routellm", "llmrouter", "routerarena"):
        path = data_dir / f"{name}.jsonl.gz"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                prompts.update(json.loads(line)["prompt"] for line in fh)
    for path in EXAMPLES.glob("*.txt"):
        prompts.update(
            line.replace("\\n", "\n")
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        )
    ordered = sorted(prompts)
    random.Random(seed).shuffle(ordered)
    return ordered[:n]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls, in microseconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / 1e3)
    return best


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> None:
    """Time every step and write the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--predictor",
        default="knn",
        help="quality predictor fitted on llmrouter prompts and run in every decision "
        "(a key of turnout.predictors.PREDICTORS; 'none' for catalog priors)",
    )
    parser.add_argument("--fit-prompts", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    config = load_config(ROOT / "examples/enterprise.yaml")
    route = config.routes["auto"]
    catalog = config.catalog()
    predictor = None
    if args.predictor != "none":
        table = load_outcomes(args.data / "llmrouter.jsonl.gz")
        n = args.fit_prompts
        predictor = PREDICTORS[args.predictor]()
        predictor.fit(list(table.prompts[:n]), table.scores[:n], list(table.models))
    base = Router(
        catalog,
        route.candidates,
        build_policy(route.policy, route.params),
        predictor,
        random_state=route.random_state,
    )
    rules_router = rule_router_for_route(
        "auto", route, catalog, base=base, default_tier=route.constraints.tier
    )
    assert rules_router is not None
    plain = rules_router.default_router
    default_classifier()  # load once, outside the timings

    prompts = load_prompts(args.data, args.prompts, args.seed)
    timings: dict[str, list[float]] = {"signals": [], "match": [], "plain": [], "rules": []}
    overhead: list[float] = []
    for text in prompts:
        body: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": text}]}
        request = route_request_from_chat(body, tier="interactive", metadata={"team": "support"})
        signals = compute_signals(request, body)
        t_sig = best_of(lambda: compute_signals(request, body), args.repeat)  # noqa: B023
        t_match = best_of(lambda: match_rules(rules_router.rules, signals), args.repeat)  # noqa: B023
        t_plain = best_of(lambda: plain.route(request), args.repeat)  # noqa: B023
        t_rules = best_of(lambda: rules_router.route(request, body=body), args.repeat)  # noqa: B023
        for key, value in zip(timings, (t_sig, t_match, t_plain, t_rules), strict=True):
            timings[key].append(value)
        overhead.append(t_rules - t_plain)

    chars = [len(p) for p in prompts]
    if predictor is None:
        predictor_label = "none (catalog priors)"
    else:
        predictor_label = (
            f"`{args.predictor}` fitted on {args.fit_prompts} llmrouter prompts, run once per "
            "decision on both paths (its models are not the route's, so the router falls back "
            "to catalog priors for the scores, but the encoder and the prediction run in full)"
        )

    rows = [
        ("compute_signals", timings["signals"]),
        ("match_rules (5 rules)", timings["match"]),
        ("Router.route alone (route's own router)", timings["plain"]),
        ("RuleRouter.route (signals + match + Router.route)", timings["rules"]),
        ("**added by rules** (RuleRouter.route - Router.route, per prompt)", overhead),
    ]
    lines = [
        "# Signals and rules: latency added to a routing decision",
        "",
        f"Command: `python benchmarks/signals_latency.py --prompts {args.prompts} "
        f"--repeat {args.repeat} --seed {args.seed} --predictor {args.predictor}`",
        "",
        f"{len(prompts)} prompts (seeded sample of the shared datasets' prompts and the "
        f"hand-written classifier examples; median {statistics.median(chars):.0f} characters, "
        f"p99 {pct(chars, 99):.0f}); rules of `examples/enterprise.yaml`; quality predictor: "
        f"{predictor_label}. Best of {args.repeat} "
        f"runs per prompt, single thread, Python {platform.python_version()}, on a 2-core "
        "machine shared with other jobs (numbers are noisy upward, not downward).",
        "",
        "| step | p50 (µs) | p90 (µs) | p99 (µs) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {pct(values, 50):.0f} | {pct(values, 90):.0f} | {pct(values, 99):.0f} |"
        )
    lines += ["", f"Goal: added p50 <= 300 µs; measured {pct(overhead, 50):.0f} µs."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
