"""``turnout demo`` end to end: replay upstreams, a trained router, the real gateway, a report.

Steps (each is a library call; this module only wires them together):

1. load a shipped recorded-outcome dataset and split it by prompt text with a fixed seed
   (:func:`turnout.evaluation.split_by_prompt`);
2. train the default router on the training side, or load it from the cache
   (:mod:`turnout.demo.routerfile`);
3. start one replay upstream per recorded model (:class:`turnout.demo.replay.ReplayUpstream`)
   and the gateway (:func:`turnout.gateway.create_app`) under uvicorn, with a generated config
   whose deployments point at the upstreams and whose SQLite ledger is in a temporary folder;
4. send the held-out prompts through the gateway with the ``openai`` client;
5. stop the gateway (its ledger is flushed), read the ledger, and write the report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from turnout.demo.client import send_prompts
from turnout.demo.datasets import load_demo_dataset
from turnout.demo.replay import ReplayUpstream, answers_for_model
from turnout.demo.report import DemoReport, build_report
from turnout.demo.routerfile import RouterSetup, prepare_router
from turnout.demo.servers import ServerThread
from turnout.evaluation.datasets import OutcomeTable
from turnout.evaluation.splits import split_by_prompt
from turnout.storage.base import LedgerRow

__all__ = ["DemoOptions", "DemoResult", "gateway_config", "run_demo"]

Log = Callable[[str], None]

#: Daily USD budget of the demo's API key: generous, so that only a runaway run hits it.
DEMO_BUDGET_USD = 100.0


@dataclass(frozen=True)
class DemoOptions:
    """Settings of one demo run.

    Attributes:
        dataset: A shipped dataset name (``gsm8k``, ``routerarena``) or an outcome file.
        limit: Send at most this many held-out prompts (``None``: all of them).
        concurrency: Requests in flight at once.
        out_dir: Where to write the report; ``None``: ``runs/demo-<UTC timestamp>``.
        seed: Seed of the train/test split and of the router.
        test_size: Share of distinct prompt texts held out.
        cache_dir: Where trained routers are cached; ``None``: the user cache folder.
        retrain: Train even if a cached router exists.
        target_quality_share: The router's operating point: the cheapest setting reaching
            this share of the best single model's quality on cross-fitted training prompts.
        folds: Folds of that cross-fitting (>= 2; fewer trains faster).
        upstream_delay_s: Seconds each replay upstream waits before answering.
        show_progress: Draw progress bars.
        command: The command line, written into the report.
    """

    dataset: str = "gsm8k"
    limit: int | None = None
    concurrency: int = 8
    out_dir: Path | None = None
    seed: int = 0
    test_size: float = 0.2
    cache_dir: Path | None = None
    retrain: bool = False
    target_quality_share: float = 0.95
    folds: int = 5
    upstream_delay_s: float = 0.0
    show_progress: bool = True
    command: str = ""


@dataclass
class DemoResult:
    """What a run produced."""

    report: DemoReport
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def gateway_config(
    table: OutcomeTable,
    upstreams: dict[str, str],
    router: RouterSetup,
    ledger_path: Path,
) -> dict[str, Any]:
    """The gateway config (as a ``turnout.yaml`` mapping) for the demo.

    Args:
        table: The dataset; its models become catalog entries priced as the dataset prices
            them (so the gateway charges exactly what the dataset says those calls cost).
        upstreams: Base URL of the replay upstream of each model.
        router: The trained router: policy, parameters and artifact file.
        ledger_path: The SQLite ledger file.

    Returns:
        A mapping that :class:`turnout.config.GatewayConfig` accepts.
    """
    from turnout.catalog import Catalog

    shipped = Catalog.default()
    models = {}
    for model in table.models:
        price = table.prices.get(model)
        entry: dict[str, Any] = {} if model in shipped else {"provider": "replay"}
        if price is not None:
            entry.update(
                input_usd_per_mtok=price.input_usd_per_mtok,
                output_usd_per_mtok=price.output_usd_per_mtok,
                cached_input_usd_per_mtok=None,
                cache_write_usd_per_mtok=None,
                source=f"demo dataset price file ({price.source})",
            )
        models[model] = entry
    deployments = {
        f"replay-{i}": {
            "provider": "openai",
            "base_url": url,
            "model": model,
            "timeouts": {"connect_s": 5, "first_byte_s": 30, "idle_s": 30, "total_s": 60},
        }
        for i, (model, url) in enumerate(upstreams.items())
    }
    return {
        "deployments": deployments,
        "models": models,
        "routes": {
            "auto": {
                "candidates": list(table.models),
                "policy": router.policy,
                "params": router.params,
                "router_file": str(router.path),
                "random_state": router.seed,
            }
        },
        "keys": {"required": True, "admin_key_env": None},
        "storage": {"url": f"sqlite:///{ledger_path}", "store_prompts": True},
    }


def _create_demo_key(config: dict[str, Any], budget_usd: float) -> str:
    """Create the API key the demo's client uses (only the ``auto`` route, with a budget)."""
    from turnout.storage.base import KeySpec, Limits
    from turnout.storage.config import StorageConfig
    from turnout.storage.factory import open_key_store

    store = open_key_store(StorageConfig.model_validate(config["storage"]))
    try:
        _, plain = store.create(
            KeySpec(
                name="turnout-demo",
                allowed_routes=frozenset({"auto"}),
                limits=Limits(budget_usd=budget_usd, budget_period="day"),
                metadata={"purpose": "turnout demo"},
            )
        )
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    return plain


