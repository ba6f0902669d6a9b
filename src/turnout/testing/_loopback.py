"""What the loopback test servers share: a thread with its own event loop, HTTP/1.1 parsing.

The base of :class:`turnout.testing.upstream.UpstreamServer` (OpenAI-compatible) and
:class:`turnout.testing._vendor_server.VendorServer` (Anthropic, Gemini). Both listen on
127.0.0.1 only, parse requests with ``httptools`` (no framework, so a script can misbehave at
the byte level), and answer each request in order on its connection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any, Self

import httptools

__all__ = ["LoopbackServer", "RequestParsing", "response_head"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}


def response_head(status: int, headers: Mapping[str, str]) -> bytes:
    """The status line and header lines of an HTTP/1.1 response, blank line included."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RequestParsing(asyncio.Protocol):
    """``httptools`` callbacks collecting one request at a time.

    Subclasses set up their own state in ``__init__`` (after calling this one), implement
    ``connection_made`` and ``_received`` (called once per complete request).

    Attributes:
        transport: The connection, once made.
        url: The request target so far (bytes).
        headers: Header names lower-cased; a repeated header keeps its last value.
        body: The body pieces so far.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        self._received(method, self.url.decode("latin-1"), self.headers, b"".join(self.body))

    def _received(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(data)


class LoopbackServer:
    """A server on 127.0.0.1 that runs its own event loop in a daemon thread.

    Subclasses implement :meth:`_connection` (the protocol for one connection) and may set
    :attr:`_thread_name` and :attr:`_backlog`.

    Args:
        port: Port to bind; 0 picks a free one.
    """

    _thread_name = "turnout-loopback"
    _backlog = 100  # asyncio's default

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _connection(self) -> asyncio.Protocol:
        raise NotImplementedError

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep ``task`` (a connection's worker) until it ends; cancelled on :meth:`stop`."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def serve(self) -> None:
        """Bind and serve in the running loop until cancelled."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._connection, "127.0.0.1", self.port, backlog=self._backlog
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> Self:
        """Start in a background thread; returns once it is listening."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name=self._thread_name, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (open connections' workers are cancelled)."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
