from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.local_services import (
    POSTGRES_DOWN,
    POSTGRES_URL,
    postgres_reachable,
    require_postgres,
)
from turnout.errors import StorageError
from turnout.storage.base import Attempt, LedgerRow
from turnout.storage.config import StorageConfig
from turnout.storage.factory import open_ledger
from turnout.storage.ledger import MemoryLedger, SqliteLedger, SqlLedger
from turnout.storage.postgres import PostgresLedger
from turnout.types import CandidateScore, Removal, RouteDecision, Usage


def make_row(request_id: str = "req-1", **changes: object) -> LedgerRow:
    fields: dict[str, object] = dict(
        request_id=request_id,
        status="ok",
        started_at=1_795_000_000.25,
        finished_at=1_795_000_001.5,
        key_id="0123456789ab",
        route="auto",
        model="gpt-4o-mini",
        deployment="openai-main",
        decision={"model": "gpt-4o-mini", "fallbacks": ["gpt-4o"], "reason": "cheapest"},
        attempts=(
            Attempt("openai-backup", "gpt-4o-mini", "failed", 503, "ProviderError", 0.02),
            Attempt("openai-main", "gpt-4o-mini", "ok", 200, None, 1.1),
        ),
        usage=Usage(input_tokens=2006, cached_input_tokens=1920, output_tokens=300),
        cost_usd=0.005615,
        cost_estimated=False,
        latency_s=1.25,
        ttft_s=0.31,
        http_status=200,
        stream=True,
        prompt_text="What is 2+2?",
        metadata={"team": "search"},
    )
    fields.update(changes)
    return LedgerRow(**fields)  # type: ignore[arg-type]


