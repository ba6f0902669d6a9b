"""``turnout train`` and ``turnout route``: train a router file, and ask it for one decision."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from turnout.cli import app
from turnout.errors import TurnoutError

__all__ = ["route_command", "train_command"]

TRAIN_POLICIES = ("utility", "quality_floor", "threshold", "cheapest", "random")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _calibrate(
    name: str,
    table: Any,
    policy: str,
    *,
    seed: int,
    target_share: float,
    floor: float | None,
    strong_share: float,
    floor_confidence: float = 0.9,
    target_confidence: float = 0.9,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Policy parameters chosen on a validation part of the training data (never the test).

    Returns:
        ``(policy parameters, calibration facts for the metadata)``.
    """
    from turnout.evaluation.lab import complete_rows, fit_length_predictor, utility_policy
    from turnout.evaluation.replay import operating_point, requests_for, sweep
    from turnout.evaluation.splits import split_by_prompt
    from turnout.policies import calibrate_quality_floor, calibrate_threshold
    from turnout.predictors import PREDICTORS
    from turnout.router import Router

    fit_part, validation = split_by_prompt(table, test_size=0.2, seed=seed + 1)
    validation = complete_rows(validation)
    predictor = PREDICTORS[name]().fit(
        list(fit_part.prompts), fit_part.scores, list(fit_part.models)
    )
    router = Router(
        validation.to_catalog(),
        list(table.models),
        utility_policy(0.0),
        predictor=predictor,
        length_predictor=fit_length_predictor(fit_part),
        random_state=seed,
        name=name,
    )
    means = np.nanmean(validation.scores, axis=0)
    best = int(np.argmax(means))
    facts: dict[str, Any] = {
        "validation_prompts": validation.n_prompts,
        "best_single_model": table.models[best],
        "best_single_quality": float(means[best]),
    }
    if policy == "utility":
        curve = sweep(router, validation, utility_policy, n_points=48)
        k, reached = operating_point(curve, validation, target_share, confidence=target_confidence)
        facts.update(
            target_quality=target_share * float(means[best]),
            target_confidence=target_confidence,
            target_reached=reached,
            quality=float(curve.quality[k]),
            cost_per_prompt_usd=float(curve.cost_usd[k]),
        )
        return {"willingness_to_pay_usd": float(curve.willingness_to_pay[k])}, facts
    quality = np.asarray(router.predict_quality(validation.prompts))
    if policy == "quality_floor":
        wanted_floor = floor if floor is not None else target_share * float(means[best])
        requests = requests_for(validation.prompts)
        out = np.asarray(router.predict_output_tokens(validation.prompts))
        inp = np.array([r.input_tokens for r in requests], dtype=np.float64)[:, None]
        cost = np.array(
            [
                (inp[:, 0] * (c.input_usd_per_mtok or 0) + out[:, j] * (c.output_usd_per_mtok or 0))
                / 1e6
                for j, c in enumerate(router.cards)
            ]
        ).T
        threshold = calibrate_quality_floor(
            quality, validation.scores, cost, wanted_floor, confidence=floor_confidence
        )
        facts.update(floor=wanted_floor, floor_confidence=floor_confidence)
        return {"floor": wanted_floor, "threshold": threshold}, facts
    if policy == "threshold":
        cheap = int(np.argmin(np.nanmean(validation.cost_usd, axis=0)))
        if cheap == best:
            raise ValueError("the best single model is also the cheapest: nothing to route")
        gaps = quality[:, best] - quality[:, cheap]
        threshold = calibrate_threshold(gaps, strong_share)
        facts.update(strong_share=strong_share)
        return {
            "strong": table.models[best],
            "weak": table.models[cheap],
            "threshold": threshold,
        }, facts
    return {}, facts


