"""The ``turnout`` command line: thin commands over library calls.

Each group of commands lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="turnout",
    help="Route each LLM request to the cheapest model that will answer it well.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Route each LLM request to the cheapest model that will answer it well."""
    # A callback keeps ``turnout <command>`` a command group even while only one command is
    # registered (typer otherwise runs a lone command without its name).


def main() -> None:
    """Entry point of the ``turnout`` script."""
    # Command modules register themselves on import.
    from turnout.cli import commands  # noqa: F401

    app()
