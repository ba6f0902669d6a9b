"""Counters in Redis, shared by every gateway replica; each operation is one Lua script.

A Lua script runs atomically in Redis, so the check of every limit and the increments happen
as one step even with many replicas: two replicas can never both take the last dollar.

Keys (the ``{key_id}`` hash tag keeps one key's counters in one cluster slot)::

    turnout:{<key_id>}:rpm:<unix minute>     requests this minute   (expires after 120 s)
    turnout:{<key_id>}:tpm:<unix minute>     tokens this minute     (expires after 120 s)
    turnout:{<key_id>}:usd:<window id>       nano-USD this period   (expires a day after it ends)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from turnout.errors import StorageError
from turnout.storage.base import Limits, Reservation
from turnout.storage.counters import budget_window, nano_usd, raise_denial, usd

__all__ = ["RedisCounters"]

logger = logging.getLogger("turnout.storage.redis_counters")

# KEYS: rpm, tpm, usd. ARGV: rpm_limit, tpm_limit, tokens, usd_limit, amount, usd_ttl_s.
# A limit of -1 means unlimited. Returns {code, used}: 0 admitted, 1 rpm, 2 tpm, 3 budget
# (the codes of turnout.storage.counters.check_limits).
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


_Call = tuple[str, list[str], list[int], "asyncio.Future[Any]"]


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("releasing an abandoned reservation failed: %s", future.exception())


class RedisCounters:
    """Counters shared through Redis (``redis://host:port/db``).

    Concurrent calls are group-committed: every script call made while a pipeline is in
    flight joins the next one, so at high concurrency one round trip carries many requests
    (each script still runs atomically on its own). Calls from one event loop only.

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
        self._scripts = {
            "reserve": (_RESERVE, hashlib.sha1(_RESERVE.encode()).hexdigest()),
            "settle": (_SETTLE, hashlib.sha1(_SETTLE.encode()).hexdigest()),
        }
        self._pending: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None

    def _error(self, exc: Exception) -> StorageError:
        # Host and port only: never show a password from the URL.
        parts = urlsplit(self.url)
        return StorageError(f"redis counters at {parts.hostname}:{parts.port or 6379}: {exc}")

    async def _call(self, script: str, keys: list[str], args: list[int]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._execute(batch)
            except (RedisError, OSError) as exc:
                error = self._error(exc)
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (script, keys, args, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller was cancelled while waiting
                    if script == "reserve" and not isinstance(result, Exception) and result[0] == 0:
                        self._give_back(keys, args)
                elif isinstance(result, Exception):
                    future.set_exception(self._error(result))
                else:
                    future.set_result(result)

    def _give_back(self, keys: list[str], args: list[int]) -> None:
        """Release a reservation nobody is waiting for any more (its caller was cancelled)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure)
        self._pending.append(("settle", [keys[1], keys[2]], [0, -args[4]], future))

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        results = await self._pipeline(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            # First use, or Redis restarted and lost its script cache: load the scripts and
            # replay the calls that did not run (NOSCRIPT means the call did nothing).
            for source, _ in self._scripts.values():
                await self._client.script_load(source)
            again = await self._pipeline([batch[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for script, keys, args, _ in calls:
            pipe.evalsha(self._scripts[script][1], len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

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
        code, used = await self._call("reserve", _keys(key_id, minute, period), args)
        raise_denial((code, int(used)), limits, amount, end, now)
        return Reservation(key_id, minute, period, tokens, usd(amount))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace the reserved USD and counted tokens by the actual ones.

        Raises:
            StorageError: Redis failed.
        """
        r = reservation
        _, tpm_key, usd_key = _keys(r.key_id, r.minute, r.period)
        delta_usd = nano_usd(cost_usd) - nano_usd(r.reserved_usd)
        await self._call("settle", [tpm_key, usd_key], [tokens - r.tokens, delta_usd])

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
        """Finish queued calls, then close the connection pool."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._client.aclose()
