"""Writing an OpenAI chat-completions answer, shared by the translating adapters.

Pure helpers that build the ``chat.completion`` object, its ``tool_calls`` entries and the
``chat.completion.chunk`` objects of a stream, so that the Anthropic and Gemini adapters answer
callers in exactly one shape (https://platform.openai.com/docs/api-reference/chat/object and
https://platform.openai.com/docs/api-reference/chat/streaming). No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from turnout.errors import ProviderError
from turnout.providers._openai_parts import openai_usage
from turnout.types import Usage

__all__ = ["ChunkWriter", "completion", "stream_json_error", "tool_call"]


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """An OpenAI ``tool_calls`` entry; ``arguments`` (an object, or ``None`` for ``{}``) as JSON."""
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": name,
            "arguments": json.dumps(arguments or {}, ensure_ascii=False),
        },
    }


def completion(
    *,
    response_id: str,
    created: int,
    model: str,
    texts: Sequence[str],
    tool_calls: Sequence[dict[str, Any]],
    finish_reason: str,
    usage: Usage,
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object with one assistant choice.

    Args:
        response_id: The response ``id``.
        created: Unix time, seconds.
        model: The model name to report.
        texts: Text pieces, concatenated into ``message.content`` (``None`` when empty).
        tool_calls: ``message.tool_calls`` entries (the key is left out when empty).
        finish_reason: OpenAI finish reason.
        usage: Normalised usage, written as OpenAI's ``usage`` object.

    Returns:
        The OpenAI response body.
    """
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
    }


def stream_json_error(message: str, *, provider: str, data: bytes | str) -> ProviderError:
    """The error for a vendor stream event whose data is not JSON (first 500 of it as body)."""
    return ProviderError(
        message,
        provider=provider,
        body=data[:500] if isinstance(data, str) else data[:500].decode("utf-8", "replace"),
    )


class ChunkWriter:
    """Base of the stream translators: OpenAI chunks stamped with the stream's id and model.

    Attributes:
        id: The chunk id (set by the subclass once the vendor gives one).
        created: Unix time, seconds, for the ``created`` field.
        model: The model name to report.
    """

    id: str
    created: int
    model: str

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def _finish_chunks(self, finish_reason: str, usage: Usage) -> list[dict[str, Any]]:
        """The finishing chunk and the ``usage`` chunk (``choices: []``)."""
        usage_chunk = {**self._chunk({}), "choices": [], "usage": openai_usage(usage)}
        return [self._chunk({}, finish_reason), usage_chunk]
