r"""The provider seam: one adapter per upstream wire format, behind one small protocol.

A provider adapter is built once per deployment, from an :class:`Endpoint` (where to call,
which key, which upstream model, what timeouts) and the gateway's one pooled
:class:`aiohttp.ClientSession` (chosen over ``httpx.AsyncClient`` by measurement: about 170 us
against 740 us per sequential loopback request on the target machine)::

    provider = PROVIDERS[endpoint.provider](endpoint, session)
    completion = await provider.complete(body, headers)          # non-streaming
    async for event in provider.stream(body, headers):           # streaming
        ...

Contract every adapter keeps:

* ``body`` is the caller's validated OpenAI chat-completions body (a dict; never mutate it).
  The adapter sets the upstream ``model`` from ``endpoint.model`` and translates the rest.
  ``headers`` are already allow-listed by the gateway (no caller credentials); the adapter adds
  its own auth from ``endpoint.api_key`` and ``endpoint.headers``.
* :meth:`Provider.complete` returns a :class:`Completion`: the OpenAI-shaped response body and
  the usage normalised into :class:`turnout.types.Usage` (``None`` if the upstream gave none).
* :meth:`Provider.stream` yields :class:`StreamEvent`\ s. OpenAI-compatible upstreams relay the
  upstream SSE bytes as they arrive (``raw``) and parse just enough (``chunk``) to tell content
  deltas and usage apart; translating adapters (Anthropic, Gemini) set ``raw=None`` and yield
  OpenAI ``chat.completion.chunk`` dicts in ``chunk``, which the gateway serialises. The
  adapter always asks its upstream for usage; the gateway decides what the client sees.
* Every failure leaves the adapter as a :class:`turnout.errors.ProviderError` subclass: HTTP
  statuses through :func:`error_from_status`, transport errors through
  :func:`error_from_exception`, timeouts as :class:`~turnout.errors.ProviderTimeout`. An error
  event inside a stream raises :class:`~turnout.errors.ProviderError` (retryable) from the
  iterator. Nothing else escapes (``asyncio.CancelledError`` excepted).
* Timeouts (:class:`Timeouts`) are enforced by the adapter with :class:`Deadline`: connect,
  time to first byte (response headers), idle gap between body reads, and total.

Registering an adapter: add its class to ``turnout.providers.PROVIDERS`` under the name the
config's ``deployments.<name>.provider`` uses.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import aiohttp

from turnout.errors import (
    AuthFailed,
    ContextTooLong,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamBadRequest,
)
from turnout.types import Usage

__all__ = [
    "RETRYABLE_STATUS",
    "Completion",
    "Deadline",
    "Endpoint",
    "Provider",
    "ProviderFactory",
    "StreamEvent",
    "Timeouts",
    "error_from_exception",
    "error_from_status",
    "parse_retry_after",
]

#: HTTP statuses that retry, fall back and count against the circuit breaker.
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-deployment timeouts, all in seconds.

    Attributes:
        connect_s: To open the TCP (and TLS) connection.
        first_byte_s: From sending the request to receiving the response headers.
        idle_s: Longest gap between two body reads (stream chunks).
        total_s: The whole call, from start to the last byte.
    """

    connect_s: float = 5.0
    first_byte_s: float = 60.0
    idle_s: float = 30.0
    total_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to call one deployment (resolved from the config at start-up).

    Attributes:
        name: Deployment name in the config (for errors, metrics and the ledger).
        provider: Adapter name, a key of ``turnout.providers.PROVIDERS``.
        model: Model name as the upstream spells it (may differ from the catalog id).
        base_url: Upstream base URL without a trailing slash, e.g. ``https://api.openai.com/v1``.
        api_key: The secret key read from the environment variable the config names, or
            ``None`` for keyless upstreams (local vLLM, Ollama). Never logged or shown.
        timeouts: Connect, first-byte, idle and total timeouts.
        headers: Extra static headers the operator configured for this upstream.
        api_version: Azure OpenAI's ``api-version`` query value, if the upstream needs one.
        system_role: Whether the model accepts a system prompt; ``False`` makes translating
            adapters (Anthropic, Gemini) put system text first in the first user turn.
    """

    name: str
    provider: str
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeouts: Timeouts = Timeouts()
    headers: Mapping[str, str] = field(default_factory=dict)
    api_version: str | None = None
    system_role: bool = True


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished non-streaming call.

    Attributes:
        body: The OpenAI-shaped ``chat.completion`` response.
        usage: Usage normalised into turnout's form, or ``None`` if the upstream reported none
            (the gateway then counts tokens and marks the cost estimated).
        raw: The exact response bytes when ``body`` is the upstream's own JSON (relayed as is,
            saving a re-serialisation); ``None`` for translating adapters.
    """

    body: dict[str, Any]
    usage: Usage | None
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    r"""One server-sent event of a streamed answer.

    Attributes:
        chunk: The event's OpenAI ``chat.completion.chunk`` as a dict; ``None`` only when
            ``done``.
        raw: The exact SSE bytes to relay (``b"data: ...\n\n"``) for OpenAI-compatible
            upstreams; ``None`` when the gateway must serialise ``chunk`` itself.
        has_delta: Whether the chunk carries content, refusal or tool-call deltas (after the
            first such event reaches the client, fallback is no longer possible).
        usage: Normalised usage if this chunk reports it.
        usage_only: Whether this is the final usage chunk (``"choices": []``), forwarded only
            to clients that asked with ``stream_options.include_usage``.
        done: The ``[DONE]`` sentinel: the stream ended normally.
    """

    chunk: dict[str, Any] | None
    raw: bytes | None = None
    has_delta: bool = False
    usage: Usage | None = None
    usage_only: bool = False
    done: bool = False


