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


def main() -> None:
    """Entry point of the ``turnout`` script."""
    # Command modules register themselves on import.
    from turnout.cli import commands  # noqa: F401

    app()
