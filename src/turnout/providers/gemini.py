"""The adapter for the Google Gemini API (``generateContent`` and ``streamGenerateContent``).

Callers speak OpenAI chat-completions; the pure translation lives in
:mod:`turnout.providers._gemini_wire` and the transport on the gateway's pooled
:class:`aiohttp.ClientSession` in :mod:`turnout.providers._translating`.

``endpoint.base_url`` is ``https://generativelanguage.googleapis.com`` (``/v1beta`` is added;
a base URL already ending in ``/v1beta`` or ``/v1`` is used as it is). Calls go to
``{base}/models/{model}:generateContent`` and ``{base}/models/{model}:streamGenerateContent
?alt=sse`` with the key in the ``x-goog-api-key`` header (never in the URL, which may be
logged).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from turnout.errors import ProviderError
from turnout.providers._gemini_stream import GeminiStreamTranslator
from turnout.providers._gemini_wire import (
    error_from_wire,
    from_wire,
    to_wire,
    usage_from_wire,
)
from turnout.providers._translating import StreamTranslator, TranslatingProvider
from turnout.providers.base import Endpoint
from turnout.types import Usage

__all__ = ["GeminiProvider", "from_wire", "to_wire"]


class GeminiProvider(TranslatingProvider):
    """Adapter for the Gemini API, streaming and non-streaming.

    Args:
        endpoint: The deployment to call (``endpoint.model`` is the Gemini model name,
            e.g. ``"gemini-2.5-flash"``).
        session: The gateway's pooled HTTP client.
        system_role: ``False`` for a model that accepts no system instruction (Gemma);
            ``None`` takes ``endpoint.system_role``.
    """

    name = "gemini"

    def __init__(
        self, endpoint: Endpoint, session: aiohttp.ClientSession, *, system_role: bool | None = None
    ) -> None:
        super().__init__(endpoint, session, system_role=system_role)
        base = endpoint.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1")):
            base += "/v1beta"
        model = endpoint.model.removeprefix("models/")
        self.url = f"{base}/models/{model}:generateContent"
        self.stream_url = f"{base}/models/{model}:streamGenerateContent?alt=sse"
        self._headers = {"content-type": "application/json", **endpoint.headers}
        if endpoint.api_key:
            self._headers["x-goog-api-key"] = endpoint.api_key

    def _url(self, *, stream: bool) -> str:
        return self.stream_url if stream else self.url

    def _wire_body(self, body: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        return to_wire(body, system_role=self.system_role)

    def _from_wire(self, response: Mapping[str, Any], created: int, call_id: str) -> dict[str, Any]:
        return from_wire(
            response, created=created, model=self.endpoint.model, call_id_prefix=call_id
        )

    def _usage(self, response: Mapping[str, Any]) -> Usage | None:
        reported = response.get("usageMetadata")
        return usage_from_wire(reported) if reported else None

    def _error(self, status: int | None, body: object, retry_after: str | None) -> ProviderError:
        return error_from_wire(status, body, retry_after)

    def _translator(self, created: int, call_id: str) -> StreamTranslator:
        return GeminiStreamTranslator(
            model=self.endpoint.model, created=created, call_id_prefix=call_id
        )