@app.command("train")
def train_command(
    data: Annotated[Path, typer.Option("--data", help="Recorded outcomes, JSONL (gzip or plain).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Router file to write.")],
    predictor: Annotated[
        str | None,
        typer.Option("--predictor", help="Quality predictor (default: the default predictor)."),
    ] = None,
    policy: Annotated[
        str, typer.Option("--policy", help=f"Policy: {', '.join(TRAIN_POLICIES)}.")
    ] = "utility",
    willingness_to_pay: Annotated[
        float | None,
        typer.Option(
            "--willingness-to-pay",
            help="utility: USD per quality point. Default: calibrated on a validation split to "
            "the cheapest point reaching --target-share of the best single model.",
        ),
    ] = None,
    target_share: Annotated[
        float, typer.Option("--target-share", help="Share of the best single model's quality.")
    ] = 0.95,
    floor: Annotated[
        float | None, typer.Option("--floor", help="quality_floor: realised quality wanted.")
    ] = None,
    target_confidence: Annotated[
        float,
        typer.Option(
            "--target-confidence",
            help="utility: probability in [0.5, 1) that traffic like the validation prompts "
            "reaches --target-share (paired lower confidence bound; 0.5: no margin).",
        ),
    ] = 0.9,
    floor_confidence: Annotated[
        float,
        typer.Option(
            "--floor-confidence",
            help="quality_floor: probability in [0.5, 1) that traffic like the validation "
            "prompts clears --floor (0.5: the validation mean itself, no margin).",
        ),
    ] = 0.9,
    strong_share: Annotated[
        float, typer.Option("--strong-share", help="threshold: share of strong-model calls.")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the validation split.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Train a router on recorded outcomes and save it to one file.

    Fits the quality predictor and the output-length predictor on all of --data; the
    policy's knob is calibrated on a validation split of --data first (80/20 by prompt text).
    Load the file with `turnout route --router FILE` or a gateway route's `router_file`.
    Router files are pickles: share them only with people who trust you.
    """
    from turnout.artifact import save_router
    from turnout.evaluation.datasets import load_outcomes
    from turnout.evaluation.lab import fit_length_predictor
    from turnout.policies import POLICIES
    from turnout.predictors import DEFAULT_PREDICTOR, PREDICTORS
    from turnout.router import Router

    name = predictor or DEFAULT_PREDICTOR
    if name not in PREDICTORS:
        raise _fail(f"--predictor must be one of {', '.join(sorted(PREDICTORS))}; got {name!r}")
    if policy not in TRAIN_POLICIES:
        raise _fail(f"--policy must be one of {', '.join(TRAIN_POLICIES)}; got {policy!r}")
    if not 0 < target_share <= 1:
        raise _fail(f"--target-share must be in (0, 1]; got {target_share}")
    if not 0.5 <= target_confidence < 1:
        raise _fail(f"--target-confidence must be in [0.5, 1); got {target_confidence}")
    if not 0.5 <= floor_confidence < 1:
        raise _fail(f"--floor-confidence must be in [0.5, 1); got {floor_confidence}")
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    console = Console(stderr=True)
    with Progress(*columns, TimeElapsedColumn(), console=console, disable=quiet) as bar:
        steps = bar.add_task("loading outcomes", total=5)
        try:
            table = load_outcomes(data)
            bar.update(steps, advance=1, description=f"calibrating the {policy} policy")
            params: dict[str, Any]
            facts: dict[str, Any] = {}
            if policy == "utility" and willingness_to_pay is not None:
                params = {"willingness_to_pay_usd": willingness_to_pay}
            else:
                params, facts = _calibrate(
                    name,
                    table,
                    policy,
                    seed=seed,
                    target_share=target_share,
                    floor=floor,
                    strong_share=strong_share,
                    floor_confidence=floor_confidence,
                    target_confidence=target_confidence,
                )
            chosen_policy = POLICIES[policy](**params)
            bar.update(steps, advance=1, description=f"fitting {name} on all prompts")
            quality = PREDICTORS[name]().fit(list(table.prompts), table.scores, list(table.models))
            bar.update(steps, advance=1, description="fitting the output-length predictor")
            length = fit_length_predictor(table)
            bar.update(steps, advance=1, description=f"saving {output}")
            router = Router(
                table.to_catalog(),
                list(table.models),
                chosen_policy,
                predictor=quality,
                length_predictor=length,
                random_state=seed,
                name=f"{name}+{policy}",
            )
            save_router(
                router,
                output,
                metadata={
                    "dataset": str(data),
                    "n_prompts": table.n_prompts,
                    "cost_kind": table.cost_kind,
                    "predictor": name,
                    "calibration": facts,
                    "train_s": round(time.perf_counter() - started, 3),
                },
            )
            bar.update(steps, advance=1, description="done")
        except (TurnoutError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    shown = ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
    typer.echo(
        f"wrote {output}: {name} predictor, {policy} policy ({shown}), "
        f"{table.n_prompts} prompts x {len(table.models)} models, "
        f"{time.perf_counter() - started:.1f} s"
    )


def _money(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:.7f}"


@app.command("route")
def route_command(
    prompt: Annotated[str, typer.Argument(help="The user prompt to route.")],
    router_file: Annotated[
        Path | None, typer.Option("--router", help="Router file (turnout train).")
    ] = None,
    max_cost_usd: Annotated[
        float | None, typer.Option("--max-cost-usd", help="Cost ceiling for this request.")
    ] = None,
    max_latency_s: Annotated[
        float | None, typer.Option("--max-latency-s", help="Latency SLO, seconds.")
    ] = None,
    max_output_tokens: Annotated[
        int | None, typer.Option("--max-output-tokens", help="The request's max_tokens.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Gateway YAML: route as the gateway would, with rules."),
    ] = None,
    route_name: Annotated[str, typer.Option("--route", help="Route alias (--config).")] = "auto",
    tier: Annotated[
        str | None,
        typer.Option("--tier", help="interactive | batch, as x-turnout-tier (--config)."),
    ] = None,
    key_meta: Annotated[
        list[str] | None, typer.Option("--meta", help="Caller key metadata key=value (--config).")
    ] = None,
) -> None:
    """Route one prompt with a trained router file and explain the decision.

    With ``--config FILE`` instead, route with a route of the gateway YAML as the gateway
    would (its rules, constraints and router file) and also show the request's signals, the
    rule that matched and why each earlier rule did not (see ``turnout.rules``).

    Prints every candidate with its predicted quality, estimated (modelled) cost and latency,
    the candidates removed by constraints with the reason, and the one-line reason.
    Loading a router file runs pickle: use only files you trust.
    """
    from turnout.artifact import load_router, read_header
    from turnout.features import count_message_tokens
    from turnout.types import RouteRequest

    if config is not None:
        _route_with_config(prompt, config, route_name, tier, key_meta or [], router_file, as_json)
        return
    if router_file is None:
        raise _fail("give --router FILE (a trained router) or --config FILE (a gateway YAML)")
    try:
        header = read_header(router_file)
        router = load_router(router_file)
        request = RouteRequest(
            text=prompt,
            prompt=prompt,
            input_tokens=count_message_tokens([prompt]),
            max_output_tokens=max_output_tokens,
            max_cost_usd=max_cost_usd,
            max_latency_s=max_latency_s,
        )
        decision = router.route(request)
    except (TurnoutError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=1))
        return
    # Rich assumes 80 columns when not writing to a terminal: keep the table readable.
    console = Console(width=None if sys.stdout.isatty() else 132)
    params = ", ".join(f"{k}={v}" for k, v in header.get("policy_params", {}).items())
    meta = header.get("metadata", {})
    console.print(
        f"router [bold]{router.name}[/] trained on {meta.get('dataset', '?')} "
        f"({meta.get('created', '?')}); policy {decision.policy}({params}); "
        f"{request.input_tokens} input tokens (estimated)"
    )
    table = Table(title="candidates (best first)")
    table.add_column("model", no_wrap=True)
    for col in ("pred. quality", "cost (modelled)", "latency s", "out tokens", "score"):
        table.add_column(col, justify="right")
    for i, c in enumerate(decision.candidates):
        style = "bold green" if i == 0 else None
        table.add_row(
            c.model,
            f"{c.predicted_quality:.3f}",
            _money(c.cost_usd),
            f"{c.latency_s:.2f}",
            f"{c.output_tokens:.0f}",
            f"{c.score:.4g}",
            style=style,
        )
    console.print(table)
    if decision.removed:
        removed = Table(title="removed by constraints")
        removed.add_column("model", no_wrap=True)
        removed.add_column("reason")
        for r in decision.removed:
            removed.add_row(r.model, r.reason)
        console.print(removed)
    console.print(f"chosen: [bold]{decision.model}[/]: {decision.reason}")


def _route_with_config(
    prompt: str,
    config: Path,
    route_name: str,
    tier: str | None,
    meta: list[str],
    router_file: Path | None,
    as_json: bool,
) -> None:
    """``turnout route --config``: the rule-based decision and its explanation."""
    from turnout.rules import explanation_lines, route_with_config

    if router_file is not None:
        raise _fail("--router and --config exclude each other: the route names its router file")
    bad = [m for m in meta if "=" not in m]
    if bad:
        raise _fail(f"--meta must be key=value; got {bad[0]!r}")
    metadata = dict(m.split("=", 1) for m in meta)
    try:
        decision = route_with_config(config, prompt, route=route_name, tier=tier, metadata=metadata)
    except (TurnoutError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=1))
        return
    for line in explanation_lines(decision):
        typer.echo(line)
