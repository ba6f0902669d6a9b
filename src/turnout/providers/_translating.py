"""Transport shared by the adapters that translate to a vendor wire format (Anthropic, Gemini).

One POST per call on the gateway's pooled :class:`aiohttp.ClientSession`, timeouts from
:class:`~turnout.providers.base.Deadline`, the vendor's own error mapping, and streams parsed
with the incremental :class:`~turnout.providers.sse.SSEParser` and translated event by event,
so each OpenAI chunk is yielded as soon as its upstream event is complete.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import orjson

from turnout.errors import ProviderConnectionError, ProviderError
from turnout.providers._http import (
    TRANSPORT_ERRORS,
    connect_timeout,
    end_response,
    merged_headers,
    parse_body,
    post_whole,
    read_error_body,
)
from turnout.providers.base import Completion, Deadline, Endpoint, StreamEvent, error_from_exception
from turnout.providers.sse import SSEEvent, SSEParser
from turnout.types import Usage

__all__ = ["StreamTranslator", "TranslatingProvider"]


class StreamTranslator(Protocol):
    """Vendor SSE events in, OpenAI ``chat.completion.chunk`` dicts out."""

    @property
    def done(self) -> bool:
        """Whether the vendor's end marker (or final reason) was seen."""
        ...

    @property
    def usage_reported(self) -> bool:
        """Whether the vendor reported usage in the stream."""
        ...

    @property
    def usage(self) -> Usage:
        """Normalised usage so far."""
        ...

    def feed_event(self, event: SSEEvent) -> list[dict[str, Any]]:
        """Translate one complete SSE event (raises ``ProviderError`` for error events)."""
        ...

    def finish(self) -> list[dict[str, Any]]:
        """The finishing chunk and the usage chunk, once the upstream stream is complete."""
        ...


def _has_delta(chunk: Mapping[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


class TranslatingProvider:
    """Base of adapters that translate OpenAI bodies to a vendor format and back.

    Subclasses set :attr:`name` and implement the five hooks (``_url``, ``_wire_body``,
    ``_from_wire``, ``_error``, ``_translator``).

    Args:
        endpoint: The deployment to call.
        session: The gateway's pooled HTTP client.
        system_role: Whether the model accepts a system prompt (``False`` moves system text
            into the first user turn); ``None`` takes ``endpoint.system_role``.
    """

    name = "translating"

    def __init__(
        self,
        endpoint: Endpoint,
        session: aiohttp.ClientSession,
        *,
        system_role: bool | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.session = session
        self.system_role = endpoint.system_role if system_role is None else system_role
        self._headers: dict[str, str] = {"content-type": "application/json"}
        self._timeout = connect_timeout(endpoint)

    # -- hooks ---------------------------------------------------------------------------
    def _url(self, *, stream: bool) -> str:
        raise NotImplementedError

    def _wire_body(self, body: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _from_wire(self, response: Mapping[str, Any], created: int, call_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _usage(self, response: Mapping[str, Any]) -> Usage | None:
        raise NotImplementedError

    def _error(self, status: int | None, body: object, retry_after: str | None) -> ProviderError:
        raise NotImplementedError

    def _translator(self, created: int, call_id: str) -> StreamTranslator:
        raise NotImplementedError

    # -- transport -----------------------------------------------------------------------
    def _request_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        return merged_headers(headers, self._headers)

    async def complete(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Completion:
        """Call the vendor without streaming and translate the answer (see ``Provider``).

        Raises:
            InvalidRequestError: If the body cannot be expressed in the vendor's format
                (before anything is sent).
            ProviderError: Vendor errors mapped by type and status, transport errors,
                timeouts, or a 2xx answer that is not a JSON object.
        """
        data = orjson.dumps(self._wire_body(body, stream=False))
        status, raw, resp_headers = await post_whole(
            self.session,
            self._url(stream=False),
            data=data,
            headers=self._request_headers(headers),
            timeout=self._timeout,
            endpoint=self.endpoint,
            provider=self.name,
        )
        parsed = parse_body(raw)
        if status >= 400:
            raise self._error(status, parsed, resp_headers.get("retry-after"))
        if not isinstance(parsed, dict):
            raise ProviderError(
                f"{self.name} answered HTTP {status} with a body that is not a JSON object",
                provider=self.name,
                status_code=status,
                retryable=True,
            )
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        return Completion(
            self._from_wire(parsed, int(time.time()), call_id), self._usage(parsed), None
        )

    async def stream(
        self, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[StreamEvent]:
        """Call the vendor with streaming; yield OpenAI chunks as events arrive.

        Raises:
            InvalidRequestError: If the body cannot be expressed in the vendor's format.
            ProviderError: Vendor errors (HTTP or an error event inside the stream), timeouts,
                a dropped connection or a stream that ends before the vendor's end marker
                (:class:`~turnout.errors.ProviderConnectionError`).
        """
        data = orjson.dumps(self._wire_body(body, stream=True))
        translator = self._translator(int(time.time()), f"call_{uuid.uuid4().hex[:24]}")
        deadline = Deadline(self.endpoint.timeouts)
        resp: aiohttp.ClientResponse | None = None
        finished = False
        try:
            async with asyncio.timeout_at(deadline.first_byte_at()):
                resp = await self.session.post(
                    self._url(stream=True),
                    data=data,
                    headers=self._request_headers(headers),
                    timeout=self._timeout,
                )
            if resp.status >= 400:
                error_body = await read_error_body(resp, deadline)
                raise self._error(resp.status, error_body, resp.headers.get("retry-after"))
            parser = SSEParser()
            at_eof = False
            while not at_eof:  # read to the end so that the pooled connection can be reused
                async with deadline.read():
                    piece = await resp.content.readany()
                at_eof = not piece
                for event in parser.feed(piece) if piece else parser.flush():
                    for chunk in translator.feed_event(event):
                        yield StreamEvent(chunk, has_delta=_has_delta(chunk))
            if not translator.done:
                raise ProviderConnectionError(
                    f"the {self.name} stream ended before its end marker", provider=self.name
                )
            finished = True
            *chunks, usage_chunk = translator.finish()
            for chunk in chunks:
                yield StreamEvent(chunk, has_delta=_has_delta(chunk))
            usage = translator.usage if translator.usage_reported else None
            yield StreamEvent(usage_chunk, usage=usage, usage_only=True)
            yield StreamEvent(None, done=True)
        except TRANSPORT_ERRORS as exc:
            raise error_from_exception(self.name, exc, deadline.phase) from exc
        finally:
            end_response(resp, finished)