def _read_ledger(path: Path) -> list[LedgerRow]:
    from turnout.storage.ledger import SqliteLedger

    ledger = SqliteLedger(path)
    try:
        return ledger.recent(limit=10**9)
    finally:
        ledger.close()


def _prepare(
    train: OutcomeTable,
    dataset: str,
    options: DemoOptions,
    log: Log,
    tick: Callable[[int, int], None],
) -> RouterSetup:
    return prepare_router(
        train,
        dataset=dataset,
        seed=options.seed,
        target_quality_share=options.target_quality_share,
        folds=options.folds,
        cache_dir=options.cache_dir,
        retrain=options.retrain,
        log=log,
        progress=tick,
    )


def run_demo(options: DemoOptions, log: Log = print) -> DemoResult:
    """Run the whole demo and write its report.

    Args:
        options: The run's settings.
        log: Where progress lines go (the CLI passes a rich console's ``print``).

    Returns:
        The report and the files written.

    Raises:
        ConfigError: If the dataset name is unknown or options are invalid.
        RuntimeError: If a server fails to start.
    """
    if options.limit is not None and options.limit < 1:
        from turnout.errors import ConfigError

        raise ConfigError(f"`--limit` must be an integer >= 1; got {options.limit}", field="limit")
    from turnout.gateway import create_app

    started = time.perf_counter()
    dataset, table = load_demo_dataset(options.dataset)
    split = split_by_prompt(table, test_size=options.test_size, seed=options.seed)
    train, test_all = split.train, split.test
    n_send = len(test_all) if options.limit is None else min(options.limit, len(test_all))
    test = test_all.subset(np.arange(n_send))
    log(
        f"[bold]turnout demo[/bold] on {dataset.name}: {table.n_prompts} prompts x "
        f"{table.n_models} models ({', '.join(table.models)}); train {len(train)}, "
        f"held out {len(test_all)}, sending {n_send}"
    )
    bar = Progress(
        TextColumn("[bold]training the router (cross-fitted folds, then all prompts)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not options.show_progress,
    )
    fits = bar.add_task("fit", total=options.folds + 1, start=False)

    def tick(done: int, total: int) -> None:
        bar.start_task(fits)
        bar.update(fits, completed=done, total=total)

    with bar:
        router = _prepare(train, dataset.name, options, log, tick)
    out_dir = options.out_dir or Path("runs") / (
        "demo-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="turnout-demo-") as tmp:
        ledger_path = Path(tmp) / "ledger.sqlite"
        config_path = Path(tmp) / "turnout.yaml"
        upstreams = [
            ReplayUpstream(
                m,
                answers_for_model(table, m),
                dataset=dataset.name,
                delay_s=options.upstream_delay_s,
            )
            for m in table.models
        ]
        with ServerThread() as servers:
            servers.start_upstreams(upstreams)
            config = gateway_config(
                table, {u.model: u.base_url for u in upstreams}, router, ledger_path
            )
            config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            api_key = _create_demo_key(config, budget_usd=DEMO_BUDGET_USD)

            def factory() -> Any:
                from turnout.config import load_config

                return create_app(load_config(config_path))

            base_url = servers.start_asgi(factory)
            log(
                f"gateway on {base_url} (SQLite ledger {ledger_path}); replay upstreams: "
                + ", ".join(f"{u.model} -> {u.base_url}" for u in upstreams)
            )
            sent = asyncio.run(
                send_prompts(
                    base_url + "/v1",
                    test.prompts,
                    api_key=api_key,
                    concurrency=options.concurrency,
                    show_progress=options.show_progress,
                )
            )
        ledger = _read_ledger(ledger_path)
        shutil.copyfile(ledger_path, out_dir / "ledger.sqlite")
        shutil.copyfile(config_path, out_dir / "turnout.yaml")
    report = build_report(
        test=test,
        train=train,
        sent=sent,
        ledger=ledger,
        info={
            "dataset": dataset.name,
            "dataset_title": dataset.title,
            "dataset_source": dataset.source,
            "dataset_licence": dataset.licence,
            "router": router.description,
            "router_trained_s": router.trained_s,
            "router_from_cache": router.from_cache,
            "library_choices": router.replay_choices(test),
            "concurrency": options.concurrency,
            "upstream_delay_s": options.upstream_delay_s,
            "n_test": len(test_all),
            "command": options.command,
        },
    )
    files = _write(report, test, router, out_dir)
    log(f"demo finished in {time.perf_counter() - started:.1f} s")
    return DemoResult(report, out_dir, files)


def _write(
    report: DemoReport, test: OutcomeTable, router: RouterSetup, out_dir: Path
) -> dict[str, Path]:
    from turnout.demo.plot import plot_cost_quality

    files = {
        "report_md": out_dir / "report.md",
        "report_json": out_dir / "report.json",
        "plot_png": out_dir / "cost_quality.png",
        "ledger": out_dir / "ledger.sqlite",
        "config": out_dir / "turnout.yaml",
    }
    report.files = {k: str(v) for k, v in files.items()}
    singles = {b.model: (b.cost_per_request_usd, b.mean_quality) for b in report.singles}
    plot_cost_quality(report, singles, files["plot_png"], curve=router.curve(test))
    files["report_md"].write_text(report.to_markdown(), encoding="utf-8")
    files["report_json"].write_text(
        json.dumps(report.to_dict(), indent=2, default=str, allow_nan=False), encoding="utf-8"
    )
    return files
