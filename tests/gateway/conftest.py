"""Gateway test fixtures: scriptable loopback upstreams and a real uvicorn gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
import uvicorn
import yaml
from gateway_helpers import ENV
from starlette.applications import Starlette

from turnout.config import GatewayConfig, load_config
from turnout.gateway import create_app
from turnout.storage.base import KeySpec
from turnout.storage.ledger import MemoryLedger
from turnout.testing.upstream import UpstreamServer
from turnout.testing.uvicorn_thread import ServedApp, serve_in_thread

T = TypeVar("T")


@dataclass
class Gateway:
    """A gateway running under uvicorn in a thread."""

    app: Starlette
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    api_key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ledger(self) -> MemoryLedger:
        ledger = self.app.state.ledger
        assert isinstance(ledger, MemoryLedger)
        return ledger

    def client(self, api_key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=api_key or self.api_key, max_retries=0, **kwargs
        )

    def create_key(self, spec: KeySpec) -> str:
        store = self.app.state.gatekeeper.key_store
        _, plain = store.create(spec)
        return str(plain)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the gateway's event loop (its async stores live there)."""
        loop = self.server.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(5)

    def rows(self) -> list[Any]:
        self.ledger.flush(5)
        return list(reversed(self.ledger.recent(1000)))


@pytest.fixture
def upstreams() -> Iterator[Callable[[], UpstreamServer]]:
    started: list[UpstreamServer] = []

    def make() -> UpstreamServer:
        server = UpstreamServer().start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    running: list[ServedApp] = []

    def start(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Gateway:
        path = tmp_path / f"turnout-{len(running)}.yaml"
        path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
        parsed: GatewayConfig = load_config(path)
        app = create_app(parsed, environ={**ENV, **(env or {})})
        served = serve_in_thread(app)
        running.append(served)
        gw = Gateway(app, served.port, served.server, served.thread, served.sock)
        gw.api_key = gw.create_key(KeySpec("tests"))
        return gw

    yield start
    for served in running:
        served.stop()
