from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.local_services import REDIS_URL, require_redis
from turnout.catalog import ModelCard
from turnout.errors import (
    AdmissionError,
    AuthenticationError,
    BudgetExceeded,
    ConfigError,
    PermissionDeniedError,
    RateLimitExceeded,
)
from turnout.gateway.admission import Admission, Gatekeeper, Principal, worst_case_cost_usd
from turnout.storage.base import Counters, KeySpec, Limits
from turnout.storage.config import KeysConfig, LimitsConfig, StorageConfig
from turnout.storage.counters import MemoryCounters
from turnout.storage.keys import MemoryKeyStore, SqliteKeyStore
from turnout.storage.redis_counters import RedisCounters
from turnout.storage.sqlite_counters import SqliteCounters
from turnout.types import Usage

ADMIN = "admin-key-for-tests-0123456789"


def make_counters(backend: str, tmp_path: Path) -> Counters:
    if backend == "memory":
        return MemoryCounters()
    if backend == "sqlite":
        return SqliteCounters(tmp_path / "counters.db")
    require_redis()
    return RedisCounters(REDIS_URL)


BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture
async def gatekeeper(tmp_path: Path) -> AsyncIterator[Gatekeeper]:
    keeper = Gatekeeper(
        SqliteKeyStore(tmp_path / "keys.db"), MemoryCounters(), admin_key=ADMIN, cache_ttl_s=0
    )
    yield keeper
    await keeper.aclose()


