from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from fixtures.local_services import REDIS_URL, require_redis
from turnout.errors import BudgetExceeded, RateLimitExceeded, StorageError
from turnout.storage.base import Counters, Limits
from turnout.storage.config import StorageConfig
from turnout.storage.counters import MemoryCounters, budget_window
from turnout.storage.factory import open_counters
from turnout.storage.redis_counters import RedisCounters
from turnout.storage.sqlite_counters import SqliteCounters

NOW = dt.datetime(2026, 11, 29, 10, 30, 15, tzinfo=dt.UTC).timestamp()  # a Sunday


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def counters(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Counters]:
    backend: Counters
    if request.param == "memory":
        backend = MemoryCounters()
    elif request.param == "sqlite":
        backend = SqliteCounters(tmp_path / "counters.db")
    else:
        require_redis()
        backend = RedisCounters(REDIS_URL)
    yield backend
    await backend.aclose()


def fresh_key() -> str:
    return "test-" + secrets.token_hex(6)  # unique: Redis is shared with other tests


async def test_budget_reserve_settle_release(counters: Counters) -> None:
    key, limits = fresh_key(), Limits(budget_usd=0.010, budget_period="day")
    a = await counters.reserve(key, limits, tokens=10, cost_usd=0.005, now=NOW)
    b = await counters.reserve(key, limits, tokens=10, cost_usd=0.005, now=NOW)
    with pytest.raises(BudgetExceeded, match=r"\$0\.010000 of \$0\.010000") as info:
        await counters.reserve(key, limits, tokens=10, cost_usd=0.005, now=NOW)
    assert info.value.code == "budget_exceeded" and info.value.status_code == 429
    # Retry when the day ends (13.5 hours after 10:30 UTC).
    assert info.value.retry_after_s == pytest.approx(13.5 * 3600 - 15)
    await counters.settle(a, cost_usd=0.004, tokens=50)
    await counters.release(b)
    assert await counters.spent_usd(key, limits, now=NOW) == pytest.approx(0.004)
    c = await counters.reserve(key, limits, tokens=10, cost_usd=0.006, now=NOW)
    assert c.reserved_usd == pytest.approx(0.006)
    with pytest.raises(BudgetExceeded):
        await counters.reserve(key, limits, tokens=10, cost_usd=1e-9, now=NOW)


async def test_budget_resets_with_the_period(counters: Counters) -> None:
    key, limits = fresh_key(), Limits(budget_usd=1.0, budget_period=3600)
    start = 3600 * 500_000.0
    await counters.reserve(key, limits, tokens=0, cost_usd=1.0, now=start + 10)
    with pytest.raises(BudgetExceeded) as info:
        await counters.reserve(key, limits, tokens=0, cost_usd=0.5, now=start + 3599)
    assert info.value.retry_after_s == pytest.approx(1.0)
    await counters.reserve(key, limits, tokens=0, cost_usd=0.5, now=start + 3600)  # reset
    assert await counters.spent_usd(key, limits, now=start + 3600) == pytest.approx(0.5)
    assert await counters.spent_usd(key, limits, now=start) == pytest.approx(1.0)


async def test_requests_per_minute(counters: Counters) -> None:
    key, limits = fresh_key(), Limits(rpm=3)
    minute = 60 * 30_000_000.0
    for _ in range(3):
        r = await counters.reserve(key, limits, tokens=1, cost_usd=0.0, now=minute + 5)
        await counters.release(r)  # a released request still counts against RPM
    with pytest.raises(RateLimitExceeded) as info:
        await counters.reserve(key, limits, tokens=1, cost_usd=0.0, now=minute + 20)
    assert info.value.code == "rate_limit_exceeded" and info.value.status_code == 429
    assert info.value.retry_after_s == pytest.approx(40.0)
    await counters.reserve(key, limits, tokens=1, cost_usd=0.0, now=minute + 60)  # next minute


async def test_tokens_per_minute_corrected_on_settle(counters: Counters) -> None:
    key, limits = fresh_key(), Limits(tpm=1000)
    minute = 60 * 30_000_001.0
    r = await counters.reserve(key, limits, tokens=300, cost_usd=0.0, now=minute)
    await counters.settle(r, cost_usd=0.0, tokens=900)  # 300 in + 600 out
    with pytest.raises(RateLimitExceeded, match="tokens 900 of 1000"):
        await counters.reserve(key, limits, tokens=200, cost_usd=0.0, now=minute + 1)
    await counters.reserve(key, limits, tokens=100, cost_usd=0.0, now=minute + 2)


async def test_denial_takes_nothing(counters: Counters) -> None:
    key = fresh_key()
    limits = Limits(rpm=100, tpm=100, budget_usd=0.01)
    with pytest.raises(BudgetExceeded):
        await counters.reserve(key, limits, tokens=10, cost_usd=0.02, now=NOW)
    with pytest.raises(RateLimitExceeded):
        await counters.reserve(key, limits, tokens=101, cost_usd=0.0, now=NOW)
    assert await counters.spent_usd(key, limits, now=NOW) == 0.0
    await counters.reserve(key, limits, tokens=100, cost_usd=0.01, now=NOW)


async def test_concurrent_reservations_never_overspend(counters: Counters) -> None:
    key, limits = fresh_key(), Limits(budget_usd=0.010)

    async def one() -> bool:
        try:
            await counters.reserve(key, limits, tokens=1, cost_usd=0.005, now=NOW)
        except BudgetExceeded:
            return False
        return True

    admitted = await asyncio.gather(*(one() for _ in range(16)))
    assert sum(admitted) == 2
    assert await counters.spent_usd(key, limits, now=NOW) == pytest.approx(0.010)


