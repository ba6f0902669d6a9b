"""``turnout keys create|list|revoke|usage``: manage the gateway's API keys and see their spend.

The key store is found from ``--storage URL`` or the ``storage:`` section of ``--config``
(default: ``./turnout.yaml`` if it exists, else ``sqlite:///turnout.db``). ``create`` prints
the plain key once, on stdout; nothing else ever prints it (``list`` shows masked forms).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from turnout.catalog import format_validation_error
from turnout.cli import app
from turnout.errors import ConfigError, StorageError
from turnout.storage.base import BudgetPeriod, KeyRecord, KeySpec, KeyStore, Limits
from turnout.storage.config import StorageConfig
from turnout.storage.factory import open_key_store, open_ledger
from turnout.storage.keys import KEY_PREFIX

__all__ = ["keys_app", "parse_budget_period", "period_start", "storage_config"]

keys_app = typer.Typer(
    help="Create, list and revoke the gateway's API keys (stored as salted hashes).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="turnout.yaml to read `storage:` from.")
]
StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Key store URL, e.g. sqlite:///turnout.db (beats --config)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def storage_config(config: Path | None, storage: str | None) -> StorageConfig:
    """The storage settings from ``--storage``, else ``--config``, else the defaults.

    Raises:
        ConfigError: If the file cannot be read or its ``storage:`` section is invalid.
    """
    if storage is not None:
        try:
            return StorageConfig(url=storage)
        except ValidationError as exc:
            raise ConfigError("; ".join(format_validation_error(exc, "--storage"))) from exc
    if config is None:
        default = Path("turnout.yaml")
        if not default.exists():
            return StorageConfig()
        config = default
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {config}: {exc}") from exc
    section = data.get("storage", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{config}: `storage` must be a mapping", field="storage")
    try:
        return StorageConfig(**section)
    except ValidationError as exc:
        raise ConfigError(
            f"{config}: " + "; ".join(format_validation_error(exc, "storage"))
        ) from exc


def parse_budget_period(text: str) -> BudgetPeriod:
    """``day``, ``week``, ``month`` or a positive number of seconds.

    Raises:
        typer.BadParameter: Otherwise.
    """
    if text in ("day", "week", "month"):
        return text  # type: ignore[return-value]
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise typer.BadParameter(
        f"must be day, week, month or a positive number of seconds; got {text!r}"
    )


def _parse_metadata(items: list[str]) -> dict[str, str]:
    metadata = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise typer.BadParameter(
                f"must look like name=value; got {item!r}", param_hint="--meta"
            )
        metadata[name] = value
    return metadata


def _open(config: Path | None, storage: str | None) -> KeyStore:
    try:
        return open_key_store(storage_config(config, storage))
    except (ConfigError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _record_json(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "name": record.name,
        "masked": record.masked,
        "allowed_routes": None if record.allowed_routes is None else sorted(record.allowed_routes),
        "rpm": record.limits.rpm,
        "tpm": record.limits.tpm,
        "budget_usd": record.limits.budget_usd,
        "budget_period": record.limits.budget_period,
        "metadata": dict(record.metadata),
        "created_at": record.created_at.isoformat(),
        "revoked_at": None if record.revoked_at is None else record.revoked_at.isoformat(),
    }


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")],
    route: Annotated[
        list[str] | None, typer.Option("--route", help="Allowed route (repeat); default: all.")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute.")] = None,
    budget_usd: Annotated[float | None, typer.Option(min=0.0, help="USD per period.")] = None,
    budget_period: Annotated[
        str, typer.Option(help="day, week, month (UTC) or a number of seconds.")
    ] = "month",
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="Label name=value (repeat), e.g. team=x.")
    ] = None,
    config: ConfigOpt = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it ONCE; only its salted hash is stored."""
    spec = KeySpec(
        name=name,
        allowed_routes=None if not route else frozenset(route),
        limits=Limits(
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            budget_period=parse_budget_period(budget_period),
        ),
        metadata=_parse_metadata(meta or []),
    )
    record, plain = _open(config, storage).create(spec)
    if as_json:
        typer.echo(json.dumps({**_record_json(record), "key": plain}))
    else:
        typer.echo(f"created key {record.key_id} ({record.name})", err=True)
        typer.echo(plain)
    typer.echo("store this key now: it is not stored and cannot be shown again", err=True)


