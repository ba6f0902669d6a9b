"""Ledgers: one row per request, written in batches by a background thread.

:meth:`BatchLedger.append` only puts the row on a queue (about a microsecond), so the event
loop never waits for the disk. A writer thread takes rows off the queue and writes them in
one transaction per batch: as soon as ``batch_rows`` rows are waiting, or ``flush_interval_s``
after the first row of a batch arrived, whichever comes first. ``flush()`` waits for every
row appended before it; ``close()`` flushes and stops the thread.

A failed write is retried once; if it fails again the rows are appended as JSON lines to a
dead-letter file next to the database (``<db>.failed.jsonl``) and an error is logged with the
row count, so no row is lost silently.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from turnout.errors import StorageError
from turnout.storage._sqlite import connect
from turnout.storage.base import Attempt, LedgerRow
from turnout.storage.usage import KeyUsage, usage_from_rows, usage_from_sql, usage_sql
from turnout.types import RouteDecision, Usage

__all__ = [
    "BatchLedger",
    "MemoryLedger",
    "SqlLedger",
    "SqliteLedger",
    "row_from_record",
    "row_to_record",
]

logger = logging.getLogger("turnout.storage.ledger")

COLUMNS: tuple[str, ...] = (
    "request_id",
    "status",
    "started_at",
    "finished_at",
    "key_id",
    "route",
    "model",
    "deployment",
    "decision",
    "attempts",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cost_usd",
    "cost_estimated",
    "latency_s",
    "ttft_s",
    "http_status",
    "error_code",
    "stream",
    "prompt_text",
    "metadata",
)


def _decision_json(decision: Mapping[str, Any] | RouteDecision | None) -> str | None:
    if decision is None:
        return None
    if isinstance(decision, RouteDecision):
        decision = decision.to_dict()
    return json.dumps(decision, default=str)


def row_to_record(row: LedgerRow) -> tuple[Any, ...]:
    """Flatten ``row`` into column values in :data:`COLUMNS` order (JSON for nested parts)."""
    usage = row.usage
    return (
        row.request_id,
        row.status,
        row.started_at,
        row.finished_at,
        row.key_id,
        row.route,
        row.model,
        row.deployment,
        _decision_json(row.decision),
        json.dumps([a.to_dict() for a in row.attempts]),
        None if usage is None else usage.input_tokens,
        None if usage is None else usage.cached_input_tokens,
        None if usage is None else usage.cache_write_input_tokens,
        None if usage is None else usage.output_tokens,
        None if usage is None else usage.reasoning_tokens,
        None if usage is None else int(usage.estimated),
        row.cost_usd,
        int(row.cost_estimated),
        row.latency_s,
        row.ttft_s,
        row.http_status,
        row.error_code,
        int(row.stream),
        row.prompt_text,
        json.dumps(dict(row.metadata), sort_keys=True),
    )


def row_from_record(values: Sequence[Any]) -> LedgerRow:
    """Rebuild a :class:`LedgerRow` from column values in :data:`COLUMNS` order."""
    v = dict(zip(COLUMNS, values, strict=True))
    usage = None
    if v["input_tokens"] is not None:
        usage = Usage(
            input_tokens=v["input_tokens"],
            cached_input_tokens=v["cached_input_tokens"],
            cache_write_input_tokens=v["cache_write_input_tokens"],
            output_tokens=v["output_tokens"],
            reasoning_tokens=v["reasoning_tokens"],
            estimated=bool(v["usage_estimated"]),
        )
    decision = v["decision"]
    attempts = json.loads(v["attempts"]) if isinstance(v["attempts"], str) else v["attempts"]
    metadata = json.loads(v["metadata"]) if isinstance(v["metadata"], str) else v["metadata"]
    return LedgerRow(
        request_id=v["request_id"],
        status=v["status"],
        started_at=v["started_at"],
        finished_at=v["finished_at"],
        key_id=v["key_id"],
        route=v["route"],
        model=v["model"],
        deployment=v["deployment"],
        decision=json.loads(decision) if isinstance(decision, str) else decision,
        attempts=tuple(Attempt(**a) for a in attempts),
        usage=usage,
        cost_usd=v["cost_usd"],
        cost_estimated=bool(v["cost_estimated"]),
        latency_s=v["latency_s"],
        ttft_s=v["ttft_s"],
        http_status=v["http_status"],
        error_code=v["error_code"],
        stream=bool(v["stream"]),
        prompt_text=v["prompt_text"],
        metadata=metadata,
    )


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


def _sort_item(item: object, rows: list[LedgerRow], markers: list[_Flush]) -> bool:
    """Add a queue item to ``rows`` or ``markers``; True if it is the stop marker."""
    if item is _STOP:
        return True
    if isinstance(item, _Flush):
        markers.append(item)
    elif isinstance(item, LedgerRow):
        rows.append(item)
    return False


def _close_at_exit(ref: weakref.ref[BatchLedger]) -> None:
    ledger = ref()
    if ledger is not None:
        ledger.close()


class BatchLedger:
    """Base of batched ledgers: a queue and a writer thread; subclasses write one batch.

    Args:
        flush_interval_s: Most time a row waits before its batch is written, seconds.
        batch_rows: Most rows per write.
        dead_letter_path: JSON-lines file for rows that could not be written.
        store_prompts: If False, ``prompt_text`` is dropped before the row is queued.

    Attributes:
        rows_written: Rows stored so far.
        batches_written: Transactions (batches) that stored them.
        rows_failed: Rows that could not be stored (sent to the dead-letter file).
    """

    def __init__(
        self,
        *,
        flush_interval_s: float,
        batch_rows: int,
        dead_letter_path: Path | None,
        store_prompts: bool = False,
    ) -> None:
        self.flush_interval_s = flush_interval_s
        self.batch_rows = batch_rows
        self.dead_letter_path = dead_letter_path
        self.store_prompts = store_prompts
        self.rows_written = 0
        self.batches_written = 0
        self.rows_failed = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"turnout-{type(self).__name__}", daemon=True
        )

    def _start(self) -> None:
        self._thread.start()
        # Rows still queued when the interpreter exits normally are written, not dropped.
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def _write(self, rows: list[LedgerRow]) -> None:
        raise NotImplementedError

    def _shutdown(self) -> None:
        """Release the backend (called on the writer thread after the last batch)."""

    def get(self, request_id: str) -> LedgerRow | None:
        """The latest written row of ``request_id``, or ``None``."""
        raise NotImplementedError

    def recent(self, limit: int = 100) -> list[LedgerRow]:
        """The latest ``limit`` written rows, newest first."""
        raise NotImplementedError

    def usage_by_key(self, since: float) -> list[KeyUsage]:
        """Totals per key of the written rows started at or after ``since`` (Unix time)."""
        raise NotImplementedError

    def append(self, row: LedgerRow) -> None:
        """Queue ``row`` for writing; returns at once.

        Raises:
            StorageError: If the ledger is closed.
        """
        if self._closed:
            raise StorageError("ledger is closed; row not recorded: " + row.request_id)
        if row.prompt_text is not None and not self.store_prompts:
            row = replace(row, prompt_text=None)
        self._queue.put(row)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every row appended before this call is written (or dead-lettered)."""
        if not self._thread.is_alive():
            return
        marker = _Flush()
        self._queue.put(marker)
        marker.done.wait(timeout_s)

    def close(self) -> None:
        """Write everything queued, then stop the writer thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _collect(self, first: object) -> tuple[list[LedgerRow], list[_Flush], bool]:
        rows: list[LedgerRow] = []
        markers: list[_Flush] = []
        stop = False
        item: object = first
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            stop = _sort_item(item, rows, markers) or stop
            if stop or markers or len(rows) >= self.batch_rows:
                # Flush and stop markers write at once, without waiting for the interval.
                try:
                    while len(rows) < self.batch_rows:
                        stop = _sort_item(self._queue.get_nowait(), rows, markers) or stop
                except queue.Empty:
                    pass
                return rows, markers, stop
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return rows, markers, stop
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return rows, markers, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            rows, markers, stop = self._collect(first)
            if rows:
                self._write_safely(rows)
            for marker in markers:
                marker.done.set()
        self._shutdown()

    def _write_safely(self, rows: list[LedgerRow]) -> None:
        for attempt in (1, 2):
            try:
                self._write(rows)
            except Exception as exc:  # any backend failure: retry once, then dead-letter
                if attempt == 1:
                    logger.warning("ledger write of %d rows failed (%s); retrying", len(rows), exc)
                    time.sleep(0.05)
                    continue
                self._dead_letter(rows, exc)
                return
            self.rows_written += len(rows)
            self.batches_written += 1
            return

    def _dead_letter(self, rows: list[LedgerRow], exc: Exception) -> None:
        self.rows_failed += len(rows)
        if self.dead_letter_path is None:
            logger.error(
                "ledger write failed (%s); %d rows lost: no dead-letter file", exc, len(rows)
            )
            return
        try:
            with self.dead_letter_path.open("a", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(dict(zip(COLUMNS, row_to_record(row), strict=True))))
                    fh.write("\n")
        except OSError as dl_exc:
            logger.error(
                "ledger write failed (%s) and dead-letter file %s failed (%s); %d rows lost",
                exc,
                self.dead_letter_path,
                dl_exc,
                len(rows),
            )
            return
        logger.error(
            "ledger write failed (%s); %d rows saved to %s", exc, len(rows), self.dead_letter_path
        )


class _Closable(Protocol):
    def close(self) -> None: ...


_ConnT = TypeVar("_ConnT", bound=_Closable)


class SqlLedger(BatchLedger, Generic[_ConnT]):
    """Base of ledgers in a SQL table: reads go through a second connection of their own.

    The writer thread keeps its connection (:meth:`_write`, :meth:`_shutdown`); readers share
    one more, opened on first use and guarded by a lock. Subclasses set :attr:`table` and
    :attr:`placeholder` and supply :meth:`_fetch` for their driver.

    Args:
        flush_interval_s: Most time a row waits before its batch is written, seconds.
        batch_rows: Most rows per transaction.
        dead_letter_path: JSON-lines file for rows that could not be written.
        store_prompts: If False, ``prompt_text`` is dropped before the row is queued.
    """

    table = "ledger"
    placeholder = "?"

    def __init__(
        self,
        *,
        flush_interval_s: float,
        batch_rows: int,
        dead_letter_path: Path | None,
        store_prompts: bool,
    ) -> None:
        super().__init__(
            flush_interval_s=flush_interval_s,
            batch_rows=batch_rows,
            dead_letter_path=dead_letter_path,
            store_prompts=store_prompts,
        )
        self._read_lock = threading.Lock()
        self._reader: _ConnT | None = None

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Run one query on the reader connection (opened if needed) and return all its rows.

        Called with the read lock held.

        Raises:
            StorageError: If the connection or the query fails.
        """
        raise NotImplementedError

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._read_lock:
            return self._fetch(sql, params)

    def get(self, request_id: str) -> LedgerRow | None:
        """The latest written row of ``request_id``, or ``None``."""
        rows = self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE request_id = {self.placeholder} "
            "ORDER BY id DESC LIMIT 1",
            (request_id,),
        )
        return row_from_record(rows[0]) if rows else None

    def recent(self, limit: int = 100) -> list[LedgerRow]:
        """The latest ``limit`` written rows, newest first."""
        rows = self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} ORDER BY id DESC "
            f"LIMIT {self.placeholder}",
            (limit,),
        )
        return [row_from_record(r) for r in rows]

    def usage_by_key(self, since: float) -> list[KeyUsage]:
        """Totals per key of the written rows started at or after ``since`` (Unix time)."""
        return usage_from_sql(self._read(usage_sql(self.table, self.placeholder), (since,)))

    def close(self) -> None:
        """Write everything queued, stop the writer and close connections. Idempotent."""
        super().close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL NOT NULL,
    key_id TEXT, route TEXT, model TEXT, deployment TEXT,
    decision TEXT, attempts TEXT NOT NULL,
    input_tokens INTEGER, cached_input_tokens INTEGER, cache_write_input_tokens INTEGER,
    output_tokens INTEGER, reasoning_tokens INTEGER, usage_estimated INTEGER,
    cost_usd REAL, cost_estimated INTEGER NOT NULL,
    latency_s REAL NOT NULL, ttft_s REAL, http_status INTEGER NOT NULL, error_code TEXT,
    stream INTEGER NOT NULL, prompt_text TEXT, metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_request_id ON ledger (request_id);
