"""Run the demo's servers (replay upstreams and the gateway) on a background event loop.

The upstreams (aiohttp) and the gateway (its ASGI app under uvicorn) share one event loop in
one background thread, so the caller's own loop (the ``openai`` client) stays separate, as it
would be in another process. Everything binds 127.0.0.1 on ports the OS chooses.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from turnout.demo.replay import ReplayUpstream

__all__ = ["ServerThread"]

T = TypeVar("T")


class ServerThread:
    """A background thread running an event loop that hosts the demo's servers.

    Use as a context manager: ``start_upstreams`` then ``start_asgi``; leaving the block stops
    the gateway first (so its ledger is flushed and closed by its own shutdown) and then the
    upstreams.

    Raises:
        RuntimeError: If a server does not start within ``start_timeout_s``.
    """

    def __init__(self, start_timeout_s: float = 30.0) -> None:
        self.start_timeout_s = start_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="turnout-demo-servers", daemon=True)
        self._upstreams: list[ReplayUpstream] = []
        self._uvicorn: Any = None
        self._uvicorn_done: Future[Any] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout_s: float) -> T:
        """Run ``factory()`` on the server loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(timeout_s)

    def start_upstreams(self, upstreams: Sequence[ReplayUpstream]) -> None:
        """Start every replay upstream (each learns its port)."""

        async def start_all() -> None:
            for upstream in upstreams:
                await upstream.start()

        self.call(start_all, self.start_timeout_s)
        self._upstreams.extend(upstreams)

    def start_asgi(self, app_factory: Callable[[], Any]) -> str:
        """Build the ASGI app on the server loop and serve it under uvicorn.

        Args:
            app_factory: Called on the server thread; returns the ASGI app.

        Returns:
            The base URL, ``http://127.0.0.1:<port>``.
        """
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])

        async def build() -> Any:
            return app_factory()

        app = self.call(build, self.start_timeout_s)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        self._uvicorn = server
        self._uvicorn_done = asyncio.run_coroutine_threadsafe(
            server.serve(sockets=[sock]), self._loop
        )
        waited = 0.0
        while not server.started:
            if self._uvicorn_done.done():
                self._uvicorn_done.result()  # raises the start-up error
                raise RuntimeError("the gateway stopped during start-up")
            if waited > self.start_timeout_s:
                raise RuntimeError(f"the gateway did not start within {self.start_timeout_s} s")
            threading.Event().wait(0.02)
            waited += 0.02
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop the gateway (its lifespan shutdown runs), then the upstreams, then the loop."""
        if not self._thread.is_alive():
            return
        if self._uvicorn is not None and self._uvicorn_done is not None:
            self._uvicorn.should_exit = True
            try:
                self._uvicorn_done.result(timeout=30)
            except Exception:
                if self._uvicorn.started:
                    raise
                # It failed during start-up: start_asgi has already raised that error.
            self._uvicorn = None
        upstreams, self._upstreams = self._upstreams, []

        async def stop_all() -> None:
            for upstream in upstreams:
                await upstream.stop()

        self.call(stop_all, 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
