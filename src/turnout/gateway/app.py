"""The ASGI app: :func:`create_app` builds a Starlette app from a :class:`GatewayConfig`.

Endpoints:

=========================  ==========================================================
``POST /v1/chat/completions``  route, call, relay (stream or not), meter, record
``POST /v1/route``             dry run: the full decision and why, no upstream call
``GET /v1/models``             the routes and models the caller's key may use (OpenAI list)
``GET /healthz``               the process is up
``GET /readyz``                started, and at least one deployment's breaker is closed
``GET /metrics``               Prometheus text format
=========================  ==========================================================

Start-up opens one pooled :class:`aiohttp.ClientSession` for every upstream and the ledger's
background writer; shutdown flushes the ledger and closes both.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from turnout.catalog import Catalog
from turnout.config import GatewayConfig
from turnout.errors import InvalidRequestError, TurnoutError
from turnout.gateway.admission import Gatekeeper
from turnout.gateway.chat import ChatHandler
from turnout.gateway.errors import error_response
from turnout.gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from turnout.gateway.runtime import Runtime
from turnout.storage.base import Ledger

__all__ = ["create_app"]

logger = logging.getLogger("turnout.gateway")


_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


class _GatewayApp(Starlette):
    """Starlette, with ``POST /v1/chat/completions`` dispatched straight to its handler.

    The hot endpoint skips the router and exception middlewares (the handler turns every
    turnout error into an OpenAI-shaped response itself); everything else, lifespan included,
    goes through Starlette as usual.
    """

    def __init__(self, handler: ChatHandler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chat = handler.chat_completions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in _CHAT_PATHS:
            scope["app"] = self
            response = await self._chat(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def create_app(
    config: GatewayConfig,
    *,
    catalog: Catalog | None = None,
    environ: Mapping[str, str] | None = None,
    ledger: Ledger | None = None,
    gatekeeper: Gatekeeper | None = None,
) -> Starlette:
    """Build the gateway app.

    Args:
        config: The validated config (:func:`turnout.config.load_config`).
        catalog: Base catalog; the shipped one if ``None`` (the config's ``models`` apply).
        environ: Where ``api_key_env`` and the admin key variable are read (``os.environ``).
        ledger: Ledger to write to; opened from ``config.storage`` if ``None``.
        gatekeeper: Admission; built from ``config.storage`` and ``config.keys`` if ``None``.

    Returns:
        The Starlette app; ``app.state.runtime``, ``.ledger``, ``.gatekeeper`` and ``.metrics``
        expose its parts.

    Raises:
        ConfigError: If the config cannot be turned into routers and deployments (unknown
            provider or policy, unset key variable, unserved candidate).
        StorageError: If the ledger, key store or counters cannot be opened.
    """
    from turnout.storage.factory import open_ledger

    runtime = Runtime(config, catalog, environ)
    gate = gatekeeper or Gatekeeper.from_config(config.storage, config.keys, environ=environ)
    book = ledger if ledger is not None else open_ledger(config.storage)
    metrics = GatewayMetrics(
        lambda: ((d.name, d.breaker.state != "closed") for d in runtime.deployments.values())
    )
    handler = ChatHandler(runtime, gate, book, metrics)
    ready = {"started": False}

    async def models(request: Request) -> Response:
        try:
            principal = gate.authenticate(request.headers.get("authorization"))
        except TurnoutError as exc:
            return error_response(exc)
        allowed = principal.allowed_routes  # None = every route (also when keys are optional)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "turnout"}
            for name in runtime.model_ids()
            if allowed is None or name in allowed
        ]
        return _json({"object": "list", "data": data})

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        states = {d.name: d.breaker.state for d in runtime.deployments.values()}
        ok = ready["started"] and any(s != "open" for s in states.values())
        return _json({"ready": ok, "deployments": states}, 200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else "method_not_allowed"
        error = InvalidRequestError(
            f"{request.method} {request.url.path}: {exc.detail}",
            code=code,
            status_code=exc.status_code,
        )
        return error_response(error)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("user-agent",)
        )
        runtime.start(session)
        # Move start-up objects (catalog, routers, imported modules) out of the collector's
        # view: later collections scan only per-request garbage, which keeps GC pauses short.
        gc.collect()
        gc.freeze()
        ready["started"] = True
        try:
            yield
        finally:
            ready["started"] = False
            await session.close()
            book.close()
            await gate.aclose()

    app = _GatewayApp(
        handler,
        routes=[
            Route("/v1/chat/completions", handler.chat_completions, methods=["POST"]),
            Route("/chat/completions", handler.chat_completions, methods=["POST"]),
            Route("/v1/route", handler.route, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.ledger = book
    app.state.gatekeeper = gate
    app.state.metrics = metrics
    app.state.handler = handler
    return app
