"""The incremental SSE parser, fed in every possible split."""

from __future__ import annotations

import pytest

from turnout.providers.sse import SSEEvent, SSEParser

WIRE = (
    ": keep-alive\r\n\r\n"
    'data: {"text": "héllo 🙂"}\r\n\r\n'
    "event: error\r\ndata: line one\r\ndata: line two\r\nid: 7\r\nretry: 100\r\n\r\n"
    "data:no-space\n\n"
    "event: ping\n\n"
    "data: [DONE]\r\r"
).encode()


def _parse(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.flush()


EXPECTED = [
    SSEEvent(data='{"text": "héllo 🙂"}'.encode(), raw='data: {"text": "héllo 🙂"}\n\n'.encode()),
    SSEEvent(
        data=b"line one\nline two",
        event="error",
        id="7",
        raw=b"event: error\ndata: line one\ndata: line two\nid: 7\n\n",
    ),
    SSEEvent(data=b"no-space", raw=b"data:no-space\n\n"),
    SSEEvent(data=b"[DONE]", raw=b"data: [DONE]\n\n"),
]


def test_whole_buffer() -> None:
    assert _parse([WIRE]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_split_gives_the_same_events(size: int) -> None:
    # Splits fall inside multi-byte UTF-8 characters and between \r and \n.
    assert _parse([WIRE[i : i + size] for i in range(0, len(WIRE), size)]) == EXPECTED


def test_flush_dispatches_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == [] and parser.pending_bytes == 10
    assert parser.flush() == [SSEEvent(data=b"tail", raw=b"data: tail\n\n")]
    assert parser.flush() == []
