"""Keys, limits, budgets and the ledger end to end: the real gateway under uvicorn on
127.0.0.1, called with the official ``openai`` client, in front of a loopback upstream; the
ledger and keys in SQLite on disk; counters in process or in the real local Redis."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from fixtures.local_services import REDIS_URL, require_redis
from turnout.config import load_config
from turnout.gateway.app import create_app
from turnout.storage.base import KeySpec, LedgerRow, Limits
from turnout.storage.keys import SqliteKeyStore
from turnout.storage.ledger import SqliteLedger
from turnout.testing.upstream import Reply, UpstreamServer
from turnout.testing.uvicorn_thread import ServedApp, serve_in_thread

ADMIN_KEY = "admin-e2e-key-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-deployment-key"
# Output at $10 per 1M tokens, input free: max_tokens=500 makes the worst case exactly
# $0.005, and an upstream reporting 400 completion tokens makes the real cost $0.004.
MODELS = {
    "metered": {
        "provider": "test",
        "input_usd_per_mtok": 0.0,
        "output_usd_per_mtok": 10.0,
        "context_window_tokens": 100_000,
        "max_output_tokens": 4096,
    }
}
REAL_USAGE = {"prompt_tokens": 9, "completion_tokens": 400, "total_tokens": 409}
PROMPT = "the-secret-prompt-text-e2e-7731"


@dataclass
class Running:
    app: Any
    served: ServedApp

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}"

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(upstream: UpstreamServer, **storage: Any) -> Running:
        config = {
            "deployments": {
                "dep-metered": {
                    "provider": "openai",
                    "base_url": upstream.base_url,
                    "api_key_env": "UPSTREAM_KEY",
                    "model": "upstream-metered",
                    "catalog_model": "metered",
                    "timeouts": {"connect_s": 1, "first_byte_s": 5, "idle_s": 5, "total_s": 10},
                }
            },
            "models": MODELS,
            "routes": {"auto": {"candidates": ["metered"]}, "other": {"candidates": ["metered"]}},
            "reliability": {"max_attempts": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
            "keys": {"required": True, "admin_key_env": "TURNOUT_ADMIN_KEY", "cache_ttl_s": 0},
            "storage": {"url": f"sqlite:///{tmp_path}/turnout.db", **storage},
        }
        path = tmp_path / "turnout.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {"UPSTREAM_KEY": UPSTREAM_KEY, "TURNOUT_ADMIN_KEY": ADMIN_KEY}
        app = create_app(load_config(path, environ=env), environ=env)
        gw = Running(app, serve_in_thread(app))
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.stop()


def create_key(tmp_path: Path, spec: KeySpec) -> str:
    store = SqliteKeyStore(tmp_path / "turnout.db")
    _, plain = store.create(spec)
    store.close()
    return plain


def ledger_rows(tmp_path: Path) -> list[LedgerRow]:
    """Rows as a restarted process sees them (the gateway must have been stopped)."""
    ledger = SqliteLedger(tmp_path / "turnout.db")
    rows = list(reversed(ledger.recent(1000)))
    ledger.close()
    return rows


def client(gw: Running, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


async def call(c: openai.AsyncOpenAI, route: str = "auto") -> str:
    """One chat call; returns "ok" or the gateway's error code."""
    try:
        await c.chat.completions.create(
            model=route, messages=[{"role": "user", "content": PROMPT}], max_tokens=500
        )
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return f"{exc.status_code}:{body.get('code')}"
    return "ok"


