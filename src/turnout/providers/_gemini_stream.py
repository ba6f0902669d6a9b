"""Streaming translation: Gemini SSE events -> OpenAI ``chat.completion.chunk`` dicts.

Pure and stateful, one object per stream; fed one parsed SSE event at a time by
:class:`turnout.providers._translating.TranslatingProvider`. See
:mod:`turnout.providers._gemini_wire` for the wire format and the usage rules.
"""

from __future__ import annotations

import json
from typing import Any

from turnout.providers._gemini_wire import (
    PROVIDER,
    _finish_reason,
    _tool_call,
    error_from_wire,
    usage_from_wire,
)
from turnout.providers._openai_answer import ChunkWriter, stream_json_error
from turnout.providers.sse import SSEEvent
from turnout.types import Usage

__all__ = ["GeminiStreamTranslator"]


class GeminiStreamTranslator(ChunkWriter):
    """Turns Gemini ``streamGenerateContent`` SSE events into OpenAI chunk dicts.

    Each event holds a whole ``GenerateContentResponse``: text parts become content deltas;
    each ``functionCall`` part (always complete in Gemini streams) becomes one tool call
    delta with the next index, its id, name and whole arguments.

    Args:
        model: The model name to report in chunks.
        created: Unix time, seconds, for the ``created`` field.
        call_id_prefix: Prefix for generated ids (chunk id and tool call ids).

    Attributes:
        finish_reason: OpenAI finish reason once a chunk carried ``finishReason``.
    """

    def __init__(self, *, model: str, created: int, call_id_prefix: str) -> None:
        self.model = model
        self.created = created
        self.prefix = call_id_prefix
        self.id = call_id_prefix
        self.finish_reason: str | None = None
        self._meta: dict[str, Any] = {}
        self._tools = 0
        self._started = False
        self._gemini_finish: str | None = None

    @property
    def usage(self) -> Usage:
        """Normalised usage from the latest ``usageMetadata``."""
        return usage_from_wire(self._meta)

    @property
    def usage_reported(self) -> bool:
        """Whether the upstream reported any usage in this stream."""
        return bool(self._meta)

    def feed(self, data: bytes | str) -> list[dict[str, Any]]:
        """Translate one SSE ``data:`` payload.

        Returns:
            Zero or more OpenAI chunk dicts (the first one carries ``role``).

        Raises:
            ProviderError: For an ``{"error": ...}`` payload (mapped like an HTTP error) or a
                payload that is not JSON.
        """
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise stream_json_error(
                f"gemini stream: invalid JSON data ({exc.msg})", provider=PROVIDER, data=data
            ) from None
        if "error" in payload:
            raise error_from_wire(None, payload)
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            self.id = payload.get("responseId") or self.prefix
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if payload.get("usageMetadata"):
            self._meta = dict(payload["usageMetadata"])
        candidates = payload.get("candidates") or []
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            self._gemini_finish = "SAFETY"
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    call_id = part["functionCall"].get("id") or f"{self.prefix}_{self._tools}"
                    call = {"index": self._tools, **_tool_call(part, call_id)}
                    self._tools += 1
                    out.append(self._chunk({"tool_calls": [call]}))
                elif part.get("text") and not part.get("thought"):
                    out.append(self._chunk({"content": part["text"]}))
            if candidate.get("finishReason"):
                self._gemini_finish = candidate["finishReason"]
        return out

    def feed_event(self, event: SSEEvent) -> list[dict[str, Any]]:
        """Translate one parsed SSE event (see :meth:`feed`)."""
        return self.feed(event.data)

    @property
    def done(self) -> bool:
        """Whether a chunk carried a ``finishReason`` (or the prompt was blocked)."""
        return self._gemini_finish is not None

    def finish(self) -> list[dict[str, Any]]:
        """The finishing chunk and the ``usage`` chunk, once the stream has ended."""
        self.finish_reason = _finish_reason(self._gemini_finish, self._tools > 0)
        return self._finish_chunks(self.finish_reason, self.usage)
