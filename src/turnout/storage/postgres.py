"""The ledger and API keys in PostgreSQL (``postgresql://user@host:5432/db``), for replicas.

Same rows, columns and batching as :class:`~turnout.storage.ledger.SqliteLedger`: a writer
thread inserts each batch in one transaction with psycopg 3. Failed batches are retried once,
then written to a dead-letter JSON-lines file (``turnout-ledger.failed.jsonl`` in the working
directory, or ``dead_letter_path``) and logged.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from turnout.errors import StorageError
from turnout.storage.base import LedgerRow
from turnout.storage.keys import SqlKeyStore
from turnout.storage.ledger import COLUMNS, SqlLedger, row_to_record

__all__ = ["PostgresKeyStore", "PostgresLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turnout_ledger (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION NOT NULL,
    key_id TEXT, route TEXT, model TEXT, deployment TEXT,
    decision TEXT, attempts TEXT NOT NULL,
    input_tokens INTEGER, cached_input_tokens INTEGER, cache_write_input_tokens INTEGER,
    output_tokens INTEGER, reasoning_tokens INTEGER, usage_estimated INTEGER,
    cost_usd DOUBLE PRECISION, cost_estimated INTEGER NOT NULL,
    latency_s DOUBLE PRECISION NOT NULL, ttft_s DOUBLE PRECISION, http_status INTEGER NOT NULL,
    error_code TEXT, stream INTEGER NOT NULL, prompt_text TEXT, metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turnout_ledger_request_id ON turnout_ledger (request_id);
CREATE INDEX IF NOT EXISTS turnout_ledger_key_started ON turnout_ledger (key_id, started_at);
"""
_INSERT = (
    f"INSERT INTO turnout_ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
)


class PostgresLedger(SqlLedger[psycopg.Connection[Any]]):
    """Ledger rows in table ``turnout_ledger`` of a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname``.
        flush_interval_s: Most time a row waits before being written, seconds.
        batch_rows: Most rows per transaction.
        store_prompts: Keep ``prompt_text``; dropped otherwise.
        dead_letter_path: Where rows that cannot be written go.

    Raises:
        StorageError: If the database cannot be reached or the schema cannot be created.
    """

    table = "turnout_ledger"
    placeholder = "%s"

    def __init__(
        self,
        url: str,
        *,
        flush_interval_s: float = 0.05,
        batch_rows: int = 500,
        store_prompts: bool = False,
        dead_letter_path: Path | None = None,
    ) -> None:
        super().__init__(
            flush_interval_s=flush_interval_s,
            batch_rows=batch_rows,
            dead_letter_path=dead_letter_path or Path("turnout-ledger.failed.jsonl"),
            store_prompts=store_prompts,
        )
        self._url = url
        self._where = _where(url)
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(url, connect_timeout=5)
            with self._conn.transaction():
                self._conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise StorageError(f"postgres ledger at {self._where}: {exc}") from exc
        self._start()

    def _write(self, rows: list[LedgerRow]) -> None:
        if self._conn.closed:
            self._conn = psycopg.connect(self._url, connect_timeout=5)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.executemany(_INSERT, [row_to_record(r) for r in rows])

    def _shutdown(self) -> None:
        self._conn.close()

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            if self._reader is None or self._reader.closed:
                self._reader = psycopg.connect(self._url, connect_timeout=5, autocommit=True)
            return self._reader.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StorageError(f"postgres ledger at {self._where}: {exc}") from exc


_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BYTEA NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    allowed_routes TEXT,
    rpm BIGINT,
    tpm BIGINT,
    budget_usd DOUBLE PRECISION,
    budget_period TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


def _where(url: str) -> str:
    parts = urlsplit(url)  # host, port and database only: never show a password
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


class PostgresKeyStore(SqlKeyStore):
    """Keys in table ``api_keys`` of a PostgreSQL database, shared by every replica.

    Lookups are synchronous (about a millisecond on a local network); the gateway caches
    each verified key for ``keys.cache_ttl_s``, so a key costs one lookup per TTL per worker.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname``.

    Raises:
        StorageError: If the database cannot be reached or a query fails.
    """

    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self.where = _where(url)
        self._lock = threading.Lock()
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                url, connect_timeout=5, autocommit=True
            )
        except psycopg.Error as exc:
            raise StorageError(f"key store {self.where}: {exc}") from exc
        self._execute(_KEYS_SCHEMA)

    def _run(self, sql: str, params: tuple[Any, ...]) -> tuple[list[Any], int]:
        with self._lock, self._conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
            return rows, cursor.rowcount

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