def bearer(key: str) -> str:
    return f"Bearer {key}"


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic abc", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Bearer sk-tn-000000000000.nope", "invalid_api_key"),
        ("Bearer sk-someone-elses-openai-key", "invalid_api_key"),
    ],
)
def test_bad_credentials_get_401(gatekeeper: Gatekeeper, header: str | None, code: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        gatekeeper.authenticate(header)
    assert info.value.status_code == 401
    assert info.value.code == code
    assert info.value.error_type == "authentication_error"


def test_valid_key_and_revocation(gatekeeper: Gatekeeper) -> None:
    assert gatekeeper.key_store is not None
    record, plain = gatekeeper.key_store.create(KeySpec(name="a", metadata={"team": "x"}))
    principal = gatekeeper.authenticate(bearer(plain))
    assert principal.key_id == record.key_id and principal.metadata == {"team": "x"}
    assert principal.masked_key == record.masked and plain not in principal.masked_key
    assert gatekeeper.authenticate(f"bearer   {plain} ").key_id == record.key_id
    gatekeeper.key_store.revoke(record.key_id)
    with pytest.raises(AuthenticationError, match="revoked") as info:
        gatekeeper.authenticate(bearer(plain))
    assert info.value.code == "revoked_api_key"
    assert plain.split(".")[1] not in str(info.value)


def test_revocation_shows_after_the_cache_ttl(tmp_path: Path) -> None:
    store = MemoryKeyStore()
    keeper = Gatekeeper(store, MemoryCounters(), cache_ttl_s=0.05)
    record, plain = store.create(KeySpec(name="a"))
    keeper.authenticate(bearer(plain))
    store.revoke(record.key_id)
    keeper.authenticate(bearer(plain))  # still cached
    import time

    time.sleep(0.06)
    with pytest.raises(AuthenticationError):
        keeper.authenticate(bearer(plain))


def test_admin_key(gatekeeper: Gatekeeper) -> None:
    principal = gatekeeper.authenticate(bearer(ADMIN))
    assert principal.is_admin and principal.key_id == "admin"
    assert principal.masked_key == "admin"
    gatekeeper.check_route(principal, "any-route")
    with pytest.raises(AuthenticationError):
        gatekeeper.authenticate(bearer(ADMIN + "x"))


def test_anonymous_only_when_not_required() -> None:
    keeper = Gatekeeper(None, MemoryCounters(), required=False)
    assert keeper.authenticate(None).key_id is None
    assert keeper.authenticate("Bearer sk-placeholder").key_id is None  # SDKs send something
    with pytest.raises(AuthenticationError):
        Gatekeeper(None, MemoryCounters()).authenticate("Bearer sk-placeholder")
    with pytest.raises(AuthenticationError):  # a wrong key is still wrong
        keeper.authenticate("Bearer sk-tn-000000000000.x")


# --- routes, limits and budgets -------------------------------------------------------------


async def test_route_allow_list_gets_403(gatekeeper: Gatekeeper) -> None:
    assert gatekeeper.key_store is not None
    _, plain = gatekeeper.key_store.create(KeySpec(name="a", allowed_routes=frozenset({"auto"})))
    principal = gatekeeper.authenticate(bearer(plain))
    admission = await gatekeeper.admit(
        principal, route="auto", worst_case_cost_usd=0.1, input_tokens=5
    )
    await admission.settle(0.01)
    with pytest.raises(PermissionDeniedError, match="may not use route 'gpt-4o'") as info:
        await gatekeeper.admit(principal, route="gpt-4o", worst_case_cost_usd=0.1, input_tokens=5)
    assert info.value.status_code == 403 and info.value.code == "route_not_allowed"


async def test_rate_limit_and_budget_429_codes_differ(gatekeeper: Gatekeeper) -> None:
    assert gatekeeper.key_store is not None
    _, rpm_key = gatekeeper.key_store.create(KeySpec(name="r", limits=Limits(rpm=1)))
    _, usd_key = gatekeeper.key_store.create(KeySpec(name="b", limits=Limits(budget_usd=0.001)))
    errors: list[AdmissionError] = []
    for plain, cost in ((rpm_key, 0.0), (usd_key, 0.002)):
        principal = gatekeeper.authenticate(bearer(plain))
        with pytest.raises(AdmissionError) as info:
            for _ in range(2):
                await gatekeeper.admit(
                    principal, route="auto", worst_case_cost_usd=cost, input_tokens=1
                )
        errors.append(info.value)
    rate, budget = errors
    assert isinstance(rate, RateLimitExceeded) and isinstance(budget, BudgetExceeded)
    assert rate.status_code == budget.status_code == 429
    assert rate.code == "rate_limit_exceeded" and budget.code == "budget_exceeded"
    assert rate.error_type != budget.error_type
    assert rate.retry_after_s is not None and budget.retry_after_s is not None


async def run_wave(
    keeper: Gatekeeper,
    principal: Principal,
    n: int,
    *,
    fail: Callable[[int], bool] = lambda i: False,
) -> list[str]:
    """Admit n requests at once; admitted ones 'call the upstream' then settle at $0.004."""

    async def one(i: int) -> str:
        try:
            admission = await keeper.admit(
                principal, route="auto", worst_case_cost_usd=0.005, input_tokens=100
            )
        except BudgetExceeded as exc:
            assert exc.status_code == 429 and exc.code == "budget_exceeded"
            return "budget_exceeded"
        try:
            await asyncio.sleep(0.05)  # the upstream call, overlapping the other admissions
            if fail(i):
                raise ConnectionError("upstream dropped the connection")
        except ConnectionError:
            await admission.release()
            return "failed"
        await admission.settle(0.004, Usage(input_tokens=100, output_tokens=300))
        return "ok"

    return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_acceptance_budget_with_concurrent_tasks(backend: str, tmp_path: Path) -> None:
    """Budget $0.010; worst case $0.005, real cost $0.004; 8 at once: at most 2 admitted."""
    store = SqliteKeyStore(tmp_path / "keys.db")
    _, plain = store.create(KeySpec(name="t", limits=Limits(budget_usd=0.010, budget_period="day")))
    keeper = Gatekeeper(store, make_counters(backend, tmp_path))
    principal = keeper.authenticate(bearer(plain))
    outcomes = await run_wave(keeper, principal, 8)
    assert outcomes.count("ok") <= 2
    assert outcomes.count("ok") == 2  # and the budget is not wasted either
    assert outcomes.count("budget_exceeded") == 6
    spent = await keeper.spent_usd(principal)
    assert spent is not None and spent <= 0.010
    assert spent == pytest.approx(0.008)
    await keeper.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_acceptance_budget_with_threads(backend: str, tmp_path: Path) -> None:
    """8 threads, each its own event loop (and for Redis/SQLite its own connection, like
    replicas or workers); one shared key: never more than $0.010 reserved."""
    store = SqliteKeyStore(tmp_path / "keys.db")
    _, plain = store.create(KeySpec(name="t", limits=Limits(budget_usd=0.010)))
    shared = MemoryCounters()
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        async def go() -> str:
            counters = shared if backend == "memory" else make_counters(backend, tmp_path)
            keeper = Gatekeeper(SqliteKeyStore(tmp_path / "keys.db"), counters)
            principal = keeper.authenticate(bearer(plain))
            barrier.wait()
            try:
                outcome = (await run_wave(keeper, principal, 1))[0]
            finally:
                if backend != "memory":
                    await counters.aclose()
            return outcome

        outcome = asyncio.run(go())
        with lock:
            results.append(outcome)

    if backend == "redis":
        require_redis()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert results.count("ok") == 2 and results.count("budget_exceeded") == 6

    async def spent() -> float | None:
        counters = shared if backend == "memory" else make_counters(backend, tmp_path)
        keeper = Gatekeeper(store, counters)
        value = await keeper.spent_usd(keeper.authenticate(bearer(plain)))
        await counters.aclose()
        return value

    total = asyncio.run(spent())
    assert total is not None and total <= 0.010
    assert total == pytest.approx(0.008)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_failed_call_releases_its_reservation(backend: str, tmp_path: Path) -> None:
    store = MemoryKeyStore()
    _, plain = store.create(KeySpec(name="t", limits=Limits(budget_usd=0.010)))
    keeper = Gatekeeper(store, make_counters(backend, tmp_path))
    principal = keeper.authenticate(bearer(plain))
    first = await run_wave(keeper, principal, 2, fail=lambda i: True)
    assert first == ["failed", "failed"]
    assert await keeper.spent_usd(principal) == 0.0
    second = await run_wave(keeper, principal, 8)
    assert second.count("ok") == 2  # the released dollars were available again
    await keeper.aclose()


async def test_budget_resets_next_period(tmp_path: Path) -> None:
    store = MemoryKeyStore()
    _, plain = store.create(KeySpec(name="t", limits=Limits(budget_usd=0.010, budget_period=3600)))
    now = [3600.0 * 480_000 + 100]
    keeper = Gatekeeper(store, MemoryCounters(), clock=lambda: now[0])
    principal = keeper.authenticate(bearer(plain))
    assert (await run_wave(keeper, principal, 4)).count("ok") == 2
    assert (await run_wave(keeper, principal, 4)).count("ok") == 0  # $0.008 spent: no room
    now[0] += 3600
    assert (await run_wave(keeper, principal, 4)).count("ok") == 2


async def test_settle_and_release_happen_once() -> None:
    store = MemoryKeyStore()
    _, plain = store.create(KeySpec(name="t", limits=Limits(budget_usd=1.0)))
    keeper = Gatekeeper(store, MemoryCounters())
    principal = keeper.authenticate(bearer(plain))
    admission = await keeper.admit(principal, route="a", worst_case_cost_usd=0.5, input_tokens=1)
    assert isinstance(admission, Admission) and admission.reserved_usd == 0.5 and admission.open
    await admission.settle(0.25)
    await admission.release()  # ignored: already settled
    await admission.settle(0.25)  # ignored
    assert not admission.open
    assert await keeper.spent_usd(principal) == pytest.approx(0.25)


async def test_unpriced_route_with_a_budget() -> None:
    store = MemoryKeyStore()
    _, budgeted = store.create(KeySpec(name="b", limits=Limits(budget_usd=1.0)))
    _, free = store.create(KeySpec(name="f"))
    keeper = Gatekeeper(store, MemoryCounters())
    with pytest.raises(PermissionDeniedError) as info:
        await keeper.admit(
            keeper.authenticate(bearer(budgeted)),
            route="local",
            worst_case_cost_usd=None,
            input_tokens=1,
        )
    assert info.value.code == "budget_unpriced_model"
    await keeper.admit(
        keeper.authenticate(bearer(free)), route="local", worst_case_cost_usd=None, input_tokens=1
    )
    lenient = Gatekeeper(store, MemoryCounters(), unpriced_models="allow")
    admission = await lenient.admit(
        lenient.authenticate(bearer(budgeted)),
        route="local",
        worst_case_cost_usd=None,
        input_tokens=1,
    )
    assert admission.reserved_usd == 0.0


async def test_default_limits_apply_to_keys_without_their_own() -> None:
    store = MemoryKeyStore()
    _, plain = store.create(KeySpec(name="t", limits=Limits(rpm=5)))
    defaults = LimitsConfig(rpm=1, tpm=100, budget_usd=2.0, budget_period="day")
    keeper = Gatekeeper(store, MemoryCounters(), default_limits=defaults)
    principal = keeper.authenticate(bearer(plain))
    assert principal.limits == Limits(rpm=5, tpm=100, budget_usd=2.0, budget_period="day")


async def test_admin_is_never_limited(gatekeeper: Gatekeeper) -> None:
    principal = gatekeeper.authenticate(bearer(ADMIN))
    for _ in range(3):
        admission = await gatekeeper.admit(
            principal, route="x", worst_case_cost_usd=1e6, input_tokens=10**9
        )
        assert admission.reserved_usd == 0.0


# --- worst case and config ------------------------------------------------------------------


def card(model: str, inp: float | None, out: float | None, **kw: object) -> ModelCard:
    return ModelCard(id=model, provider="p", input_usd_per_mtok=inp, output_usd_per_mtok=out, **kw)  # type: ignore[arg-type]


def test_worst_case_cost() -> None:
    cheap = card("cheap", 0.15, 0.60, max_output_tokens=16_384)
    dear = card("dear", 2.50, 10.0, max_output_tokens=4_096, cache_write_usd_per_mtok=3.125)
    # dear: 1000 in at the cache-write price 3.125 + 500 out at 10 = 0.003125 + 0.005
    assert worst_case_cost_usd([cheap, dear], input_tokens=1000, max_output_tokens=500) == (
        pytest.approx(0.008125)
    )
    # no max_tokens: each model's own max output; cheap 16384*0.6/1e6 < dear 4096*10/1e6
    assert worst_case_cost_usd([cheap, dear], input_tokens=0, max_output_tokens=None) == (
        pytest.approx(0.04096)
    )
    # max_tokens above the model's max output is capped by it
    assert worst_case_cost_usd([dear], input_tokens=0, max_output_tokens=10**6) == (
        pytest.approx(0.04096)
    )
    assert (
        worst_case_cost_usd([cheap, card("local", None, None)], input_tokens=1, max_output_tokens=1)
        is None
    )
    with pytest.raises(ValueError, match="at least one model card"):
        worst_case_cost_usd([], input_tokens=1, max_output_tokens=1)


async def test_from_config(tmp_path: Path) -> None:
    storage = StorageConfig(url=f"sqlite:///{tmp_path}/t.db", counters_url="memory://")
    keeper = Gatekeeper.from_config(
        storage, KeysConfig(admin_key_env="MY_ADMIN"), environ={"MY_ADMIN": ADMIN}
    )
    assert keeper.authenticate(bearer(ADMIN)).is_admin
    await keeper.aclose()
    no_admin = Gatekeeper.from_config(storage, KeysConfig(), environ={})
    with pytest.raises(AuthenticationError):
        no_admin.authenticate(bearer(ADMIN))
    await no_admin.aclose()
    with pytest.raises(ConfigError, match="at least 16 characters; got 5"):
        Gatekeeper.from_config(storage, KeysConfig(admin_key_env="A"), environ={"A": "short"})


def _process_worker(backend: str, db: str, plain: str, start: Any, out: Any) -> None:
    async def go() -> str:
        counters: Counters = (
            SqliteCounters(Path(db).with_name("counters.db"))
            if backend == "sqlite"
            else RedisCounters(REDIS_URL)
        )
        keeper = Gatekeeper(SqliteKeyStore(db), counters)
        principal = keeper.authenticate(bearer(plain))
        start.wait()
        try:
            return (await run_wave(keeper, principal, 1))[0]
        finally:
            await keeper.aclose()

    out.put(asyncio.run(go()))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_acceptance_budget_across_processes(backend: str, tmp_path: Path) -> None:
    """8 processes (like gateway workers or replicas) share one key: 2 admitted, $0.008."""
    if backend == "redis":
        require_redis()
    import multiprocessing

    db = tmp_path / "keys.db"
    _, plain = SqliteKeyStore(db).create(KeySpec(name="t", limits=Limits(budget_usd=0.010)))
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(backend, str(db), plain, start, out))
        for _ in range(8)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert results.count("ok") == 2 and results.count("budget_exceeded") == 6, results

    async def spent() -> float | None:
        counters: Counters = (
            SqliteCounters(tmp_path / "counters.db")
            if backend == "sqlite"
            else RedisCounters(REDIS_URL)
        )
        keeper = Gatekeeper(SqliteKeyStore(db), counters)
        value = await keeper.spent_usd(keeper.authenticate(bearer(plain)))
        await keeper.aclose()
        return value

    assert asyncio.run(spent()) == pytest.approx(0.008)