@pytest.mark.parametrize(
    ("period", "when", "window", "end"),
    [
        ("day", "2026-11-29T23:59:59", "day:2026-11-29", "2026-11-30T00:00:00"),
        ("week", "2026-11-29T10:00:00", "week:2026-11-23", "2026-11-30T00:00:00"),
        ("week", "2026-11-30T00:00:00", "week:2026-11-30", "2026-12-07T00:00:00"),
        ("month", "2026-12-31T12:00:00", "month:2026-12", "2027-01-01T00:00:00"),
        ("month", "2026-02-10T00:00:00", "month:2026-02", "2026-03-01T00:00:00"),
    ],
)
def test_budget_windows(period: str, when: str, window: str, end: str) -> None:
    now = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp()
    got_window, got_end = budget_window(period, now)  # type: ignore[arg-type]
    assert got_window == window
    assert got_end == dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC).timestamp()


def test_budget_window_rejects_bad_periods() -> None:
    with pytest.raises(ValueError, match="positive number of seconds; got 0"):
        budget_window(0, NOW)
    with pytest.raises(ValueError, match="got 'year'"):
        budget_window("year", NOW)  # type: ignore[arg-type]


async def test_unreachable_redis_raises_storage_error() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0", socket_timeout_s=0.5)
    with pytest.raises(StorageError, match="redis counters at 127.0.0.1:1"):
        await counters.reserve("k", Limits(rpm=1), tokens=0, cost_usd=0.0, now=NOW)
    await counters.aclose()


def test_open_counters_by_url(tmp_path: Path) -> None:
    assert isinstance(open_counters(StorageConfig(counters_url="memory://")), MemoryCounters)
    sqlite = open_counters(StorageConfig(counters_url=f"sqlite:///{tmp_path}/c.db"))
    assert isinstance(sqlite, SqliteCounters)
    asyncio.run(sqlite.aclose())
    redis_counters = open_counters(StorageConfig(counters_url=REDIS_URL))
    assert isinstance(redis_counters, RedisCounters)
    asyncio.run(redis_counters.aclose())


async def test_storage_errors_never_show_passwords() -> None:
    counters = RedisCounters("redis://user:hunter2-secret@127.0.0.1:1/0", socket_timeout_s=0.5)
    with pytest.raises(StorageError) as info:
        await counters.reserve("k", Limits(rpm=1), tokens=0, cost_usd=0.0, now=NOW)
    await counters.aclose()
    assert "hunter2" not in str(info.value)
    from turnout.storage.postgres import PostgresLedger

    with pytest.raises(StorageError) as pg_info:
        PostgresLedger("postgresql://postgres:hunter2-secret@127.0.0.1:1/test")
    assert "hunter2" not in str(pg_info.value)
    assert "127.0.0.1:1/test" in str(pg_info.value)


async def test_redis_recovers_from_a_flushed_script_cache() -> None:
    require_redis()
    counters = RedisCounters(REDIS_URL)
    key, limits = fresh_key(), Limits(budget_usd=0.01)
    first = await counters.reserve(key, limits, tokens=1, cost_usd=0.004, now=NOW)
    redis.Redis.from_url(REDIS_URL).script_flush()  # as after a Redis restart
    await counters.settle(first, cost_usd=0.003, tokens=2)
    await counters.reserve(key, limits, tokens=1, cost_usd=0.007, now=NOW)
    assert await counters.spent_usd(key, limits, now=NOW) == pytest.approx(0.010)
    await counters.aclose()


async def test_redis_gives_back_a_reservation_whose_caller_was_cancelled() -> None:
    require_redis()
    counters = RedisCounters(REDIS_URL)
    key, limits = fresh_key(), Limits(budget_usd=0.01)
    tasks = [
        asyncio.create_task(counters.reserve(key, limits, tokens=1, cost_usd=0.005, now=NOW))
        for _ in range(2)
    ]
    await asyncio.sleep(0)  # both queued, the pipeline on its way
    tasks[0].cancel()
    kept = await tasks[1]
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    await counters.aclose()  # waits for queued calls, the give-back included
    again = RedisCounters(REDIS_URL)
    assert await again.spent_usd(key, limits, now=NOW) == pytest.approx(kept.reserved_usd)
    await again.aclose()


async def test_redis_group_commit_keeps_every_call_atomic() -> None:
    require_redis()
    counters = RedisCounters(REDIS_URL)
    key, limits = fresh_key(), Limits(rpm=50, budget_usd=1.0)

    async def one() -> str:
        try:
            r = await counters.reserve(key, limits, tokens=1, cost_usd=0.03, now=NOW)
        except RateLimitExceeded:
            return "rpm"
        except BudgetExceeded:
            return "usd"
        await counters.settle(r, cost_usd=0.02, tokens=1)
        return "ok"

    outcomes = await asyncio.gather(*(one() for _ in range(200)))
    # At most 50 pass RPM; reservations of $0.03 fit 33 times in $1.00 before any settles
    # (settled ones free $0.01 each, so more may fit later, up to the RPM limit).
    assert 33 <= outcomes.count("ok") <= 50
    assert outcomes.count("rpm") + outcomes.count("usd") == 200 - outcomes.count("ok")
    spent = await counters.spent_usd(key, limits, now=NOW)
    assert spent == pytest.approx(0.02 * outcomes.count("ok"))
    await counters.aclose()