@runtime_checkable
class Provider(Protocol):
    """One upstream wire format. Built as ``cls(endpoint, session)``; see the module docstring."""

    endpoint: Endpoint

    async def complete(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Completion:
        """Call the upstream without streaming.

        Args:
            body: The caller's validated OpenAI chat-completions body (not mutated).
            headers: Allow-listed headers to pass upstream (lower-case names).

        Returns:
            The OpenAI-shaped response and its normalised usage.

        Raises:
            ProviderError: Any upstream or transport failure, mapped into turnout's tree.
        """
        ...

    def stream(
        self, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[StreamEvent]:
        """Call the upstream with streaming; yield events as they arrive.

        Raises:
            ProviderError: Any upstream or transport failure, from the iterator, including an
                error event inside the stream and a stream that ends without ``[DONE]``.
        """
        ...


class ProviderFactory(Protocol):
    """What ``PROVIDERS`` holds: a class (or callable) building an adapter."""

    def __call__(self, endpoint: Endpoint, session: aiohttp.ClientSession) -> Provider:
        """Build the adapter for ``endpoint`` on the shared ``session``."""
        ...


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (or ``retry-after-ms``) header value.

    Args:
        value: Delta-seconds (``"30"``, ``"1.5"``) or an HTTP date.
        now_s: Current UNIX time for HTTP dates; ``time.time()`` if ``None``.

    Returns:
        Non-negative seconds, or ``None`` if absent or unparseable.
    """
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now_s is None else now_s), 0.0)


def _error_message(body: object, status: int) -> str:
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            msg = err.get("message")
            if isinstance(msg, str) and msg:
                return msg
        elif isinstance(err, str) and err:
            return err
    elif isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return f"upstream answered HTTP {status}"


_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context window")


def error_from_status(
    provider: str, status: int, body: object, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """Map an upstream HTTP error status to turnout's error tree.

    401/403 -> :class:`AuthFailed`; 429 -> :class:`RateLimited` (with ``retry_after_s``);
    408, 409 and 5xx -> retryable :class:`ProviderError`; a 400 naming the context length ->
    :class:`ContextTooLong`; other 4xx -> :class:`UpstreamBadRequest` (not retryable).

    Args:
        provider: Adapter name, recorded on the error.
        status: HTTP status (>= 400).
        body: Parsed JSON error body, or text.
        headers: Response headers (case-insensitive mapping), for ``Retry-After``.

    Returns:
        The error to raise; its message is the upstream's own message when it gave one.
    """
    message = _error_message(body, status)
    kwargs: dict[str, Any] = {"provider": provider, "status_code": status, "body": body}
    if status in (401, 403):
        return AuthFailed(message, **kwargs)
    if status == 429:
        retry_after = None
        if headers is not None:
            ms = parse_retry_after(headers.get("retry-after-ms"))
            retry_after = (
                ms / 1000 if ms is not None else parse_retry_after(headers.get("retry-after"))
            )
        return RateLimited(message, retry_after_s=retry_after, **kwargs)
    if status in RETRYABLE_STATUS or status >= 500:
        return ProviderError(message, retryable=True, **kwargs)
    lowered = message.lower()
    if any(h in lowered for h in _CONTEXT_HINTS):
        return ContextTooLong(message, **kwargs)
    return UpstreamBadRequest(message, **kwargs)


def error_from_exception(provider: str, exc: BaseException, phase: str) -> ProviderError:
    """Map a transport exception (aiohttp, OS, timeout) to turnout's error tree.

    Args:
        provider: Adapter name, recorded on the error.
        exc: The exception caught at the adapter boundary.
        phase: What was happening: ``"connect"``, ``"first_byte"``, ``"idle"`` or ``"total"``
            (the :class:`Deadline` phase when a timeout fired).

    Returns:
        :class:`ProviderTimeout` for timeouts, :class:`ProviderConnectionError` otherwise;
        both retryable. The message never contains credentials, URLs or hosts.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        phase = "connect"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeout(f"{phase} timeout calling the upstream", provider=provider)
    detail = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        detail = "cannot connect"  # no host or port: messages reach API clients
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        detail = "the upstream closed the connection mid-response"
    return ProviderConnectionError(
        f"connection error calling the upstream: {detail}", provider=provider
    )


class Deadline:
    """Connect / first-byte / idle / total timeouts for one upstream call.

    Use it as an async context manager around the call; call :meth:`got_headers` once the
    response headers arrived and :meth:`got_bytes` after every body read. The timer fires at
    the earliest of the phase limit and the total deadline; on expiry the ``TimeoutError`` is
    raised with :attr:`phase` naming which limit fired. Use one context per ``await`` region
    that does not yield to a caller (inside async generators, wrap each read in :meth:`read`).

    Args:
        timeouts: The deployment's timeouts.
    """

    __slots__ = ("_loop", "_timeouts", "_total_at", "_cm", "phase")

    def __init__(self, timeouts: Timeouts) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeouts = timeouts
        self._total_at = self._loop.time() + timeouts.total_s
        self._cm: asyncio.Timeout | None = None
        self.phase = "first_byte"

    def _at(self, limit_s: float, phase: str) -> float:
        at = self._loop.time() + limit_s
        if at >= self._total_at:
            self.phase = "total"
            return self._total_at
        self.phase = phase
        return at

    def first_byte_at(self) -> float:
        """Loop time at which waiting for the response headers times out."""
        return self._at(self._timeouts.first_byte_s, "first_byte")

    def idle_at(self) -> float:
        """Loop time at which waiting for the next body bytes times out."""
        return self._at(self._timeouts.idle_s, "idle")

    async def __aenter__(self) -> Deadline:
        self._cm = asyncio.timeout_at(self.first_byte_at())
        await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._cm is not None
        await self._cm.__aexit__(*exc_info)

    def got_headers(self) -> None:
        """The response headers arrived: switch to the idle-gap limit."""
        if self._cm is not None:
            self._cm.reschedule(self.idle_at())

    got_bytes = got_headers

    def read(self) -> asyncio.Timeout:
        """A fresh timeout context for one body read inside a generator (idle or total)."""
        return asyncio.timeout_at(self.idle_at())
