"""``turnout eval``: train predictors on recorded outcomes and evaluate routers offline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from turnout.cli import app
from turnout.errors import DatasetError, TurnoutError, UnknownPredictorError

__all__ = ["default_predictor_names", "eval_command"]

#: The comparison baseline shown next to the default predictor.
BASELINE_PREDICTOR = "tfidf-logreg"


def default_predictor_names() -> list[str]:
    """The predictors ``turnout eval`` runs when none is named: the default and the baseline."""
    from turnout import predictors

    registry = predictors.PREDICTORS
    default = getattr(predictors, "DEFAULT_PREDICTOR", None)
    names = [n for n in (default, BASELINE_PREDICTOR) if isinstance(n, str) and n in registry]
    return list(dict.fromkeys(names)) or sorted(registry)[:1]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, str], Callable[[int, int], None]] | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:

        def start(name: str, stage: str) -> Callable[[int, int], None]:
            task = bar.add_task(f"{stage} {name}", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return tick

        yield start


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option("--data", help="Recorded outcomes, JSONL (gzip or plain).")],
    predictor: Annotated[
        list[str] | None,
        typer.Option(
            "--predictor",
            help="Predictor to train and evaluate; repeatable. Default: the default predictor "
            f"and {BASELINE_PREDICTOR}.",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="random (by prompt text) or cross-task.")
    ] = "random",
    test_task: Annotated[
        list[str] | None,
        typer.Option("--test-task", help="Task held out by --split cross-task; repeatable."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full results as JSON here.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write the cost-quality plot (PNG) here.")
    ] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the markdown report here.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    test_size: Annotated[
        float, typer.Option("--test-size", help="Share of prompt texts held out (random split).")
    ] = 0.2,
    folds: Annotated[
        int,
        typer.Option(
            "--folds",
            help="K >= 2: with --split random, K-fold cross-fitting (every prompt held out "
            "once); with --split cross-task, leave-one-task-out. 1: a single split.",
            min=1,
        ),
    ] = 1,
    points: Annotated[
        int, typer.Option("--points", help="Willingness-to-pay values per curve.", min=2)
    ] = 48,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Train each predictor on a training split and replay its router on the held-out prompts.

    Prints APGR, CPT(50%), CPT(80%), AIQ and savings at parity / 97% / 95% quality.

    Baselines: every single model, the random mix (zero router) and the oracle.

    Every report says whether its costs are recorded or modelled.
    """
    from turnout import predictors
    from turnout.evaluation.datasets import load_outcomes
    from turnout.evaluation.lab import SPLITS, evaluate, specs_from_registry

    if split not in SPLITS:
        raise _fail(f"--split must be one of {', '.join(SPLITS)}; got {split!r}")
    if not 0 < test_size < 1:
        raise _fail(f"--test-size must be in (0, 1); got {test_size}")
    if test_task and split != "cross-task":
        raise _fail("--test-task needs --split cross-task")
    if test_task and folds > 1:
        raise _fail("--test-task and --folds > 1 exclude each other (leave-one-task-out)")
    try:
        table = load_outcomes(data)
        names = predictor or default_predictor_names()
        if not names:
            raise _fail("no predictor is registered in turnout.predictors.PREDICTORS")
        specs = specs_from_registry(names, predictors.PREDICTORS)
        with _progress(not quiet) as progress:
            report = evaluate(
                table,
                specs,
                split=split,
                seed=seed,
                test_size=test_size,
                test_tasks=test_task or None,
                folds=folds,
                n_points=points,
                dataset=str(data),
                progress=progress,
            )
    except (DatasetError, UnknownPredictorError) as exc:
        raise _fail(str(exc)) from exc
    except (TurnoutError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    report.print_rich()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(report.to_markdown(), encoding="utf-8")
    if plot_path is not None:
        report.plot(plot_path)
