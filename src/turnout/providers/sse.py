r"""An incremental server-sent-events parser for upstream streams.

Feed it the bytes of a response body as they arrive, in pieces of any size; it returns each
complete event once its terminating blank line has arrived. It works on bytes, so a UTF-8
character split across two reads is never decoded half-way; line ends may be ``\n``,
``\r\n`` or ``\r`` (also split across reads); comment lines (``: keep-alive``) are dropped,
and events with no ``data`` field are skipped, as the WHATWG event-stream rules say
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

Example::

    parser = SSEParser()
    async for piece in response.content.iter_any():
        for event in parser.feed(piece):
            handle(event.event, event.data)      # data: bytes, lines joined by b"\n"
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    r"""One dispatched server-sent event.

    Attributes:
        data: The ``data`` field lines joined by ``b"\n"`` (undecoded UTF-8).
        event: The ``event`` field, or ``None`` (the default type, ``message``).
        id: The ``id`` field, or ``None``.
        raw: The event as it appeared on the wire, normalised to ``\n`` line ends and ending
            in ``b"\n\n"``; relay it to pass the event on unchanged.
    """

    data: bytes
    event: str | None = None
    id: str | None = None
    raw: bytes = b""


class SSEParser:
    """Incremental event-stream parser (see the module docstring)."""

    __slots__ = ("_buffer", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """Add ``piece`` of the body and return the events it completed, in order.

        Args:
            piece: The next bytes read from the stream (any length, possibly empty).

        Returns:
            Zero or more complete events.
        """
        if self._pending_cr:
            piece = b"\r" + piece
            self._pending_cr = False
        if b"\r" in piece:
            if piece.endswith(b"\r"):
                # A CR at the end may be the first half of a CRLF: decide on the next read.
                piece = piece[:-1]
                self._pending_cr = True
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + piece if self._buffer else piece
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return []
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        events = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """Dispatch what is left at the end of the stream (an event missing its blank line).

        Returns:
            The last event if the buffer held a complete ``data`` field, else ``[]``.
        """
        block, self._buffer = self._buffer, b""
        self._pending_cr = False
        block = block.strip(b"\n")
        if not block:
            return []
        event = _parse_block(block)
        return [event] if event is not None else []

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet part of a complete event."""
        return len(self._buffer) + self._pending_cr


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast path: the common single-line ``data: {...}`` event.
    if block.startswith(b"data:") and b"\n" not in block:
        value = block[5:]
        if value.startswith(b" "):
            value = value[1:]
        return SSEEvent(data=value, raw=block + b"\n\n")
    data: list[bytes] = []
    event_type: str | None = None
    event_id: str | None = None
    kept: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue  # comments / keep-alives
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            event_id = value.decode("utf-8", "replace")
        else:
            continue  # ``retry`` and unknown fields
        kept.append(line)
    if not data:
        return None
    return SSEEvent(
        data=b"\n".join(data), event=event_type, id=event_id, raw=b"\n".join(kept) + b"\n\n"
    )
