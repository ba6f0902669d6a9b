"""The streaming relay: an ASGI response that passes upstream SSE events on as they arrive.

The executor hands over an :class:`~turnout.gateway.executor.OpenedStream` whose first content
delta has arrived; the relay then sends the response headers (so the decision headers name the
deployment that actually answers), the buffered events and the rest of the stream, one ASGI
message per event. It

* drops the upstream's final usage chunk (``"choices": []``) unless the client asked for it
  with ``stream_options.include_usage`` (turnout always asks the upstream);
* ends the stream with an in-band error event (``data: {"error": {...}}``, which the OpenAI
  SDK raises as ``APIError``) when the upstream fails after content was sent;
* watches for the client's disconnect and then cancels the upstream call (closing its
  connection), keeping what was produced so far for metering.

Whatever happens, ``finish`` is awaited once with the :class:`StreamOutcome`: before the
stream's last (empty) body message when the stream ends, or after a disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import orjson
from starlette.types import Receive, Scope, Send

from turnout.errors import ProviderError
from turnout.gateway.errors import stream_error_event
from turnout.gateway.executor import OpenedStream
from turnout.providers.base import StreamEvent
from turnout.types import Usage

__all__ = ["StreamOutcome", "StreamRelay"]

_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class StreamOutcome:
    """What a relayed stream produced.

    Attributes:
        usage: Usage the upstream reported, if it did.
        texts: Content and tool-call argument text sent (to count tokens without usage).
        first_delta_at: ``time.perf_counter()`` when the first delta was sent.
        done: The upstream ended normally (``[DONE]``).
        error: The upstream failure after content was sent, if any.
        disconnected: The client went away before the end.
    """

    usage: Usage | None = None
    texts: list[str] = field(default_factory=list)
    first_delta_at: float | None = None
    done: bool = False
    error: ProviderError | None = None
    disconnected: bool = False


def _delta_texts(event: StreamEvent, out: list[str]) -> None:
    chunk = event.chunk
    choices = chunk.get("choices") if chunk is not None else None
    if not isinstance(choices, list):
        return
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for key in ("content", "refusal", "reasoning_content"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                out.append(text)
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                for key in ("name", "arguments"):
                    text = fn.get(key)
                    if isinstance(text, str) and text:
                        out.append(text)


class StreamRelay:
    """ASGI response relaying an opened upstream stream (see the module docstring).

    Args:
        opened: The stream, positioned after its first delta.
        headers: Response headers (decision headers included), lower-case names.
        include_usage: Whether the client asked for the final usage chunk.
        finish: Awaited once at the end with the outcome (metering, ledger, settle).
    """

    def __init__(
        self,
        opened: OpenedStream,
        headers: Mapping[str, str],
        *,
        include_usage: bool,
        finish: Callable[[StreamOutcome], Awaitable[None]],
    ) -> None:
        self.opened = opened
        self.headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        self.include_usage = include_usage
        self.finish = finish
        self.outcome = StreamOutcome()
        self._finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay until the upstream ends, fails, or the client disconnects."""
        relay = asyncio.ensure_future(self._relay(send))
        watch = asyncio.ensure_future(self._watch(receive))
        try:
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not relay.done():
                self.outcome.disconnected = True
                relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        finally:
            watch.cancel()
            if not relay.done():
                relay.cancel()
            await self._finish_once()

    async def _finish_once(self) -> None:
        if not self._finished:
            self._finished = True
            # Shielded: a disconnect arriving now must not cut metering and recording short.
            await asyncio.shield(self.finish(self.outcome))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def _emit(self, send: Send, event: StreamEvent) -> None:
        outcome = self.outcome
        if event.usage is not None:
            outcome.usage = event.usage
        if event.has_delta:
            _delta_texts(event, outcome.texts)
            if outcome.first_delta_at is None:
                outcome.first_delta_at = time.perf_counter()
        if event.done:
            outcome.done = True
            await self._finish_once()  # recorded before the client can see the end
            data = event.raw or _DONE
        elif event.usage_only and not self.include_usage:
            return
        else:
            data = event.raw or b"data: " + orjson.dumps(event.chunk) + b"\n\n"
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _relay(self, send: Send) -> None:
        opened = self.opened
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        error_event = b""
        try:
            for event in opened.buffered:
                await self._emit(send, event)
            if not opened.ended and not self.outcome.done:
                async for event in opened.events:
                    await self._emit(send, event)
                    if event.done:
                        break
        except ProviderError as exc:
            self.outcome.error = exc
            error_event = stream_error_event(exc)
        finally:
            await opened.events.aclose()  # type: ignore[attr-defined]
        # Meter and record before the stream's last message (and before an error event, on
        # which the client stops reading), so a client that saw the end can rely on the row.
        closing = self.outcome.done
        await self._finish_once()
        if error_event:
            await send({"type": "http.response.body", "body": error_event, "more_body": True})
        elif not closing:  # an adapter that ended without a done event: end it for the client
            await send({"type": "http.response.body", "body": _DONE, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