def test_row_round_trips_and_prompt_is_dropped_by_default(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    row = make_row()
    ledger.append(row)
    ledger.flush()
    stored = ledger.get("req-1")
    ledger.close()
    assert stored is not None
    assert stored.prompt_text is None
    assert stored == make_row(prompt_text=None)
    assert b"What is 2+2?" not in (tmp_path / "ledger.db").read_bytes()


def test_prompt_is_kept_when_enabled(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db", store_prompts=True)
    ledger.append(make_row())
    ledger.close()
    reopened = SqliteLedger(tmp_path / "ledger.db")
    stored = reopened.get("req-1")
    reopened.close()
    assert stored is not None and stored.prompt_text == "What is 2+2?"


def test_failed_and_unpriced_rows_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.db"
    ledger = open_ledger(StorageConfig(url=f"sqlite:///{path}"))
    failed = make_row(
        "req-failed",
        status="failed",
        http_status=502,
        error_code="upstream_error",
        usage=Usage(input_tokens=10, output_tokens=2, estimated=True),
        cost_usd=None,
        cost_estimated=True,
        ttft_s=None,
    )
    ledger.append(make_row("req-ok"))
    ledger.append(failed)
    ledger.append(
        make_row(
            "req-rejected",
            status="rejected",
            http_status=429,
            usage=None,
            cost_usd=None,
            attempts=(),
            decision=None,
        )
    )
    ledger.close()  # no flush: close must write what is queued
    again = SqliteLedger(path)
    rows = {r.request_id: r for r in again.recent(10)}
    again.close()
    assert set(rows) == {"req-ok", "req-failed", "req-rejected"}
    assert rows["req-failed"] == replace(failed, prompt_text=None)
    assert rows["req-failed"].cost_usd is None  # unpriced, not $0
    assert rows["req-rejected"].usage is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rows_are_batched(tmp_path: Path) -> None:
    # Speed is measured by benchmarks/storage_overhead.py, not here.
    ledger = SqliteLedger(tmp_path / "ledger.db", flush_interval_s=0.2, batch_rows=1000)
    n = 5000
    for i in range(n):
        ledger.append(make_row(f"r{i}"))
    ledger.flush()
    assert ledger.rows_written == n
    assert ledger.batches_written <= 10  # 1000 rows per transaction, not one per row
    assert len(ledger.recent(n + 1)) == n
    ledger.close()


def test_interval_flush_without_explicit_flush(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db", flush_interval_s=0.02)
    ledger.append(make_row("late"))
    deadline = time.monotonic() + 5
    while ledger.get("late") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.get("late") is not None
    ledger.close()


def test_failed_writes_are_dead_lettered_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    with sqlite3.connect(path) as conn:  # break the table under the writer
        conn.execute("DROP TABLE ledger")
    with caplog.at_level(logging.WARNING, logger="turnout.storage.ledger"):
        ledger.append(make_row("lost?"))
        ledger.flush()
    ledger.close()
    assert ledger.rows_failed == 1
    dead = (tmp_path / "ledger.db.failed.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in dead] == ["lost?"]
    assert "1 rows saved to" in caplog.text


def test_append_after_close_raises(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        ledger.append(make_row())


def test_appends_from_many_threads(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db", flush_interval_s=0.01, batch_rows=7)

    def work(t: int) -> None:
        for i in range(200):
            ledger.append(make_row(f"t{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.close()
    again = SqliteLedger(tmp_path / "ledger.db")
    assert len({r.request_id for r in again.recent(1000)}) == 800
    again.close()


def test_memory_ledger() -> None:
    ledger = open_ledger(StorageConfig(url="memory://", store_prompts=True))
    assert isinstance(ledger, MemoryLedger)
    ledger.append(make_row("m1"))
    ledger.flush()
    stored = ledger.get("m1")
    assert stored is not None and stored.prompt_text == "What is 2+2?"
    ledger.close()


def test_bad_sqlite_url() -> None:
    with pytest.raises(StorageError, match="sqlite:///path"):
        open_ledger(StorageConfig(url="sqlite://"))


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """The test database's URL with a fresh schema as its search path; dropped afterwards."""
    require_postgres()
    schema = "ledger_" + secrets.token_hex(4)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.skipif(not postgres_reachable(), reason=POSTGRES_DOWN)
def test_postgres_ledger_round_trip() -> None:
    ledger = open_ledger(StorageConfig(url=POSTGRES_URL, store_prompts=False))
    request_id = f"pg-{time.time_ns()}"
    row = make_row(request_id, status="failed", cost_usd=None)
    ledger.append(row)
    ledger.close()
    again = open_ledger(StorageConfig(url=POSTGRES_URL))
    assert hasattr(again, "get")
    stored = again.get(request_id)
    again.close()
    assert stored == make_row(request_id, status="failed", cost_usd=None, prompt_text=None)


def test_decision_object_is_serialised_on_the_writer(tmp_path: Path) -> None:
    decision = RouteDecision(
        model="gpt-4o-mini",
        fallbacks=("gpt-4o",),
        candidates=(CandidateScore("gpt-4o-mini", 0.8, 0.0002, 1.5, 300.0, 0.7),),
        removed=(Removal("tiny", "context window 4096 < 10000 tokens"),),
        policy="cheapest",
        reason="cheapest eligible",
        route="auto",
    )
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.append(make_row("with-object", decision=decision))
    ledger.flush()
    stored = ledger.get("with-object")
    ledger.close()
    assert stored is not None and stored.decision == decision.to_dict()


def test_rows_queued_at_interpreter_exit_are_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "ledger.db"
    code = (
        "import time\n"
        "from turnout.storage.base import LedgerRow\n"
        "from turnout.storage.ledger import SqliteLedger\n"
        f"ledger = SqliteLedger({str(path)!r}, flush_interval_s=60)\n"
        "ledger.append(LedgerRow('exit-row', 'ok', time.time(), time.time()))\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)
    again = SqliteLedger(path)
    assert [r.request_id for r in again.recent()] == ["exit-row"]
    again.close()


def _usage_rows() -> list[LedgerRow]:
    return [
        make_row("a1", key_id="k1", cost_usd=0.004, started_at=1000.0),
        make_row(
            "a2",
            key_id="k1",
            cost_usd=0.001,
            cost_estimated=True,
            started_at=1001.0,
            usage=Usage(input_tokens=10, output_tokens=5, estimated=True),
        ),
        make_row(
            "a3", key_id="k1", status="rejected", usage=None, cost_usd=None, started_at=1002.0
        ),
        make_row(
            "a4",
            key_id="k2",
            status="failed",
            cost_usd=None,
            started_at=1003.0,
            usage=Usage(input_tokens=7, output_tokens=0),
        ),
        make_row(
            "a5",
            key_id="k2",
            cost_usd=None,
            started_at=1004.0,
            usage=Usage(input_tokens=3, output_tokens=4),
        ),  # unpriced model
        make_row("old", key_id="k1", cost_usd=9.0, started_at=10.0),  # before the window
        make_row("anon", key_id=None, cost_usd=0.002, started_at=1005.0),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "memory", "postgres"])
def test_usage_by_key(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_schema_url")
    else:
        url = {"sqlite": f"sqlite:///{tmp_path}/l.db", "memory": "memory://"}[backend]
    ledger = open_ledger(StorageConfig(url=url))
    for row in _usage_rows():
        ledger.append(row)
    ledger.flush()
    totals = {u.key_id: u for u in ledger.usage_by_key(since=500.0)}
    ledger.close()
    assert list(totals) == ["k1", "k2", None]
    k1, k2 = totals["k1"], totals["k2"]
    assert (k1.requests, k1.ok, k1.failed, k1.rejected) == (3, 2, 0, 1)
    assert k1.recorded_cost_usd == pytest.approx(0.004)
    assert k1.estimated_cost_usd == pytest.approx(0.001)
    assert k1.cost_usd == pytest.approx(0.005)
    assert k1.input_tokens == 2006 + 10 and k1.output_tokens == 300 + 5
    assert k1.unpriced == 0
    assert (k2.requests, k2.ok, k2.failed, k2.unpriced) == (2, 1, 1, 2)
    assert k2.cost_usd == 0.0
    assert totals[None].recorded_cost_usd == pytest.approx(0.002)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sql_ledger_reader_close_reopen_and_errors(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both SQL ledgers: close() closes the read connection, every time it is called; a read
    after close opens a new one; a failing read raises StorageError naming the database."""
    ledger: SqlLedger[Any]
    if backend == "sqlite":
        path = tmp_path / "ledger.db"
        ledger, error = SqliteLedger(path), f"ledger {str(path)!r}: "

        def drop_table() -> None:
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("DROP TABLE ledger")

    else:
        url = request.getfixturevalue("postgres_schema_url")
        ledger, error = PostgresLedger(url), "postgres ledger at 127.0.0.1:5432/test: "

        def drop_table() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP TABLE turnout_ledger")

    try:
        ledger.append(make_row("r1"))
        ledger.flush()
        assert ledger.get("r1") is not None
        first_reader = ledger._reader
        assert first_reader is not None
        ledger.close()
        assert ledger._reader is None
        ledger.close()
        assert [r.request_id for r in ledger.recent()] == ["r1"]
        assert ledger._reader is not None and ledger._reader is not first_reader
        drop_table()
        with pytest.raises(StorageError, match=re.escape(error)):
            ledger.get("r1")
        with pytest.raises(StorageError, match=re.escape(error)):
            ledger.usage_by_key(since=0.0)
        ledger.close()
        assert ledger._reader is None
    finally:
        ledger.close()
