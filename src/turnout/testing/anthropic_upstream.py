"""A scriptable loopback server speaking the Anthropic Messages API, for tests and benchmarks.

Answers ``POST /v1/messages`` with what Anthropic documents
(https://docs.anthropic.com/en/api/messages, .../build-with-claude/streaming): a ``message``
object, or for ``"stream": true`` the named SSE events ``message_start``,
``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``,
``input_json_delta``), ``content_block_stop``, ``message_delta`` and ``message_stop``, with
``json.dumps``-style spacing as in Anthropic's examples. Errors use Anthropic's body
``{"type": "error", "error": {"type": ..., "message": ...}}``, also as an ``error`` event
inside a stream (e.g. ``overloaded_error``).

Example::

    with AnthropicUpstream() as up:
        up.script(AnthropicAnswer.text("Hello!", usage={"input_tokens": 25, "output_tokens": 15}))
        ... point an ``anthropic`` deployment at up.base_url ...
        assert up.requests[0].json()["system"] == [...]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from turnout.testing._vendor_server import (
    RecordedRequest,
    VendorServer,
    WireReply,
    serve_forever,
    split_bytes,
)

__all__ = [
    "AnthropicAnswer",
    "AnthropicUpstream",
    "anthropic_error",
    "sse_event",
]

_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def sse_event(name: str, payload: Mapping[str, Any]) -> bytes:
    r"""One Anthropic SSE event: ``event: <name>\ndata: <json>\n\n``."""
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def anthropic_error(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> WireReply:
    """An Anthropic HTTP error (e.g. ``529, "overloaded_error"`` or ``429, "rate_limit_error"``)."""
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_loopback",
    }
    return WireReply.json(status, body, {"request-id": "req_loopback", **(headers or {})})


@dataclass(frozen=True)
class AnthropicAnswer:
    """One scripted assistant message, rendered as JSON or as an SSE stream per request.

    Attributes:
        content: Anthropic content blocks (``text``, ``tool_use``, ``thinking``).
        usage: The final usage (non-streaming body; ``message_delta`` in a stream unless
            ``delta_usage`` is given).
        stop_reason: ``end_turn``, ``tool_use``, ``max_tokens`` ...
        start_usage: Usage in ``message_start`` (default: the final input counts and
            ``output_tokens: 1``, as Anthropic sends).
        delta_usage: Usage in the final ``message_delta`` (default ``{"output_tokens": N}``).
        text_piece_chars: Characters per ``text_delta``.
        json_piece_chars: Characters per ``input_json_delta`` fragment.
        pings: Send an ``event: ping`` after the first block starts.
        comment: Also send an SSE comment line (``: keep-alive``) before the first event.
        stream_error: If set, ``(kind, message)`` of an ``error`` event sent after
            ``stream_error_after`` content blocks instead of finishing.
        stream_error_after: Content blocks streamed before ``stream_error`` (0: right after
            ``message_start``, before any content).
        split_bytes: If set, the stream body is cut into pieces of this many bytes
            (splitting events and UTF-8 characters across reads).
        piece_delay_s: Pause between stream pieces, seconds.
        model: The model name in the answer.
        id: The message id.
    """

    content: Sequence[Mapping[str, Any]]
    usage: Mapping[str, Any] = field(
        default_factory=lambda: {"input_tokens": 10, "output_tokens": 5}
    )
    stop_reason: str = "end_turn"
    start_usage: Mapping[str, Any] | None = None
    delta_usage: Mapping[str, Any] | None = None
    text_piece_chars: int = 4
    json_piece_chars: int = 7
    pings: bool = True
    comment: bool = False
    stream_error: tuple[str, str] | None = None
    stream_error_after: int = 1
    split_bytes: int | None = None
    piece_delay_s: float = 0.0
    model: str = "claude-loopback"
    id: str = "msg_01Loopback"

    @classmethod
    def text(cls, text: str, **kwargs: Any) -> AnthropicAnswer:
        """An answer with one text block."""
        return cls(content=[{"type": "text", "text": text}], **kwargs)

    def message(self) -> dict[str, Any]:
        """The non-streaming ``message`` body."""
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [dict(b) for b in self.content],
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": dict(self.usage),
        }

    def events(self) -> list[bytes]:
        """The SSE events of the streamed answer, in order."""
        start_usage = dict(self.start_usage or {})
        if self.start_usage is None:
            start_usage = {k: v for k, v in self.usage.items() if k != "output_tokens"}
            start_usage["output_tokens"] = 1
        message = {**self.message(), "content": [], "stop_reason": None, "usage": start_usage}
        out = [sse_event("message_start", {"type": "message_start", "message": message})]
        for index, block in enumerate(self.content):
            if self.stream_error is not None and index == self.stream_error_after:
                kind, text = self.stream_error
                error = {"type": "error", "error": {"type": kind, "message": text}}
                return out + [sse_event("error", error)]
            out += self._block_events(index, block)
            if index == 0 and self.pings:
                out.append(sse_event("ping", {"type": "ping"}))
        if self.stream_error is not None:
            kind, text = self.stream_error
            error = {"type": "error", "error": {"type": kind, "message": text}}
            return out + [sse_event("error", error)]
        delta_usage = dict(self.delta_usage or {"output_tokens": self.usage["output_tokens"]})
        out.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": delta_usage,
                },
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out

    def _block_events(self, index: int, block: Mapping[str, Any]) -> list[bytes]:
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            text = block["text"]
            step = self.text_piece_chars
            deltas = [
                {"type": "text_delta", "text": text[i : i + step]}
                for i in range(0, len(text), step)
            ]
        elif kind == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"], ensure_ascii=False)
            step = self.json_piece_chars
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": raw[i : i + step]}
                for i in range(0, len(raw), step)
            ]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block.get("signature", "sig")},
            ]
        else:
            raise ValueError(
                f"`content` block type must be text, tool_use or thinking; got {kind!r}"
            )
        out = [
            sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        ]
        out += [
            sse_event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}
            )
            for d in deltas
        ]
        out.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        return out

    def render(self, request: RecordedRequest) -> WireReply:
        """JSON for a plain request; the SSE stream for ``"stream": true``."""
        if not request.json().get("stream"):
            return WireReply.json(200, self.message(), {"request-id": "req_loopback"})
        events = self.events()
        if self.comment:
            events.insert(0, b": keep-alive\n\n")
        pieces = events
        if self.split_bytes:
            pieces = split_bytes(b"".join(events), self.split_bytes)
        return WireReply(
            status=200, headers=_SSE_HEADERS, pieces=pieces, piece_delay_s=self.piece_delay_s
        )


class AnthropicUpstream(VendorServer):
    """The Anthropic Messages API on 127.0.0.1 (see the module docstring).

    Args:
        default: What to answer once the script has run out (a short text answer).
    """

    def __init__(
        self, default: AnthropicAnswer | WireReply | None = None, *, record: bool = True
    ) -> None:
        super().__init__(
            record=record, default=default or AnthropicAnswer.text("Hello from the loopback.")
        )


if __name__ == "__main__":
    import sys

    serve_forever(AnthropicUpstream(record=False), int(sys.argv[1]) if len(sys.argv) > 1 else 0)
