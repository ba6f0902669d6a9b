r"""A scriptable loopback server speaking the Google Gemini API, for tests and benchmarks.

Answers ``POST /v1beta/models/{model}:generateContent`` with a ``GenerateContentResponse`` and
``:streamGenerateContent?alt=sse`` with a stream of them, each event a bare
``data: <json>\r\n\r\n`` (no event names), as https://ai.google.dev/api/generate-content
documents: text arrives in pieces, each ``functionCall`` part whole, and the last event
carries ``finishReason`` and the full ``usageMetadata``. Errors use Google's body
``{"error": {"code": ..., "message": ..., "status": ..., "details": [...]}}``, also as a
``data:`` event inside a stream.

Example::

    with GeminiUpstream() as up:
        up.script(GeminiAnswer.text("Hi", usage={"promptTokenCount": 5, ...}))
        ... point a ``gemini`` deployment at up.base_url ...
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

__all__ = ["GeminiAnswer", "GeminiUpstream", "gemini_error", "gemini_event"]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ": "))


def gemini_event(payload: Mapping[str, Any]) -> bytes:
    r"""One Gemini SSE event: ``data: <json>\r\n\r\n``."""
    return f"data: {_dumps(payload)}\r\n\r\n".encode()


def _error_body(code: int, message: str, details: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": _STATUS.get(code, "UNKNOWN"),
    }
    if details:
        error["details"] = [dict(d) for d in details]
    return {"error": error}


def gemini_error(
    code: int,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> WireReply:
    """A Gemini HTTP error, e.g. ``429`` with a ``RetryInfo`` detail or ``503`` overloaded."""
    return WireReply.json(code, _error_body(code, message, details), headers)


@dataclass(frozen=True)
class GeminiAnswer:
    """One scripted model turn, rendered as JSON or as an SSE stream per request.

    Attributes:
        parts: Gemini parts (``{"text": ...}``, ``{"functionCall": {...}}``, with
            ``"thought": true`` or ``"thoughtSignature"`` where wanted).
        usage: The final ``usageMetadata``.
        finish_reason: ``STOP``, ``MAX_TOKENS``, ``SAFETY`` ...
        text_piece_chars: Characters of text per stream event.
        stream_error: If set, ``(code, message)`` of an error event sent after the first
            event instead of finishing.
        split_bytes: If set, the stream body is cut into pieces of this many bytes.
        piece_delay_s: Pause between stream pieces, seconds.
        comment: Also send an SSE comment line (``: keep-alive``) first.
        model_version: ``modelVersion`` in the answer.
        response_id: ``responseId`` in the answer.
    """

    parts: Sequence[Mapping[str, Any]]
    usage: Mapping[str, Any] = field(
        default_factory=lambda: {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "totalTokenCount": 15,
        }
    )
    finish_reason: str = "STOP"
    text_piece_chars: int = 4
    stream_error: tuple[int, str] | None = None
    split_bytes: int | None = None
    piece_delay_s: float = 0.0
    comment: bool = False
    model_version: str = "gemini-loopback"
    response_id: str = "resp-loopback"

    @classmethod
    def text(cls, text: str, **kwargs: Any) -> GeminiAnswer:
        """An answer with one text part."""
        return cls(parts=[{"text": text}], **kwargs)

    def _response(
        self, parts: Sequence[Mapping[str, Any]], usage: Mapping[str, Any], finish: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [dict(p) for p in parts], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = self.finish_reason
        response: dict[str, Any] = {"candidates": [candidate]}
        if self.usage:  # an empty ``usage`` scripts an upstream that reports none
            response["usageMetadata"] = dict(usage)
        response["modelVersion"] = self.model_version
        response["responseId"] = self.response_id
        return response

    def response(self) -> dict[str, Any]:
        """The non-streaming ``GenerateContentResponse``."""
        return self._response(self.parts, self.usage, True)

    def events(self) -> list[bytes]:
        """The SSE events of the streamed answer, in order."""
        pieces: list[dict[str, Any]] = []
        for part in self.parts:
            text = part.get("text")
            if isinstance(text, str) and len(text) > self.text_piece_chars:
                step = self.text_piece_chars
                pieces += [{**part, "text": text[i : i + step]} for i in range(0, len(text), step)]
            else:
                pieces.append(dict(part))
        running = {"promptTokenCount": self.usage.get("promptTokenCount", 0)}
        running["totalTokenCount"] = running["promptTokenCount"]
        out = []
        for i, part in enumerate(pieces):
            last = i == len(pieces) - 1
            usage = self.usage if last else running
            out.append(gemini_event(self._response([part], usage, last)))
            if i == 0 and self.stream_error is not None:
                code, message = self.stream_error
                return out + [gemini_event(_error_body(code, message, ()))]
        return out

    def render(self, request: RecordedRequest) -> WireReply:
        """JSON for ``:generateContent``; the SSE stream for ``:streamGenerateContent``."""
        if ":streamGenerateContent" not in request.path:
            return WireReply.json(200, self.response())
        events = self.events()
        if self.comment:
            events.insert(0, b": keep-alive\r\n\r\n")
        pieces = events
        if self.split_bytes:
            pieces = split_bytes(b"".join(events), self.split_bytes)
        return WireReply(
            status=200,
            headers={"content-type": "text/event-stream"},
            pieces=pieces,
            piece_delay_s=self.piece_delay_s,
        )


class GeminiUpstream(VendorServer):
    """The Gemini API on 127.0.0.1 (see the module docstring).

    Args:
        default: What to answer once the script has run out (a short text answer).
    """

    def __init__(
        self, default: GeminiAnswer | WireReply | None = None, *, record: bool = True
    ) -> None:
        super().__init__(
            record=record, default=default or GeminiAnswer.text("Hello from the loopback.")
        )


if __name__ == "__main__":
    import sys

    serve_forever(GeminiUpstream(record=False), int(sys.argv[1]) if len(sys.argv) > 1 else 0)
