"""``turnout models``: print the model catalog as a table or as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from turnout.catalog import CAPABILITIES, Catalog, ModelCard
from turnout.cli import app
from turnout.errors import ConfigError

__all__ = ["catalog_with_overrides", "models"]

_CAPS = CAPABILITIES
_CAPABILITY_MARKS = {"vision": "V", "tools": "T", "json_schema": "J", "reasoning": "R"}


def _overrides_of(data: dict[Any, Any], path: Path) -> dict[Any, Any]:
    """The ``{id: {field: value}}`` overrides in a catalog-overrides or gateway config file."""
    from turnout.config import GatewayConfig

    sections = set(GatewayConfig.model_fields) | {"version"}
    if set(data) <= sections or set(data) & (sections - {"models", "version"}):
        # {models: ...}, or a whole turnout.yaml: only its models: section matters here.
        overrides = data.get("models") or {}
        where = "models"
    else:
        overrides, where = data, "the top level"
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"{path}: `models` must map each model id to its fields; got "
            f"{type(overrides).__name__}",
            field="models",
        )
    bad = [str(k) for k, v in overrides.items() if not isinstance(v, dict)]
    if bad:
        raise ConfigError(
            f"{path}: each model under {where} must be a mapping of its fields, not: "
            f"{', '.join(bad[:5])}",
            field=f"models.{bad[0]}",
        )
    return overrides


def catalog_with_overrides(path: Path | None) -> Catalog:
    """The shipped catalog, with an operator's YAML merged over it.

    Args:
        path: YAML file of ``{"models": {id: {field: value}}}``, a whole gateway config
            (``turnout.yaml``, whose ``models:`` section is used), a bare ``{id: {...}}``
            mapping, or ``None`` for the shipped catalog alone.

    Returns:
        The merged catalog.

    Raises:
        ConfigError: If the file cannot be read, is not one of those shapes, or an override
            names an unknown field or an invalid value (the message names both).
    """
    catalog = Catalog.default()
    if path is None:
        return catalog
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read catalog overrides {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping; got {type(data).__name__}")
    return catalog.merged(_overrides_of(data, path))


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _card_json(card: ModelCard) -> dict[str, Any]:
    data = card.model_dump(mode="json")
    data["capabilities"] = sorted(card.capabilities)
    return data


def _table(cards: list[ModelCard], version: str) -> Table:
    table = Table(
        title=f"turnout catalog {version}: USD per 1M tokens (re-check prices at each source)",
        caption="caps: V vision, T tools, J json_schema, R reasoning; - = no discount listed",
    )
    table.add_column("id", style="bold", overflow="fold")
    table.add_column("provider")
    table.add_column("in $", justify="right")
    table.add_column("cached $", justify="right")
    table.add_column("cache write $", justify="right")
    table.add_column("out $", justify="right")
    table.add_column("context", justify="right")
    table.add_column("max out", justify="right")
    table.add_column("caps")
    table.add_column("price date")
    for card in cards:
        caps = "".join(_CAPABILITY_MARKS[c] if c in card.capabilities else "." for c in _CAPS)
        provider = card.provider if card.vendor is None else f"{card.provider} ({card.vendor})"
        table.add_row(
            card.id,
            provider,
            _price(card.input_usd_per_mtok),
            _price(card.cached_input_usd_per_mtok),
            _price(card.cache_write_usd_per_mtok),
            _price(card.output_usd_per_mtok),
            f"{card.context_window_tokens:,}",
            f"{card.max_output_tokens:,}",
            caps,
            str(card.price_date or "-"),
        )
    return table


@app.command("models")
def models(
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            help="Show only models sold by (or made by) this provider; repeatable.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    overrides: Annotated[
        Path | None,
        typer.Option(
            "--overrides",
            help="Operator YAML merged over the shipped catalog: a models file or a whole "
            "turnout.yaml (its models: section).",
        ),
    ] = None,
) -> None:
    """Print the model catalog: prices (USD per 1M tokens), context, capabilities."""
    try:
        catalog = catalog_with_overrides(overrides)
    except ConfigError as exc:
        for line in re.split(r"; (?=models\.)", str(exc)):  # one line per override problem
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    wanted = {p.lower() for p in provider or []}
    known = {c.provider for c in catalog.values()} | {c.maker for c in catalog.values()}
    unknown = wanted - known
    if unknown:
        typer.echo(
            f"error: --provider {sorted(unknown)[0]!r} is not in the catalog; "
            f"known: {', '.join(sorted(known))}",
            err=True,
        )
        raise typer.Exit(2)
    cards = [c for c in catalog.values() if not wanted or {c.provider, c.maker} & wanted]
    cards.sort(key=lambda c: (c.maker, c.provider, c.id))
    if as_json:
        payload = {"version": catalog.version, "models": [_card_json(c) for c in cards]}
        typer.echo(json.dumps(payload, indent=2))
        return
    Console(width=max(Console().width, 140)).print(_table(cards, catalog.version))