CREATE INDEX IF NOT EXISTS ledger_key_started ON ledger (key_id, started_at);
-- columns: {", ".join(COLUMNS)}
"""
_INSERT = f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class SqliteLedger(SqlLedger[sqlite3.Connection]):
    """The default ledger: a SQLite file in WAL mode (table ``ledger``).

    Args:
        path: Database file, created with its directory if missing.
        flush_interval_s: Most time a row waits before being written, seconds.
        batch_rows: Most rows per transaction.
        store_prompts: Keep ``prompt_text``; dropped otherwise.

    Raises:
        StorageError: If the file cannot be opened or the schema cannot be created.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        flush_interval_s: float = 0.05,
        batch_rows: int = 500,
        store_prompts: bool = False,
    ) -> None:
        self.path = Path(path)
        super().__init__(
            flush_interval_s=flush_interval_s,
            batch_rows=batch_rows,
            dead_letter_path=self.path.with_name(self.path.name + ".failed.jsonl"),
            store_prompts=store_prompts,
        )
        self._conn = connect(self.path)
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r}: {exc}") from exc
        self._start()

    def _write(self, rows: list[LedgerRow]) -> None:
        records = [row_to_record(r) for r in rows]
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany(_INSERT, records)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _shutdown(self) -> None:
        self._conn.close()

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if self._reader is None:
            self._reader = connect(self.path)
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r}: {exc}") from exc


class MemoryLedger(BatchLedger):
    """Rows kept in a list in this process (tests and ``memory://``)."""

    def __init__(self, *, store_prompts: bool = False) -> None:
        super().__init__(
            flush_interval_s=0.01,
            batch_rows=1000,
            dead_letter_path=None,
            store_prompts=store_prompts,
        )
        self.rows: list[LedgerRow] = []
        self._start()

    def _write(self, rows: list[LedgerRow]) -> None:
        self.rows.extend(rows)

    def get(self, request_id: str) -> LedgerRow | None:
        """The latest written row of ``request_id``, or ``None``."""
        for row in reversed(self.rows):
            if row.request_id == request_id:
                return row
        return None

    def recent(self, limit: int = 100) -> list[LedgerRow]:
        """The latest ``limit`` written rows, newest first."""
        return list(reversed(self.rows[-limit:]))

    def usage_by_key(self, since: float) -> list[KeyUsage]:
        """Totals per key of the written rows started at or after ``since`` (Unix time)."""
        return usage_from_rows(self.rows, since)
