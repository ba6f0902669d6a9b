"""Imports every command module so that each registers its commands on the app."""

# One line per command module; keep sorted.
from turnout.cli import (
    demo,  # noqa: F401
    eval,  # noqa: F401
    keys,  # noqa: F401
    lab,  # noqa: F401
    models,  # noqa: F401
    serve,  # noqa: F401
)
