"""``turnout serve``: run the OpenAI-compatible gateway under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from turnout.cli import app

__all__ = ["serve"]


def _report(config_path: Path, problems: list[str]) -> int:
    from turnout.config import mask_url_credentials

    typer.echo(f"{config_path}: {len(problems)} problem(s)", err=True)
    for line in problems:
        for part in str(line).splitlines():
            if part.strip() and not part.startswith("invalid config "):
                typer.echo(f"  {mask_url_credentials(part.strip())}", err=True)
    return 2


def _check(config_path: Path, workers: int) -> int:
    """Every check ``serve`` runs at start-up; 0 if none fails, else 2 after listing them."""
    from turnout.config import check_config
    from turnout.errors import TurnoutError
    from turnout.gateway.runtime import Runtime

    config, problems = check_config(config_path, environ=os.environ, workers=workers)
    if not problems and config is not None:
        # What the file alone cannot show (e.g. a router file that does not load).
        try:
            from turnout.config import load_config

            Runtime(load_config(config_path, environ=os.environ), environ=os.environ)
        except TurnoutError as exc:
            problems = [str(exc)]
    if problems:
        return _report(config_path, problems)
    typer.echo(f"{config_path}: OK")
    return 0


def _factory() -> object:
    """The app for each uvicorn worker process (reads ``TURNOUT_CONFIG``).

    A config or storage error is printed one line per problem and the process exits with
    status 2 (no traceback).
    """
    from turnout.config import load_config
    from turnout.errors import TurnoutError
    from turnout.gateway import create_app

    path = Path(os.environ["TURNOUT_CONFIG"])
    try:
        return create_app(load_config(path, environ=os.environ))
    except TurnoutError as exc:
        _report(path, str(exc).splitlines())
        raise SystemExit(2) from None


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
    status = _check(config, workers)
    if check_config or status:
        raise typer.Exit(status)
    os.environ["TURNOUT_CONFIG"] = str(config.resolve())
    uvicorn.run(
        "turnout.cli.serve:_factory" if workers > 1 else _factory(),  # type: ignore[arg-type]
        factory=workers > 1,
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
