"""A loopback HTTP/1.1 server that plays scripted vendor answers, byte for byte.

The base of :mod:`turnout.testing.anthropic_upstream` and :mod:`turnout.testing.gemini_upstream`.
It listens on 127.0.0.1 only, runs its own event loop in a thread, records every request, and
answers each with the next scripted item: a :class:`WireReply` (exact status, headers and
body bytes, or stream pieces each written in its own chunked-encoding chunk, with a pause
between them so that they reach the client in separate reads), or an :class:`Answer` that
renders a :class:`WireReply` for the request it answers (streaming or not).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

import orjson

from turnout.testing._loopback import LoopbackServer, RequestParsing, response_head

__all__ = ["Answer", "RecordedRequest", "VendorServer", "WireReply", "serve_forever", "split_bytes"]


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received.

    Attributes:
        method: HTTP method.
        path: Path with query string.
        headers: Header names lower-cased.
        body: Raw body bytes.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``{}`` for an empty body)."""
        return orjson.loads(self.body) if self.body else {}


@dataclass(frozen=True)
class WireReply:
    """Exact bytes to answer with.

    Attributes:
        status: HTTP status.
        headers: Response headers (``content-length`` / ``transfer-encoding`` are added).
        body: The whole body, for a non-streaming reply.
        pieces: Stream body pieces, each sent as its own chunk (``None`` when ``body`` is set).
        piece_delay_s: Pause between pieces, seconds.
        end: ``"close"`` ends the chunked body normally; ``"drop"`` aborts the connection.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    pieces: Sequence[bytes] | None = None
    piece_delay_s: float = 0.0
    end: Literal["close", "drop"] = "close"

    @classmethod
    def json(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> WireReply:
        """A JSON answer with ``status``."""
        return cls(
            status=status,
            headers={"content-type": "application/json", **(headers or {})},
            body=orjson.dumps(body),
        )


class Answer(Protocol):
    """A scripted answer that renders itself for the request it answers."""

    def render(self, request: RecordedRequest) -> WireReply:
        """The bytes to send for ``request``."""
        ...


def split_bytes(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into pieces of ``size`` bytes (UTF-8 characters may be split)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class _Connection(RequestParsing):
    def __init__(self, server: VendorServer) -> None:
        super().__init__()
        self.server = server
        self.queue: asyncio.Queue[RecordedRequest] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.worker = asyncio.get_running_loop().create_task(self._serve())
        self.server._track(self.worker)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _received(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.queue.put_nowait(RecordedRequest(method, path, headers, body))

    async def _serve(self) -> None:
        while True:
            request = await self.queue.get()
            if self.server.record:
                self.server.requests.append(request)
            item = self.server._next()
            reply = item if isinstance(item, WireReply) else item.render(request)
            await self._answer(reply)

    async def _answer(self, reply: WireReply) -> None:
        assert self.transport is not None
        headers = dict(reply.headers)
        if reply.body is not None:
            headers["content-length"] = str(len(reply.body))
        else:
            headers["transfer-encoding"] = "chunked"
        head = response_head(reply.status, headers)
        if reply.body is not None:
            self._write(head + reply.body)
            return
        self._write(head)
        for i, piece in enumerate(reply.pieces or ()):
            if i and reply.piece_delay_s:
                await asyncio.sleep(reply.piece_delay_s)
            if piece:
                self._write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if reply.end == "drop":
            await asyncio.sleep(0.01)
            self.transport.abort()
            return
        self._write(b"0\r\n\r\n")


class VendorServer(LoopbackServer):
    """A scripted vendor API on 127.0.0.1, in its own thread.

    Args:
        default: What to answer once the script has run out.
        record: Keep every request in :attr:`requests` (turn off for benchmarks).

    Attributes:
        requests: Every request received, in order.
        port: The bound port once started.
    """

    _thread_name = "turnout-vendor-upstream"

    def __init__(self, default: Answer | WireReply, *, record: bool = True) -> None:
        super().__init__()
        self.record = record
        self.requests: list[RecordedRequest] = []
        self._default = default
        self._script: deque[Answer | WireReply] = deque()
        self._lock = threading.Lock()

    def _connection(self) -> _Connection:
        return _Connection(self)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *items: Answer | WireReply) -> Self:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._script.extend(items)
        return self

    def reset(self) -> None:
        """Forget queued answers and recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def _next(self) -> Answer | WireReply:
        with self._lock:
            return self._script.popleft() if self._script else self._default


def serve_forever(server: VendorServer, port: int) -> None:
    """Run ``server`` on ``port`` until interrupted, printing its base URL (for benchmarks)."""
    server.port = port
    server.start()
    print(f"listening on {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
