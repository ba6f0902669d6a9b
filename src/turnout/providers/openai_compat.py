"""The adapter for every OpenAI-compatible upstream (OpenAI, Azure OpenAI, vLLM, Ollama, ...).

Non-streaming answers are returned as the upstream's own bytes (plus the parsed body and
normalised usage); streamed answers relay each upstream SSE event's bytes unchanged, parsed
only to find content deltas, usage and in-band errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

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
from turnout.providers.base import (
    Completion,
    Deadline,
    Endpoint,
    StreamEvent,
    error_from_exception,
    error_from_status,
)
from turnout.providers.sse import SSEEvent, SSEParser
from turnout.types import Usage

__all__ = ["OpenAICompatProvider", "usage_from_openai"]


def _int(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def usage_from_openai(usage: object) -> Usage | None:
    """Normalise an OpenAI ``usage`` object into :class:`turnout.types.Usage`.

    OpenAI's ``prompt_tokens`` already include ``prompt_tokens_details.cached_tokens`` and
    ``completion_tokens`` already include ``completion_tokens_details.reasoning_tokens``
    (https://platform.openai.com/docs/api-reference/chat/object); DeepSeek reports cache hits
    as ``prompt_cache_hit_tokens``.

    Args:
        usage: The ``usage`` value of a response or chunk (a dict, or ``None``).

    Returns:
        The normalised usage, or ``None`` if ``usage`` is not a dict with token counts.
    """
    if not isinstance(usage, Mapping) or (
        "prompt_tokens" not in usage and "completion_tokens" not in usage
    ):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, Mapping) else 0
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))
    completion_details = usage.get("completion_tokens_details")
    reasoning = (
        _int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, Mapping)
        else 0
    )
    prompt = _int(usage.get("prompt_tokens"))
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=min(cached, prompt),
        output_tokens=_int(usage.get("completion_tokens")),
        reasoning_tokens=reasoning,
    )


def _has_delta(choices: object) -> bool:
    if not isinstance(choices, list):
        return False
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("function_call")
            or delta.get("refusal")
            or delta.get("reasoning_content")
        ):
            return True
    return False


class OpenAICompatProvider:
    """Adapter for OpenAI's chat-completions wire format.

    Azure OpenAI (``endpoint.provider == "azure"``) uses the deployment URL form
    ``{base_url}/openai/deployments/{model}/chat/completions?api-version=...`` and the
    ``api-key`` header; everything else posts to ``{base_url}/chat/completions`` with
    ``Authorization: Bearer``.

    Args:
        endpoint: The deployment to call.
        session: The gateway's pooled HTTP client.
    """

    name = "openai"

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.session = session
        base = endpoint.base_url.rstrip("/")
        headers = {"content-type": "application/json", **endpoint.headers}
        if endpoint.provider == "azure":
            self.url = f"{base}/openai/deployments/{endpoint.model}/chat/completions"
            if endpoint.api_version:
                self.url += f"?api-version={endpoint.api_version}"
            if endpoint.api_key:
                headers["api-key"] = endpoint.api_key
        else:
            self.url = f"{base}/chat/completions"
            if endpoint.api_key:
                headers["authorization"] = f"Bearer {endpoint.api_key}"
        self._headers = headers
        self._timeout = connect_timeout(endpoint)

    def _wire(self, body: Mapping[str, Any], *, stream: bool) -> bytes:
        wire = dict(body)
        wire["model"] = self.endpoint.model
        if stream:
            wire["stream"] = True
            options = wire.get("stream_options")
            wire["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        else:
            wire.pop("stream", None)
            wire.pop("stream_options", None)
        return orjson.dumps(wire)

    def _request_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        return merged_headers(headers, self._headers)

    async def complete(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Completion:
        """Call ``/chat/completions`` without streaming (see :class:`Provider`).

        Raises:
            ProviderError: HTTP errors mapped by status, transport errors, timeouts, or a
                2xx answer that is not a JSON object with a non-empty ``choices`` array
                (retryable).
        """
        status, raw, resp_headers = await post_whole(
            self.session,
            self.url,
            data=self._wire(body, stream=False),
            headers=self._request_headers(headers),
            timeout=self._timeout,
            endpoint=self.endpoint,
            provider=self.name,
        )
        if status >= 400:
            raise error_from_status(self.name, status, parse_body(raw), resp_headers)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ProviderError(
                f"upstream answered HTTP {status} with a body that is not a JSON object",
                provider=self.name,
                status_code=status,
                retryable=True,
            )
        choices = parsed.get("choices")
        if not (
            isinstance(choices, list) and choices and all(isinstance(c, dict) for c in choices)
        ):
            raise ProviderError(
                f"upstream answered HTTP {status} without a non-empty `choices` array: a "
                "malformed success, treated as a retryable upstream error",
                provider=self.name,
                status_code=status,
                retryable=True,
            )
        return Completion(parsed, usage_from_openai(parsed.get("usage")), raw)

    async def stream(
        self, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[StreamEvent]:
        """Call ``/chat/completions`` with ``stream: true``; relay events (see :class:`Provider`).

        Raises:
            ProviderError: HTTP errors mapped by status; an in-band error event (retryable);
                timeouts (first byte, idle gap, total); a connection dropped or a stream that
                ends without ``[DONE]`` (:class:`ProviderConnectionError`).
        """
        deadline = Deadline(self.endpoint.timeouts)
        resp: aiohttp.ClientResponse | None = None
        finished = False
        try:
            async with asyncio.timeout_at(deadline.first_byte_at()):
                resp = await self.session.post(
                    self.url,
                    data=self._wire(body, stream=True),
                    headers=self._request_headers(headers),
                    timeout=self._timeout,
                )
            if resp.status >= 400:
                error_body = await read_error_body(resp, deadline)
                raise error_from_status(self.name, resp.status, error_body, resp.headers)
            parser = SSEParser()
            while not finished:
                async with deadline.read():
                    piece = await resp.content.readany()
                events = parser.feed(piece) if piece else parser.flush()
                for event in events:
                    item = self._event(event)
                    finished = item.done
                    yield item
                    if finished:
                        break
                if not piece and not finished:
                    raise ProviderConnectionError(
                        "the upstream stream ended without [DONE]", provider=self.name
                    )
        except TRANSPORT_ERRORS as exc:
            raise error_from_exception(self.name, exc, deadline.phase) from exc
        finally:
            end_response(resp, finished)

    def _event(self, event: SSEEvent) -> StreamEvent:
        if event.data == b"[DONE]":
            return StreamEvent(None, raw=event.raw, done=True)
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                "the upstream sent an SSE event that is not JSON", provider=self.name
            ) from exc
        if not isinstance(chunk, dict):
            raise ProviderError(
                "the upstream sent an SSE event that is not an object", provider=self.name
            )
        if chunk.get("error") or event.event == "error":
            err = chunk.get("error", chunk)
            message = err.get("message") if isinstance(err, dict) else None
            raise ProviderError(
                f"the upstream sent an error event: {message or 'no message'}",
                provider=self.name,
                body=chunk,
                retryable=True,
            )
        choices = chunk.get("choices")
        usage = usage_from_openai(chunk.get("usage"))
        return StreamEvent(
            chunk,
            raw=event.raw,
            has_delta=_has_delta(choices),
            usage=usage,
            usage_only=usage is not None and not choices,
        )
