"""Offline token counting.

turnout must run without network, so it cannot fetch a BPE vocabulary (tiktoken downloads its
files on first use). :func:`count_tokens` approximates a modern BPE tokenizer (cl100k/o200k
style): text is split with a GPT-like pre-tokenisation pattern, and each piece costs one token
per ``_CHARS_PER_TOKEN`` characters (at least one). Counts are *estimates*; anything priced from
them is labelled modelled/estimated. ``benchmarks/tokens_accuracy.py`` measures the error
against recorded token counts (results in ``benchmarks/results/tokens_accuracy.md``): on
routerarena's 809 prompts the estimate is 1.24x Claude 3 Haiku's recorded input tokens and 1.61x
Gemini 2.0 Flash's, so modelled input costs err on the high side.

Speed: counting runs on every routed request. ASCII text (most prompts) is split by an
equivalent pattern written with explicit ASCII classes, about 1.6x faster for Python's regex
engine than the Unicode classes, and the pieces' costs are summed through a lookup table by
length; the counts are the same (``tests/test_tokens.py`` checks both paths against the
reference definition).
"""

from __future__ import annotations

import re

__all__ = ["count_tokens", "count_message_tokens"]

# Letters runs (with an optional leading space), up to 3 digits, punctuation runs, whitespace.
_PIECE = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+", re.UNICODE)
# The same split for ASCII-only text. On ASCII, Unicode `\s` is [\t-\r\x1c-\x20], the letters
# `[^\W\d_]` are [A-Za-z], `\d` is [0-9] and `[^\s\w]` is everything else but `_`.
_WS = r"\t-\r\x1c-\x20"
_PIECE_ASCII = re.compile(
    rf"'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]{{1,3}}| ?[^{_WS}A-Za-z0-9_]+|[{_WS}]+"
)
_CHARS_PER_TOKEN = 4.0
_NON_ASCII_CHARS_PER_TOKEN = 1.5
# Per-message framing tokens in chat formats (role markers and separators).
_TOKENS_PER_MESSAGE = 4
# Tokens of an ASCII piece by its length (longer pieces: see `_ascii_cost`).
_ASCII_COST = [0, 1, 1, 1, 1, 1] + [int(-(-n // _CHARS_PER_TOKEN)) for n in range(6, 257)]


def _ascii_cost(length: int) -> int:
    return 1 if length <= 5 else int(-(-length // _CHARS_PER_TOKEN))


def count_tokens(text: str) -> int:
    """Estimated number of BPE tokens in ``text``.

    Args:
        text: Any string (may be empty).

    Returns:
        Estimated token count, >= 0; 0 only for the empty string.
    """
    if not text:
        return 0
    if text.isascii():
        pieces = _PIECE_ASCII.findall(text)
        try:
            return sum(map(_ASCII_COST.__getitem__, map(len, pieces)))
        except IndexError:  # a piece longer than the table (a long run of one class)
            return sum(map(_ascii_cost, map(len, pieces)))
    n = 0
    for piece in _PIECE.findall(text):
        length = len(piece)
        if length <= 5:
            n += 1
        elif piece.isascii():
            n += int(-(-length // _CHARS_PER_TOKEN))
        else:
            n += int(-(-length // _NON_ASCII_CHARS_PER_TOKEN))
    return n


def count_message_tokens(texts: list[str]) -> int:
    """Estimated prompt tokens of a chat made of ``texts`` (one per message), framing included."""
    return sum(count_tokens(t) for t in texts) + _TOKENS_PER_MESSAGE * len(texts) + 3