@keys_app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    config: ConfigOpt = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (masked: the secret part is never shown)."""
    records = _open(config, storage).list(include_revoked=include_revoked)
    if as_json:
        typer.echo(json.dumps([_record_json(r) for r in records], indent=2))
        return
    table = Table(title=f"{len(records)} API keys")
    for column in ("id", "name", "key", "routes", "rpm", "tpm", "budget $", "period", "labels"):
        table.add_column(column)
    table.add_column("status")
    for r in records:
        table.add_row(
            r.key_id,
            r.name,
            r.masked,
            "all" if r.allowed_routes is None else ",".join(sorted(r.allowed_routes)),
            "-" if r.limits.rpm is None else str(r.limits.rpm),
            "-" if r.limits.tpm is None else str(r.limits.tpm),
            "-" if r.limits.budget_usd is None else f"{r.limits.budget_usd:g}",
            str(r.limits.budget_period),
            ",".join(f"{k}={v}" for k, v in sorted(r.metadata.items())),
            "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M}",
        )
    Console(file=sys.stdout, width=160).print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `turnout keys list`).")],
    config: ConfigOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Revoke a key; gateways stop accepting it within keys.cache_ttl_s seconds."""
    if key_id.startswith(KEY_PREFIX):  # the masked form (or the key itself) names the id too
        key_id = key_id[len(KEY_PREFIX) :].partition(".")[0]
    if not _open(config, storage).revoke(key_id):
        typer.echo(f"error: no active key with id {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def period_start(period: str, now: dt.datetime) -> dt.datetime:
    """Start (UTC) of the calendar ``period`` (``day``, ``week``, ``month``) containing ``now``.

    Raises:
        typer.BadParameter: If ``period`` is not one of them.
    """
    day = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise typer.BadParameter(f"must be day, week or month; got {period!r}", param_hint="--period")


@keys_app.command("usage")
def usage(
    period: Annotated[
        str, typer.Option(help="Sum since the start of this UTC day, week or month.")
    ] = "month",
    since: Annotated[
        str | None, typer.Option(help="Sum since this UTC date or time (ISO 8601); beats --period.")
    ] = None,
    config: ConfigOpt = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, tokens and USD per key from the ledger (recorded and estimated kept apart)."""
    if since is not None:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError as exc:
            raise typer.BadParameter(
                f"must be an ISO date; got {since!r}", param_hint="--since"
            ) from exc
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    else:
        start = period_start(period, dt.datetime.now(dt.UTC))
    try:
        settings = storage_config(config, storage)
        ledger = open_ledger(settings)
    except (ConfigError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        totals = ledger.usage_by_key(start.timestamp())
    finally:
        ledger.close()
    names = {r.key_id: r for r in _open(config, storage).list(include_revoked=True)}
    if as_json:
        rows = [{**asdict(u), "cost_usd": u.cost_usd, "since": start.isoformat()} for u in totals]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"usage since {start:%Y-%m-%d %H:%M} UTC (from the ledger)")
    for column in (
        "key",
        "name",
        "requests",
        "ok",
        "failed",
        "rejected",
        "tokens in",
        "tokens out",
    ):
        table.add_column(column, justify="left" if column in ("key", "name") else "right")
    for column in ("recorded $", "estimated $", "unpriced", "budget $"):
        table.add_column(column, justify="right")
    for u in totals:
        record = names.get(u.key_id or "")
        budget = record.limits.budget_usd if record else None
        table.add_row(
            u.key_id or "anonymous",
            record.name if record else ("admin" if u.key_id == "admin" else "-"),
            str(u.requests),
            str(u.ok),
            str(u.failed),
            str(u.rejected),
            str(u.input_tokens),
            str(u.output_tokens),
            f"{u.recorded_cost_usd:.6f}",
            f"{u.estimated_cost_usd:.6f}",
            str(u.unpriced),
            "-"
            if budget is None
            else f"{budget:g}/{record.limits.budget_period if record else ''}",
        )
    Console(file=sys.stdout, width=180).print(table)