@pytest.mark.parametrize("counters", ["memory://", REDIS_URL])
def test_acceptance_budget_through_the_gateway(
    counters: str, tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    """Budget $0.010; worst case $0.005, real $0.004; 8 requests at once: at most 2 admitted,
    the rest 429 budget_exceeded, final spend <= $0.010 (from the ledger after a restart)."""
    if counters.startswith("redis"):
        require_redis()
    key = create_key(tmp_path, KeySpec("budgeted", limits=Limits(budget_usd=0.010)))
    upstream.script(default=Reply.ok("answer", usage=REAL_USAGE, delay_s=0.3))
    gw = serve(upstream, counters_url=counters)

    async def wave() -> list[str]:
        c = client(gw, key)
        try:
            return list(await asyncio.gather(*(call(c) for _ in range(8))))
        finally:
            await c.close()

    outcomes = asyncio.run(wave())
    assert outcomes.count("ok") <= 2
    assert outcomes.count("ok") == 2, outcomes
    assert outcomes.count("429:budget_exceeded") == 6, outcomes
    assert len(upstream.requests) == 2  # refused requests never reach the upstream
    gw.stop()  # shutdown flushes the ledger
    rows = ledger_rows(tmp_path)
    assert len(rows) == 8
    ok = [r for r in rows if r.status == "ok"]
    rejected = [r for r in rows if r.status == "rejected"]
    assert len(ok) == 2 and len(rejected) == 6
    assert {r.error_code for r in rejected} == {"budget_exceeded"}
    assert all(r.http_status == 429 for r in rejected)
    assert [r.cost_usd for r in ok] == [pytest.approx(0.004)] * 2
    assert all(r.usage is not None and r.usage.output_tokens == 400 for r in ok)
    spent = sum(r.cost_usd or 0.0 for r in rows)
    assert spent <= 0.010
    assert all(r.prompt_text is None for r in rows)
    assert PROMPT.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("turnout.db*"))


def test_failed_call_releases_and_is_recorded(
    tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    key = create_key(tmp_path, KeySpec("budgeted", limits=Limits(budget_usd=0.010)))
    upstream.script(
        Reply.error(500, "boom"),
        Reply.error(500, "boom"),
        Reply.error(500, "boom"),
        default=Reply.ok("answer", usage=REAL_USAGE, delay_s=0.2),
    )
    gw = serve(upstream)

    async def run() -> tuple[list[str], list[str]]:
        c = client(gw, key)
        try:
            failed = [await call(c) for _ in range(3)]  # each reserved $0.005, then released
            wave = list(await asyncio.gather(*(call(c) for _ in range(4))))
        finally:
            await c.close()
        return failed, wave

    failed, wave = asyncio.run(run())
    assert all(not f.startswith(("ok", "429")) for f in failed), failed
    assert wave.count("ok") == 2 and wave.count("429:budget_exceeded") == 2, wave
    gw.stop()
    rows = ledger_rows(tmp_path)
    failed_rows = [r for r in rows if r.status == "failed"]
    assert len(failed_rows) == 3
    assert all(r.attempts and r.attempts[-1].http_status == 500 for r in failed_rows)
    assert all(r.cost_usd is None for r in failed_rows)


def test_auth_route_and_rate_limit_errors(
    tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    limited = create_key(tmp_path, KeySpec("rpm", limits=Limits(rpm=1)))
    auto_only = create_key(tmp_path, KeySpec("auto-only", allowed_routes=frozenset({"auto"})))
    store = SqliteKeyStore(tmp_path / "turnout.db")
    revoked_record, revoked = store.create(KeySpec("revoked"))
    store.revoke(revoked_record.key_id)
    store.close()
    gw = serve(upstream)

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, route in [
            ("rpm-1", limited, "auto"),
            ("rpm-2", limited, "auto"),
            ("route-ok", auto_only, "auto"),
            ("route-denied", auto_only, "other"),
            ("revoked", revoked, "auto"),
            ("invalid", "sk-tn-000000000000.wrong", "auto"),
            ("admin", ADMIN_KEY, "other"),
        ]:
            c = client(gw, key)
            out[name] = await call(c, route)
            await c.close()
        async with httpx.AsyncClient() as h:
            missing = await h.post(f"{gw.url}/v1/chat/completions", json={"model": "auto"})
            out["missing"] = (missing.status_code, missing.json()["error"]["code"])
            limited_again = await h.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                headers={"authorization": f"Bearer {limited}"},
            )
            out["retry-after"] = (limited_again.status_code, limited_again.headers["retry-after"])
            out["metrics"] = (await h.get(f"{gw.url}/metrics")).text
        return out

    out = asyncio.run(run())
    assert out["rpm-1"] == "ok"
    assert out["rpm-2"] == "429:rate_limit_exceeded"
    assert out["route-ok"] == "ok"
    assert out["route-denied"] == "403:route_not_allowed"
    assert out["revoked"] == "401:revoked_api_key"
    assert out["invalid"] == "401:invalid_api_key"
    assert out["missing"] == (401, "missing_api_key")
    assert out["retry-after"][0] == 429 and 1 <= int(out["retry-after"][1]) <= 60
    assert out["admin"] == "ok"
    for secret in (limited, auto_only, revoked, ADMIN_KEY, UPSTREAM_KEY):
        assert secret.split(".")[-1] not in out["metrics"]
    gw.stop()
    rows = ledger_rows(tmp_path)
    codes = sorted(str(r.error_code) for r in rows if r.status == "rejected")
    assert codes == sorted(
        [
            "rate_limit_exceeded",
            "rate_limit_exceeded",
            "route_not_allowed",
            "revoked_api_key",
            "invalid_api_key",
            "missing_api_key",
        ]
    )
    assert {r.key_id for r in rows if r.status == "ok"} >= {"admin"}
    # The upstream saw only the deployment's key, never a caller's.
    assert {r.headers.get("authorization") for r in upstream.requests} == {f"Bearer {UPSTREAM_KEY}"}
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("turnout.db*"))
    for secret in (limited, auto_only, revoked, ADMIN_KEY):
        assert secret.split(".")[-1].encode() not in blob


