"""Counters in Redis, shared by every gateway replica; each operation is one Lua script.

A Lua script runs atomically in Redis, so the check of every limit and the increments happen
as one step even with many replicas: two replicas can never both take the last dollar.

Keys (the ``{key_id}`` hash tag keeps one key's counters in one cluster slot)::

    turnout:{<key_id>}:rpm:<unix minute>     requests this minute   (expires after 120 s)
    turnout:{<key_id>}:tpm:<unix minute>     tokens this minute     (expires after 120 s)
    turnout:{<key_id>}:usd:<window id>       nano-USD this period   (expires a day after it ends)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from turnout.errors import StorageError
from turnout.storage.base import Limits, Reservation
from turnout.storage.counters import budget_denial, budget_window, nano_usd, rate_denial, usd

__all__ = ["RedisCounters"]

# KEYS: rpm, tpm, usd. ARGV: rpm_limit, tpm_limit, tokens, usd_limit, amount, usd_ttl_s.
# A limit of -1 means unlimited. Returns {code, used}: 0 admitted, 1 rpm, 2 tpm, 3 budget.
_RESERVE = """
local rpm_limit = tonumber(ARGV[1])
local tpm_limit = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local usd_limit = tonumber(ARGV[4])
local amount = tonumber(ARGV[5])
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local committed = tonumber(redis.call('GET', KEYS[3]) or '0')
if rpm_limit >= 0 and requests + 1 > rpm_limit then return {1, requests} end
if tpm_limit >= 0 and used + tokens > tpm_limit then return {2, used} end
if usd_limit >= 0 and committed + amount > usd_limit then return {3, committed} end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCRBY', KEYS[2], tokens)
redis.call('EXPIRE', KEYS[2], 120)
redis.call('INCRBY', KEYS[3], amount)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
return {0, 0}
"""

# KEYS: tpm, usd. ARGV: token delta, nano-USD delta. Expired windows are left alone.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], ARGV[2]) end
return 0
"""


def _keys(key_id: str, minute: int, period: str) -> list[str]:
    base = f"turnout:{{{key_id}}}"
    return [f"{base}:rpm:{minute}", f"{base}:tpm:{minute}", f"{base}:usd:{period}"]


class RedisCounters:
    """Counters shared through Redis (``redis://host:port/db``).

    Args:
        url: Redis URL, e.g. ``"redis://127.0.0.1:6379/0"``.
        socket_timeout_s: Timeout of each Redis call, seconds.

    Raises:
        StorageError: From every method when Redis fails or cannot be reached.
    """

    def __init__(self, url: str, *, socket_timeout_s: float = 2.0) -> None:
        self.url = url
        self._client: Any = aioredis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
        )
        self._reserve = self._client.register_script(_RESERVE)
        self._settle = self._client.register_script(_SETTLE)

    def _error(self, exc: RedisError) -> StorageError:
        # Host and port only: never show a password from the URL.
        parts = urlsplit(self.url)
        return StorageError(f"redis counters at {parts.hostname}:{parts.port or 6379}: {exc}")

    async def reserve(
        self, key_id: str, limits: Limits, *, tokens: int, cost_usd: float, now: float
    ) -> Reservation:
        """Count one request and ``tokens`` and reserve ``cost_usd``, atomically in Redis.

        Raises:
            RateLimitExceeded: RPM or TPM would be passed.
            BudgetExceeded: The budget would be passed.
            StorageError: Redis failed.
        """
        minute = int(now // 60)
        period, end = budget_window(limits.budget_period, now)
        amount = nano_usd(cost_usd)
        usd_limit = -1 if limits.budget_usd is None else nano_usd(limits.budget_usd)
        args = [
            -1 if limits.rpm is None else limits.rpm,
            -1 if limits.tpm is None else limits.tpm,
            tokens,
            usd_limit,
            amount,
            int(end - now) + 86_400,
        ]
        try:
            code, used = await self._reserve(keys=_keys(key_id, minute, period), args=args)
        except RedisError as exc:
            raise self._error(exc) from exc
        if code == 1:
            raise rate_denial("requests", int(used), limits.rpm or 0, now)
        if code == 2:
            raise rate_denial("tokens", int(used), limits.tpm or 0, now)
        if code == 3:
            raise budget_denial(int(used), amount, usd_limit, end, now)
        return Reservation(key_id, minute, period, tokens, usd(amount))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace the reserved USD and counted tokens by the actual ones.

        Raises:
            StorageError: Redis failed.
        """
        r = reservation
        _, tpm_key, usd_key = _keys(r.key_id, r.minute, r.period)
        delta_usd = nano_usd(cost_usd) - nano_usd(r.reserved_usd)
        try:
            await self._settle(keys=[tpm_key, usd_key], args=[tokens - r.tokens, delta_usd])
        except RedisError as exc:
            raise self._error(exc) from exc

    async def release(self, reservation: Reservation) -> None:
        """Give back the reserved USD.

        Raises:
            StorageError: Redis failed.
        """
        await self.settle(reservation, cost_usd=0.0, tokens=reservation.tokens)

    async def spent_usd(self, key_id: str, limits: Limits, *, now: float) -> float:
        """USD spent plus reserved in the budget period containing ``now``.

        Raises:
            StorageError: Redis failed.
        """
        period, _ = budget_window(limits.budget_period, now)
        try:
            value = await self._client.get(_keys(key_id, 0, period)[2])
        except RedisError as exc:
            raise self._error(exc) from exc
        return usd(int(value or 0))

    async def ping(self) -> None:
        """Check that Redis answers.

        Raises:
            StorageError: It does not.
        """
        try:
            await self._client.ping()
        except RedisError as exc:
            raise self._error(exc) from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
