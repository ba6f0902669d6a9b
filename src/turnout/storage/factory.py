"""Open the configured ledger, key store and counters from their URLs.

==============================  ==============  ================  ==============
URL                             ledger          key store         counters
==============================  ==============  ================  ==============
``sqlite:///path/turnout.db``   SqliteLedger    SqliteKeyStore    SqliteCounters
``postgresql://user@host/db``   PostgresLedger  PostgresKeyStore  --
``redis://host:6379/0``         --              --                RedisCounters
``memory://``                   MemoryLedger    MemoryKeyStore    MemoryCounters
==============================  ==============  ================  ==============
"""

from __future__ import annotations

from turnout.errors import StorageError
from turnout.storage._sqlite import sqlite_path
from turnout.storage.base import Counters, KeyStore
from turnout.storage.config import StorageConfig
from turnout.storage.keys import MemoryKeyStore, SqliteKeyStore
from turnout.storage.ledger import BatchLedger, MemoryLedger, SqliteLedger

__all__ = ["open_counters", "open_key_store", "open_ledger"]


def open_ledger(config: StorageConfig) -> BatchLedger:
    """The ledger at ``config.url``, its writer thread started.

    Raises:
        StorageError: If the URL's scheme is unsupported or the store cannot be opened.
    """
    url = config.url
    interval_s = config.ledger_flush_interval_ms / 1000
    if url.startswith("sqlite:"):
        return SqliteLedger(
            sqlite_path(url),
            flush_interval_s=interval_s,
            batch_rows=config.ledger_batch_rows,
            store_prompts=config.store_prompts,
        )
    if url.startswith(("postgresql://", "postgres://")):
        from turnout.storage.postgres import PostgresLedger

        return PostgresLedger(
            url,
            flush_interval_s=interval_s,
            batch_rows=config.ledger_batch_rows,
            store_prompts=config.store_prompts,
        )
    if url.startswith("memory:"):
        return MemoryLedger(store_prompts=config.store_prompts)
    raise StorageError(f"storage.url: unsupported ledger URL {url!r}")


def open_key_store(config: StorageConfig) -> KeyStore:
    """The key store at ``config.keys_url`` (default: ``config.url``).

    Raises:
        StorageError: If the URL's scheme is unsupported or the store cannot be opened.
    """
    url = config.keys_url or config.url
    if url.startswith("sqlite:"):
        return SqliteKeyStore(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from turnout.storage.postgres import PostgresKeyStore

        return PostgresKeyStore(url)
    if url.startswith("memory:"):
        return MemoryKeyStore()
    raise StorageError(f"storage.keys_url: unsupported key store URL {url!r}")


def open_counters(config: StorageConfig) -> Counters:
    """The counters at ``config.counters_url``.

    Raises:
        StorageError: If the URL's scheme is unsupported.
    """
    url = config.counters_url
    if url.startswith("memory:"):
        from turnout.storage.counters import MemoryCounters

        return MemoryCounters()
    if url.startswith(("redis://", "rediss://")):
        from turnout.storage.redis_counters import RedisCounters

        return RedisCounters(url)
    if url.startswith("sqlite:"):
        from turnout.storage.sqlite_counters import SqliteCounters

        return SqliteCounters(sqlite_path(url))
    raise StorageError(f"storage.counters_url: unsupported counters URL {url!r}")
