"""API keys: generation, salted hashing, and the SQLite and in-memory key stores.

A key looks like ``sk-tn-<key_id>.<secret>``: ``key_id`` is 12 public hex characters used to
find the record; ``secret`` is 32 random bytes from :mod:`secrets` (URL-safe base64). Only
``sha256(salt || secret)`` and the 16-byte random ``salt`` are stored, so the plain key exists
only in the creator's hands; it is shown once, by :meth:`KeyStore.create`. A fast hash is
enough here (no password stretching) because the secret has 256 bits of entropy.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from turnout.errors import StorageError
from turnout.storage._sqlite import connect
from turnout.storage.base import BudgetPeriod, KeyRecord, KeySpec, Limits

__all__ = [
    "KEY_PREFIX",
    "MemoryKeyStore",
    "SqlKeyStore",
    "SqliteKeyStore",
    "mask_key",
    "new_key",
    "parse_key",
]

KEY_PREFIX = "sk-tn-"


@dataclass(frozen=True, slots=True)
class _Hashed:
    salt: bytes
    digest: bytes


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def new_key() -> tuple[str, str, _Hashed]:
    """A new random key.

    Returns:
        ``(key_id, plain_key, hashed)``; store only ``key_id`` and ``hashed``.
    """
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return key_id, f"{KEY_PREFIX}{key_id}.{secret}", _Hashed(salt, _hash(secret, salt))


def parse_key(plain_key: str) -> tuple[str, str] | None:
    """Split ``sk-tn-<key_id>.<secret>`` into ``(key_id, secret)``; ``None`` if malformed."""
    if not plain_key.startswith(KEY_PREFIX):
        return None
    key_id, dot, secret = plain_key[len(KEY_PREFIX) :].partition(".")
    if not dot or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def mask_key(key_id: str) -> str:
    """The display form of a key: its public id and no secret (``sk-tn-<key_id>.****``)."""
    return f"{KEY_PREFIX}{key_id}.****"


def _matches(hashed: _Hashed, secret: str) -> bool:
    return hmac.compare_digest(hashed.digest, _hash(secret, hashed.salt))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _record(key_id: str, spec: KeySpec, created_at: dt.datetime) -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        name=spec.name,
        masked=mask_key(key_id),
        allowed_routes=spec.allowed_routes,
        limits=spec.limits,
        metadata=dict(spec.metadata),
        created_at=created_at,
    )


class MemoryKeyStore:
    """Keys held in this process only (tests and ``memory://``). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, KeyRecord] = {}
        self._hashes: dict[str, _Hashed] = {}

    def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the plain key (shown once, never stored)."""
        key_id, plain, hashed = new_key()
        record = _record(key_id, spec, _now())
        with self._lock:
            self._records[key_id] = record
            self._hashes[key_id] = hashed
        return record, plain

    def list(self, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """Every key (active only unless ``include_revoked``), oldest first."""
        with self._lock:
            records = builtins.list(self._records.values())
        return [r for r in records if include_revoked or r.active]

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id``; False if there is no such active key."""
        with self._lock:
            record = self._records.get(key_id)
            if record is None or not record.active:
                return False
            self._records[key_id] = replace(record, revoked_at=_now())
            return True

    def verify(self, plain_key: str) -> KeyRecord | None:
        """The record whose stored hash matches ``plain_key`` (revoked included), or ``None``."""
        parsed = parse_key(plain_key)
        if parsed is None:
            return None
        with self._lock:
            record = self._records.get(parsed[0])
            hashed = self._hashes.get(parsed[0])
        if record is None or hashed is None or not _matches(hashed, parsed[1]):
            return None
        return record


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BLOB NOT NULL,
    secret_sha256 BLOB NOT NULL,
    allowed_routes TEXT,
    rpm INTEGER,
    tpm INTEGER,
    budget_usd REAL,
    budget_period TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""
_COLUMNS = (
    "key_id, name, allowed_routes, rpm, tpm, budget_usd, budget_period, metadata, "
    "created_at, revoked_at"
)


def _period_to_text(period: BudgetPeriod) -> str:
    return str(period)


def _period_from_text(text: str) -> BudgetPeriod:
    if text in ("day", "week", "month"):
        return text  # type: ignore[return-value]
    return int(text)


def _row_to_record(row: tuple[Any, ...]) -> KeyRecord:
    key_id, name, routes, rpm, tpm, budget_usd, period, metadata, created, revoked = row
    meta: Mapping[str, str] = json.loads(metadata)
    return KeyRecord(
        key_id=key_id,
        name=name,
        masked=mask_key(key_id),
        allowed_routes=None if routes is None else frozenset(json.loads(routes)),
        limits=Limits(
            rpm=rpm, tpm=tpm, budget_usd=budget_usd, budget_period=_period_from_text(period)
        ),
        metadata=meta,
        created_at=dt.datetime.fromisoformat(created),
        revoked_at=None if revoked is None else dt.datetime.fromisoformat(revoked),
    )


class SqlKeyStore:
    """Keys in a SQL table ``api_keys``; subclasses supply :meth:`_run` for their driver.

    SQL is written with ``?`` placeholders; :attr:`placeholder` replaces them.
    """

    placeholder = "?"
    where = ""

    def _run(self, sql: str, params: tuple[Any, ...]) -> tuple[builtins.list[Any], int]:
        """Execute one statement; returns ``(rows, rowcount)``."""
        raise NotImplementedError

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[builtins.list[Any], int]:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        try:
            return self._run(sql, params)
        except StorageError:
            raise
        except Exception as exc:  # the driver's error class: sqlite3.Error, psycopg.Error
            raise StorageError(f"key store {self.where}: {exc}") from exc

    def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the plain key (shown once, never stored).

        Raises:
            StorageError: If the insert fails.
        """
        key_id, plain, hashed = new_key()
        record = _record(key_id, spec, _now())
        routes = None if spec.allowed_routes is None else json.dumps(sorted(spec.allowed_routes))
        self._execute(
            "INSERT INTO api_keys (key_id, name, salt, secret_sha256, allowed_routes, rpm, tpm, "
            "budget_usd, budget_period, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                key_id,
                spec.name,
                hashed.salt,
                hashed.digest,
                routes,
                spec.limits.rpm,
                spec.limits.tpm,
                spec.limits.budget_usd,
                _period_to_text(spec.limits.budget_period),
                json.dumps(dict(spec.metadata), sort_keys=True),
                record.created_at.isoformat(),
            ),
        )
        return record, plain

    def list(self, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """Every key (active only unless ``include_revoked``), oldest first."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows, _ = self._execute(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at")
        return [_row_to_record(tuple(row)) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id``; False if there is no such active key."""
        _, count = self._execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (_now().isoformat(), key_id),
        )
        return count == 1

    def verify(self, plain_key: str) -> KeyRecord | None:
        """The record whose stored hash matches ``plain_key`` (revoked included), or ``None``."""
        parsed = parse_key(plain_key)
        if parsed is None:
            return None
        rows, _ = self._execute(
            f"SELECT {_COLUMNS}, salt, secret_sha256 FROM api_keys WHERE key_id = ?",
            (parsed[0],),
        )
        if not rows:
            return None
        *fields, salt, digest = rows[0]
        if not _matches(_Hashed(bytes(salt), bytes(digest)), parsed[1]):
            return None
        return _row_to_record(tuple(fields))


class SqliteKeyStore(SqlKeyStore):
    """Keys in a SQLite file (table ``api_keys``), shared by every process on the machine.

    Args:
        path: Database file; created with its directory if missing (WAL mode).

    Raises:
        StorageError: If the file cannot be opened or a query fails.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.where = repr(str(self.path))
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._execute(_SCHEMA)

    def _run(self, sql: str, params: tuple[Any, ...]) -> tuple[builtins.list[Any], int]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return cursor.fetchall(), cursor.rowcount

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
