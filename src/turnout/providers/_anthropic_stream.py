"""Streaming translation: Anthropic Messages SSE events -> OpenAI ``chat.completion.chunk`` dicts.

Pure and stateful, one object per stream; fed one parsed SSE event at a time by
:class:`turnout.providers._translating.TranslatingProvider`. See
:mod:`turnout.providers._anthropic_wire` for the wire format and the usage rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from turnout.providers._anthropic_wire import (
    FINISH_REASONS,
    PROVIDER,
    error_from_wire,
    usage_from_wire,
)
from turnout.providers._openai_answer import ChunkWriter, stream_json_error
from turnout.providers.sse import SSEEvent
from turnout.types import Usage

__all__ = ["AnthropicStreamTranslator"]


class AnthropicStreamTranslator(ChunkWriter):
    """Turns Anthropic SSE events into OpenAI ``chat.completion.chunk`` dicts, one event at a time.

    Tool calls are numbered 0, 1, ... in the order their ``tool_use`` blocks start; the id and
    name go on a call's first delta, ``input_json_delta`` fragments follow as argument
    fragments. ``ping`` events yield nothing; an ``error`` event raises the mapped error.

    Args:
        model: The model name to report in chunks.
        created: Unix time, seconds, for the ``created`` field.

    Attributes:
        usage: Normalised usage so far (final after ``message_stop``).
        finish_reason: OpenAI finish reason once known.
        done: Whether ``message_stop`` was seen.
    """

    def __init__(self, *, model: str, created: int) -> None:
        self.model = model
        self.created = created
        self.id = ""
        self.finish_reason: str | None = None
        self.done = False
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}
        self._tool_args_seen: dict[int, bool] = {}
        self._tool_input: dict[int, Any] = {}

    @property
    def usage(self) -> Usage:
        """Normalised usage from the latest cumulative counts."""
        return usage_from_wire(self._usage)

    @property
    def usage_reported(self) -> bool:
        """Whether the upstream reported any usage in this stream."""
        return bool(self._usage)

    def _tool_delta(
        self, block_index: int, function: dict[str, Any], **first: Any
    ) -> dict[str, Any]:
        call = {"index": self._tool_index[block_index], **first, "function": function}
        return self._chunk({"tool_calls": [call]})

    def feed(self, event: str | None, data: bytes | str) -> list[dict[str, Any]]:
        """Translate one SSE event.

        Args:
            event: The SSE ``event:`` name (the JSON ``type`` is used when absent).
            data: The event's ``data:`` payload (JSON text).

        Returns:
            Zero or more OpenAI chunk dicts (call :meth:`finish` after ``message_stop``).

        Raises:
            ProviderError: For an ``error`` event (mapped like an HTTP error) or a payload
                that is not JSON.
        """
        try:
            payload = json.loads(data) if data else {}
        except json.JSONDecodeError as exc:
            raise stream_json_error(
                f"anthropic stream: event {event!r} has invalid JSON data ({exc.msg})",
                provider=PROVIDER,
                data=data,
            ) from None
        kind = event or payload.get("type")
        if kind == "message_start":
            message = payload.get("message") or {}
            self.id = message.get("id", "")
            self._usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_delta":
            return self._block_delta(payload)
        if kind == "content_block_stop":
            index = payload.get("index", 0)
            if index in self._tool_index and not self._tool_args_seen.get(index):
                arguments = json.dumps(self._tool_input.get(index) or {}, ensure_ascii=False)
                return [self._tool_delta(index, {"arguments": arguments})]
            return []
        if kind == "message_delta":
            stop_reason = (payload.get("delta") or {}).get("stop_reason")
            if stop_reason:
                self.finish_reason = FINISH_REASONS.get(stop_reason, "stop")
            self._usage.update(
                {k: v for k, v in (payload.get("usage") or {}).items() if v is not None}
            )
            return []
        if kind == "message_stop":
            self.done = True
            return []
        if kind == "error":
            raise error_from_wire(None, payload)
        return []  # ping and event types added later by Anthropic are ignored, as documented

    def feed_event(self, event: SSEEvent) -> list[dict[str, Any]]:
        """Translate one parsed SSE event (see :meth:`feed`)."""
        return self.feed(event.event, event.data)

    def finish(self) -> list[dict[str, Any]]:
        """The finishing chunk and the ``usage`` chunk (``choices: []``), after the stream."""
        return self._finish_chunks(self.finish_reason or "stop", self.usage)

    def _block_start(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = payload.get("index", 0)
        block = payload.get("content_block") or {}
        if block.get("type") == "text":
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if block.get("type") == "tool_use":
            self._tool_index[index] = len(self._tool_index)
            self._tool_input[index] = block.get("input")
            first = {"id": block.get("id", ""), "type": "function"}
            return [
                self._tool_delta(index, {"name": block.get("name", ""), "arguments": ""}, **first)
            ]
        return []

    def _block_delta(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = payload.get("index", 0)
        delta = payload.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and index in self._tool_index:
            fragment = delta.get("partial_json") or ""
            if fragment:
                self._tool_args_seen[index] = True
                return [self._tool_delta(index, {"arguments": fragment})]
        return []