def test_prompt_text_stored_only_when_enabled(
    tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    key = create_key(tmp_path, KeySpec("k"))
    gw = serve(upstream, store_prompts=True)

    async def run() -> str:
        c = client(gw, key)
        try:
            return await call(c)
        finally:
            await c.close()

    assert asyncio.run(run()) == "ok"
    gw.stop()
    (row,) = ledger_rows(tmp_path)
    assert row.prompt_text is not None and PROMPT in row.prompt_text
    with sqlite3.connect(tmp_path / "turnout.db") as conn:
        assert (
            conn.execute("SELECT count(*) FROM ledger WHERE prompt_text IS NOT NULL").fetchone()[0]
            == 1
        )


def test_streams_settle_their_actual_cost(
    tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    key = create_key(tmp_path, KeySpec("budgeted", limits=Limits(budget_usd=0.010)))
    upstream.script(default=Reply.ok("streamed answer", usage=REAL_USAGE))
    gw = serve(upstream)

    async def run() -> list[str]:
        c = client(gw, key)
        out = []
        try:
            for _ in range(3):
                try:
                    stream = await c.chat.completions.create(
                        model="auto",
                        messages=[{"role": "user", "content": PROMPT}],
                        max_tokens=500,
                        stream=True,
                    )
                    text = "".join(
                        [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
                    )
                    out.append(text)
                except openai.APIStatusError as exc:
                    body = exc.body if isinstance(exc.body, dict) else {}
                    out.append(f"{exc.status_code}:{body.get('code')}")
        finally:
            await c.close()
        return out

    # $0.004 settled per stream: after two, $0.008 is spent and a $0.005 worst case is refused.
    assert asyncio.run(run()) == ["streamed answer", "streamed answer", "429:budget_exceeded"]
    gatekeeper = gw.app.state.gatekeeper
    principal = gatekeeper.authenticate(f"Bearer {key}")
    assert asyncio.run(gatekeeper.spent_usd(principal)) == pytest.approx(0.008)
    gw.stop()
    rows = ledger_rows(tmp_path)
    assert [r.status for r in rows] == ["ok", "ok", "rejected"]
    assert [r.cost_usd for r in rows[:2]] == [pytest.approx(0.004)] * 2
    assert all(r.stream and r.ttft_s is not None for r in rows[:2])


def test_unreachable_counters_give_503_not_500(
    tmp_path: Path, upstream: UpstreamServer, serve: Callable[..., Running]
) -> None:
    key = create_key(tmp_path, KeySpec("budgeted", limits=Limits(budget_usd=1.0)))
    gw = serve(upstream, counters_url="redis://127.0.0.1:1/0")

    async def run() -> httpx.Response:
        async with httpx.AsyncClient() as h:
            return await h.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                headers={"authorization": f"Bearer {key}"},
            )

    response = asyncio.run(run())
    assert response.status_code == 503
    assert key.split(".")[1] not in response.text
    assert len(upstream.requests) == 0
