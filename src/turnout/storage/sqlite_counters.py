"""Counters in a SQLite file: shared by the workers of one machine (``--workers N``).

Each operation is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock), so the checks
and increments of a reservation are atomic across processes. Calls run in a worker thread
(:func:`asyncio.to_thread`) so that waiting for the lock never blocks the event loop. Use
Redis when the gateway runs on several machines.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from turnout.errors import StorageError
from turnout.storage._sqlite import connect
from turnout.storage.base import Limits, Reservation
from turnout.storage.counters import (
    ADMITTED,
    budget_window,
    check_limits,
    nano_usd,
    raise_denial,
    usd,
)

__all__ = ["SqliteCounters"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL NOT NULL
)
"""
_UPSERT = (
    "INSERT INTO counters (name, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
)


def _names(key_id: str, minute: int, period: str) -> tuple[str, str, str]:
    return f"{key_id}:rpm:{minute}", f"{key_id}:tpm:{minute}", f"{key_id}:usd:{period}"


class SqliteCounters:
    """Counters in table ``counters`` of a SQLite file (WAL mode).

    Args:
        path: Database file (may be the ledger's file).

    Raises:
        StorageError: From every method when SQLite fails.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.execute(_SCHEMA)
        self._ops = 0

    def _get(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def _in_transaction(self, work: Callable[[], tuple[int, int]], now: float) -> tuple[int, int]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work()
                    self._ops += 1
                    if self._ops % 1000 == 0:
                        self._conn.execute("DELETE FROM counters WHERE expires_at < ?", (now,))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite counters {str(self.path)!r}: {exc}") from exc
        return result

    def _reserve_tx(
        self,
        names: tuple[str, str, str],
        limits: Limits,
        deltas: tuple[int, int, int],
        expires: tuple[float, float, float],
        now: float,
    ) -> tuple[int, int]:
        def work() -> tuple[int, int]:
            counts = (self._get(names[0]), self._get(names[1]), self._get(names[2]))
            verdict = check_limits(limits, counts, deltas[1], deltas[2])
            if verdict[0] == ADMITTED:
                for name, delta, expiry in zip(names, deltas, expires, strict=True):
                    self._conn.execute(_UPSERT, (name, delta, expiry))
            return verdict

        return self._in_transaction(work, now)

    def _settle_tx(self, names: tuple[str, str], deltas: tuple[int, int], now: float) -> None:
        def work() -> tuple[int, int]:
            for name, delta in zip(names, deltas, strict=True):
                # Only existing windows: an expired one is not brought back.
                self._conn.execute(
                    "UPDATE counters SET value = value + ? WHERE name = ?", (delta, name)
                )
            return 0, 0

        self._in_transaction(work, now)

    async def reserve(
        self, key_id: str, limits: Limits, *, tokens: int, cost_usd: float, now: float
    ) -> Reservation:
        """Count one request and ``tokens`` and reserve ``cost_usd`` in one transaction.

        Raises:
            RateLimitExceeded: RPM or TPM would be passed.
            BudgetExceeded: The budget would be passed.
            StorageError: SQLite failed.
        """
        minute = int(now // 60)
        period, end = budget_window(limits.budget_period, now)
        amount = nano_usd(cost_usd)
        names = _names(key_id, minute, period)
        minute_end = (minute + 2) * 60.0
        verdict = await asyncio.to_thread(
            self._reserve_tx,
            names,
            limits,
            (1, tokens, amount),
            (minute_end, minute_end, end + 86_400),
            now,
        )
        raise_denial(verdict, limits, amount, end, now)
        return Reservation(key_id, minute, period, tokens, usd(amount))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace the reserved USD and counted tokens by the actual ones.

        Raises:
            StorageError: SQLite failed.
        """
        r = reservation
        _, tpm, usd_name = _names(r.key_id, r.minute, r.period)
        deltas = (tokens - r.tokens, nano_usd(cost_usd) - nano_usd(r.reserved_usd))
        await asyncio.to_thread(self._settle_tx, (tpm, usd_name), deltas, time.time())

    async def release(self, reservation: Reservation) -> None:
        """Give back the reserved USD.

        Raises:
            StorageError: SQLite failed.
        """
        await self.settle(reservation, cost_usd=0.0, tokens=reservation.tokens)

    async def spent_usd(self, key_id: str, limits: Limits, *, now: float) -> float:
        """USD spent plus reserved in the budget period containing ``now``."""
        period, _ = budget_window(limits.budget_period, now)
        with self._lock:
            return usd(self._get(_names(key_id, 0, period)[2]))

    async def aclose(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
