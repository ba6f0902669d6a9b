"""A scriptable loopback OpenAI-compatible upstream, for tests, the demo and benchmarks.

It listens on 127.0.0.1 only and plays a queue of scripted :class:`Reply` objects, one per
request; when the queue is empty it answers at once with a small chat completion (or stream).
It records every request it received, headers included, so tests can assert what left the
gateway. Written on :mod:`asyncio` and ``httptools`` (no framework) so a script can do what a
misbehaving server does: stall before or after the headers, drop the connection mid-stream,
send an error event inside a stream.

Use it from tests (it runs its own event loop in a thread)::

    with UpstreamServer() as up:
        up.script(Reply.error(429, headers={"retry-after": "30"}), Reply.ok("hello"))
        ... point a deployment at up.base_url ...
        assert len(up.requests) == 2

or from a shell, for benchmarks: ``python -m turnout.testing.upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import orjson

from turnout.testing._loopback import LoopbackServer, RequestParsing, response_head

__all__ = ["RecordedRequest", "Reply", "UpstreamServer", "completion_body", "content_chunk"]

End = Literal["done", "drop", "stall", "close"]


def completion_body(model: str, content: str, usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body with one assistant message."""
    body: dict[str, Any] = {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return body


def content_chunk(
    model: str, delta: Mapping[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """An OpenAI ``chat.completion.chunk`` with one choice carrying ``delta``."""
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }


DEFAULT_USAGE: dict[str, Any] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the class methods.

    Attributes:
        status: HTTP status.
        body: JSON body (non-streaming) or ``None`` for the default completion.
        headers: Extra response headers.
        delay_s: Wait before sending anything.
        stall: ``"before_headers"`` (accept, never answer) or ``"after_headers"``.
        drop: Close the connection instead of answering.
        events: Stream events (dicts are sent as ``data: <json>``; bytes as they are);
            ``None`` for a non-streaming reply.
        event_delay_s: Wait between stream events.
        end: After the events: ``"done"`` (``data: [DONE]``), ``"close"`` (end the body
            without ``[DONE]``), ``"drop"`` (abort the connection) or ``"stall"``.
        usage: Usage reported (non-streaming body, or a final usage chunk when the request
            asked for ``stream_options.include_usage``); ``None`` reports none.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    stall: Literal["before_headers", "after_headers"] | None = None
    drop: bool = False
    events: Sequence[Mapping[str, Any] | bytes] | None = None
    event_delay_s: float = 0.0
    end: End = "done"
    usage: Mapping[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))
    content: str = "ok"

    @classmethod
    def ok(
        cls,
        content: str = "ok",
        *,
        usage: Mapping[str, Any] | None = DEFAULT_USAGE,
        delay_s: float = 0.0,
    ) -> Reply:
        """A 200 answer (streamed as role, content and usage chunks if the request streams)."""
        return cls(content=content, usage=usage, delay_s=delay_s)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted error",
        *,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> Reply:
        """An OpenAI-shaped error answer with ``status``."""
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def stalled(cls, after_headers: bool = False) -> Reply:
        """Accept the request and never answer (or send headers, then nothing)."""
        return cls(stall="after_headers" if after_headers else "before_headers")

    @classmethod
    def dropped(cls) -> Reply:
        """Close the connection without answering."""
        return cls(drop=True)

    @classmethod
    def stream(
        cls,
        events: Sequence[Mapping[str, Any] | bytes],
        *,
        end: End = "done",
        event_delay_s: float = 0.0,
        usage: Mapping[str, Any] | None = DEFAULT_USAGE,
    ) -> Reply:
        """A streamed answer playing ``events`` then ``end``."""
        return cls(events=list(events), end=end, event_delay_s=event_delay_s, usage=usage)


@dataclass(frozen=True)
class RecordedRequest:
    """What the upstream received.

    Attributes:
        method: HTTP method.
        path: Path with query string.
        headers: Header names lower-cased; repeated headers joined by ``", "``.
        body: Raw body bytes.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class _Connection(RequestParsing):
    def __init__(self, server: UpstreamServer) -> None:
        super().__init__()
        self.server = server
        self.queue: asyncio.Queue[RecordedRequest | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.answering = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.worker = asyncio.get_running_loop().create_task(self._serve())
        self.server._track(self.worker)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answering:
            self.server.cut_off += 1
        if self.worker is not None:
            self.worker.cancel()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def _received(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.queue.put_nowait(RecordedRequest(method, path, headers, body))

    async def _serve(self) -> None:
        while True:
            request = await self.queue.get()
            if request is None:
                return
            if self.server.record:
                self.server.requests.append(request)
            self.answering = True
            await self._answer(request, self.server._next_reply())
            self.answering = False

    async def _answer(self, request: RecordedRequest, reply: Reply) -> None:
        assert self.transport is not None
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.drop:
            self.answering = False
            self.transport.abort()
            return
        if reply.stall == "before_headers":
            await asyncio.sleep(3600)
        try:
            wants = orjson.loads(request.body) if request.body else {}
        except orjson.JSONDecodeError:
            wants = {}
        if not isinstance(wants, dict):
            wants = {}
        model = str(wants.get("model", "upstream-model"))
        streaming = bool(wants.get("stream")) and reply.status < 400 and reply.body is None
        if reply.stall == "after_headers":
            self._write(
                response_head(
                    reply.status,
                    {
                        "content-type": "text/event-stream",
                        "transfer-encoding": "chunked",
                        **reply.headers,
                    },
                )
            )
            await asyncio.sleep(3600)
        if not streaming:
            body = (
                reply.body
                if reply.body is not None
                else completion_body(model, reply.content, reply.usage)
            )
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            head = {
                "content-type": "application/json",
                "content-length": str(len(data)),
                **reply.headers,
            }
            self._write(response_head(reply.status, head) + data)
            return
        await self._stream(wants, model, reply)

    async def _stream(self, wants: Mapping[str, Any], model: str, reply: Reply) -> None:
        assert self.transport is not None
        events: list[Mapping[str, Any] | bytes]
        if reply.events is not None:
            events = list(reply.events)
        else:
            events = [
                content_chunk(model, {"role": "assistant", "content": ""}),
                content_chunk(model, {"content": reply.content}),
                content_chunk(model, {}, "stop"),
            ]
        options = wants.get("stream_options")
        if (
            reply.end == "done"
            and reply.usage is not None
            and isinstance(options, dict)
            and options.get("include_usage")
        ):
            events.append(
                {
                    "id": "chatcmpl-upstream",
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000,
                    "model": model,
                    "choices": [],
                    "usage": dict(reply.usage),
                }
            )
        head = {
            "content-type": "text/event-stream",
            "transfer-encoding": "chunked",
            **reply.headers,
        }
        self._write(response_head(reply.status, head))
        for i, event in enumerate(events):
            if i and reply.event_delay_s:
                await asyncio.sleep(reply.event_delay_s)
            data = event if isinstance(event, bytes) else b"data: " + orjson.dumps(event) + b"\n\n"
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
        if reply.end == "drop":
            await asyncio.sleep(0.01)
            self.answering = False
            self.transport.abort()
            return
        if reply.end == "stall":
            await asyncio.sleep(3600)
        if reply.end == "done":
            done = b"data: [DONE]\n\n"
            self._write(b"%x\r\n%s\r\n" % (len(done), done))
        self._write(b"0\r\n\r\n")


class UpstreamServer(LoopbackServer):
    """A scriptable OpenAI-compatible server on 127.0.0.1 running in its own thread.

    Args:
        port: Port to bind; 0 picks a free one.
        record: Keep every request in :attr:`requests` (turn off for long benchmarks).

    Attributes:
        requests: Every request received, in order.
        cut_off: Answers the client abandoned (connection closed before the answer ended).
        base_url: ``http://127.0.0.1:<port>/v1`` once started.
    """

    _thread_name = "turnout-upstream"
    _backlog = 1024

    def __init__(self, port: int = 0, *, record: bool = True) -> None:
        super().__init__(port)
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.cut_off = 0
        self._replies: deque[Reply] = deque()
        self._default = Reply.ok()
        self._lock = threading.Lock()

    def _connection(self) -> _Connection:
        return _Connection(self)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply, default: Reply | None = None) -> UpstreamServer:
        """Queue ``replies`` for the next requests; ``default`` answers once they run out."""
        with self._lock:
            self._replies.extend(replies)
            if default is not None:
                self._default = default
        return self

    def reset(self) -> None:
        """Forget queued replies and recorded requests; restore the default answer."""
        with self._lock:
            self._replies.clear()
            self._default = Reply.ok()
            self.requests.clear()
            self.cut_off = 0

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self._default


def main() -> None:
    """Run a default (instantly answering) upstream until interrupted."""
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible upstream.")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    server = UpstreamServer(args.port, record=False)

    async def run() -> None:
        await server.serve()
        print(f"upstream listening on {server.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
