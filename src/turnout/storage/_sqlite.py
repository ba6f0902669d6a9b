"""SQLite helpers shared by the ledger, key store and counters: URL parsing and connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from turnout.errors import StorageError

__all__ = ["connect", "sqlite_path"]


def sqlite_path(url: str) -> Path:
    """The file path in a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL.

    Raises:
        StorageError: If ``url`` is not a SQLite URL with a file path.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise StorageError(
            f"storage url must look like sqlite:///path/to/file.db (relative) or "
            f"sqlite:////absolute/file.db; got {url!r}"
        )
    path = url[len(prefix) :]
    if path == ":memory:":
        raise StorageError("storage url sqlite:///:memory: is not supported; use memory://")
    return Path(path)


def connect(path: Path, *, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` (creating its directory) in WAL mode, usable from any one thread at a time.

    Raises:
        StorageError: If the file cannot be opened.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
    return conn
