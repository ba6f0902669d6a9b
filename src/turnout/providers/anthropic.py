"""The adapter for the Anthropic Messages API (``POST {base_url}/v1/messages``).

Callers speak OpenAI chat-completions; the pure translation lives in
:mod:`turnout.providers._anthropic_wire` (``to_wire`` / ``from_wire``, the stream translator,
usage normalisation and error mapping) and the transport on the gateway's pooled
:class:`aiohttp.ClientSession` in :mod:`turnout.providers._translating`.

``endpoint.base_url`` is ``https://api.anthropic.com`` (a trailing ``/v1`` is accepted too).
Headers: ``x-api-key``, ``anthropic-version: 2023-06-01``, plus ``endpoint.headers`` (for
example ``anthropic-beta``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from turnout.errors import ProviderError
from turnout.providers._anthropic_stream import AnthropicStreamTranslator
from turnout.providers._anthropic_wire import (
    error_from_wire,
    from_wire,
    to_wire,
    usage_from_wire,
)
from turnout.providers._translating import StreamTranslator, TranslatingProvider
from turnout.providers.base import Endpoint
from turnout.types import Usage

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "from_wire", "to_wire"]

#: The ``anthropic-version`` header value (https://docs.anthropic.com/en/api/versioning).
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(TranslatingProvider):
    """Adapter for the Anthropic Messages API, streaming and non-streaming.

    Args:
        endpoint: The deployment to call (``endpoint.model`` is the Claude model name).
        session: The gateway's pooled HTTP client.
        system_role: ``False`` for a model that accepts no system prompt; ``None`` takes
            ``endpoint.system_role``.
        default_max_tokens: ``max_tokens`` sent when the caller gave none (Anthropic
            requires one).
    """

    name = "anthropic"

    def __init__(
        self,
        endpoint: Endpoint,
        session: aiohttp.ClientSession,
        *,
        system_role: bool | None = None,
        default_max_tokens: int = 4096,
    ) -> None:
        super().__init__(endpoint, session, system_role=system_role)
        self.default_max_tokens = default_max_tokens
        base = endpoint.base_url.rstrip("/")
        self.url = f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
        self._headers = {
            "content-type": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
            **endpoint.headers,
        }
        if endpoint.api_key:
            self._headers["x-api-key"] = endpoint.api_key

    def _url(self, *, stream: bool) -> str:
        return self.url

    def _wire_body(self, body: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        wire = to_wire(
            body,
            model=self.endpoint.model,
            default_max_tokens=self.default_max_tokens,
            system_role=self.system_role,
        )
        if stream:
            wire["stream"] = True
        return wire

    def _from_wire(self, response: Mapping[str, Any], created: int, call_id: str) -> dict[str, Any]:
        return from_wire(response, created=created, model=self.endpoint.model)

    def _usage(self, response: Mapping[str, Any]) -> Usage | None:
        reported = response.get("usage")
        return usage_from_wire(reported) if reported else None

    def _error(self, status: int | None, body: object, retry_after: str | None) -> ProviderError:
        return error_from_wire(status, body, retry_after)

    def _translator(self, created: int, call_id: str) -> StreamTranslator:
        return AnthropicStreamTranslator(model=self.endpoint.model, created=created)
