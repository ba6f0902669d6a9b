"""Gateway test fixtures: scriptable loopback upstreams and a real uvicorn gateway on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette

from turnout.config import GatewayConfig, load_config
from turnout.gateway import create_app
from turnout.storage.base import KeySpec
from turnout.storage.ledger import MemoryLedger
from turnout.testing.upstream import UpstreamServer

# Test models: prices in USD per 1M tokens; context windows chosen for the fallback cases.
TEST_MODELS: dict[str, dict[str, Any]] = {
    "model-a": {
        "provider": "test",
        "input_usd_per_mtok": 1.0,
        "output_usd_per_mtok": 2.0,
        "context_window_tokens": 200_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.9,
    },
    "model-b": {
        "provider": "test",
        "input_usd_per_mtok": 2.0,
        "output_usd_per_mtok": 4.0,
        "context_window_tokens": 8_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.8,
    },
    "model-c": {
        "provider": "test",
        "input_usd_per_mtok": 3.0,
        "output_usd_per_mtok": 6.0,
        "context_window_tokens": 200_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.7,
    },
    "gpt-x": {
        "provider": "openai",
        "input_usd_per_mtok": 2.5,
        "cached_input_usd_per_mtok": 1.25,
        "output_usd_per_mtok": 10.0,
    },
    "free-x": {"provider": "test"},  # unpriced
}


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

    def rows(self) -> list[Any]:
        self.ledger.flush(5)
        return list(reversed(self.ledger.recent(1000)))


def deployment(url: str, model: str, **extra: Any) -> dict[str, Any]:
    """A deployment config dict for an upstream at ``url`` serving catalog ``model``."""
    dep: dict[str, Any] = {
        "provider": "openai",
        "base_url": url,
        "api_key_env": "TEST_UPSTREAM_KEY",
        "model": f"upstream-{model}",
        "catalog_model": model,
        "timeouts": {"connect_s": 1, "first_byte_s": 2, "idle_s": 2, "total_s": 10},
    }
    dep.update(extra)
    return dep


def base_config(
    deployments: Mapping[str, Any], routes: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "deployments": dict(deployments),
        "models": TEST_MODELS,
        "routes": dict(routes),
        "keys": {"required": False, "admin_key_env": None},
        "storage": {"url": "memory://", "counters_url": "memory://"},
        "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
    }
    config.update(extra)
    return config


ENV = {"TEST_UPSTREAM_KEY": "sk-upstream-deployment-key"}


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
    running: list[Gateway] = []

    def start(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Gateway:
        path = tmp_path / f"turnout-{len(running)}.yaml"
        path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
        parsed: GatewayConfig = load_config(path)
        app = create_app(parsed, environ={**ENV, **(env or {})})
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                loop="asyncio",
                http="httptools",
                ws="none",
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "gateway did not start"
        gw = Gateway(app, port, server, thread, sock)
        gw.api_key = gw.create_key(KeySpec("tests"))
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.server.should_exit = True
        gw.thread.join(10)
        gw.sock.close()
