"""``turnout serve``: run the OpenAI-compatible gateway under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from turnout.cli import app

__all__ = ["serve"]


def _check(config_path: Path) -> int:
    from turnout.config import check_config

    _, problems = check_config(config_path, environ=os.environ)
    if problems:
        typer.echo(f"{config_path}: {len(problems)} problem(s)", err=True)
        for line in problems:
            typer.echo(f"  {line}", err=True)
        return 1
    typer.echo(f"{config_path}: OK")
    return 0


def _factory() -> object:
    """The app for each uvicorn worker process (reads ``TURNOUT_CONFIG``)."""
    from turnout.config import load_config
    from turnout.gateway import create_app

    return create_app(load_config(os.environ["TURNOUT_CONFIG"], environ=os.environ))


@app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The gateway's turnout.yaml.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each has its own breakers).")
    ] = 1,
    check_config: Annotated[
        bool,
        typer.Option("--check-config", help="Validate the config, report every problem, exit."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve /v1/chat/completions, /v1/models, /v1/route, /healthz, /readyz and /metrics."""
    try:
        import uvicorn
    except ImportError:
        typer.echo("turnout serve needs the server extra: pip install 'turnout[server]'", err=True)
        raise typer.Exit(2) from None
    status = _check(config)
    if check_config or status:
        raise typer.Exit(status)
    os.environ["TURNOUT_CONFIG"] = str(config.resolve())
    uvicorn.run(
        "turnout.cli.serve:_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",
        http="auto",
        ws="none",
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )
