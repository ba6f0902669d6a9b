"""``turnout demo``: route real recorded prompts through the real gateway, end to end."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from turnout.cli import app
from turnout.errors import TurnoutError

__all__ = ["demo"]

_EXTRA_HINT = (
    "`turnout demo` needs the gateway, plotting and client packages: "
    'pip install "turnout[demo]" (or ".[dev]" in a clone); missing: {name}'
)


@app.command("demo")
def demo(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="Shipped dataset (gsm8k, routerarena) or an outcome .jsonl[.gz] with responses.",
        ),
    ] = "gsm8k",
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Send only the first N held-out prompts."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight at once.")
    ] = 8,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder (default runs/demo-<timestamp>)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the router.")] = 0,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train the router even if a cached one exists.")
    ] = False,
    target_quality: Annotated[
        float,
        typer.Option(
            "--target-quality",
            min=0.01,
            max=1.0,
            help="Operating point: the cheapest router setting that keeps this share of the "
            "best model's quality on validation prompts.",
        ),
    ] = 0.95,
    folds: Annotated[
        int,
        typer.Option(min=2, help="Cross-fitting folds that choose the operating point."),
    ] = 5,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Where trained routers are cached."),
    ] = None,
    upstream_delay_s: Annotated[
        float,
        typer.Option(
            "--upstream-delay-s", min=0.0, help="Seconds each replay upstream waits to answer."
        ),
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Replay recorded outcomes of real LLMs through the gateway and report cost and quality."""
    console = Console()
    try:
        from turnout.demo.run import DemoOptions, run_demo
    except ModuleNotFoundError as exc:  # an extra is missing
        typer.echo(_EXTRA_HINT.format(name=exc.name), err=True)
        raise typer.Exit(3) from exc
    command = "turnout " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    options = DemoOptions(
        dataset=dataset,
        limit=limit,
        concurrency=concurrency,
        out_dir=out,
        seed=seed,
        retrain=retrain,
        target_quality_share=target_quality,
        folds=folds,
        cache_dir=cache_dir,
        upstream_delay_s=upstream_delay_s,
        show_progress=not quiet,
        command=command,
    )
    try:
        result = run_demo(options, log=(lambda _: None) if quiet else console.print)
    except TurnoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    console.print(Markdown(result.report.to_markdown()))
    console.print(f"\n[bold green]{result.report.headline()}[/bold green]")
    console.print(f"report written to {result.out_dir}/ (report.md, report.json, cost_quality.png)")
