"""The offline token estimate: the fast ASCII path counts exactly what the reference does."""

import random

import pytest

from turnout.features import count_message_tokens, count_tokens
from turnout.features.tokens import _PIECE


def _reference(text: str) -> int:
    """The estimate's definition: Unicode pre-tokenisation, then characters per piece."""
    n = 0
    for piece in _PIECE.findall(text):
        if len(piece) <= 5:
            n += 1
        elif piece.isascii():
            n += -(-len(piece) // 4)
        else:
            n += int(-(-len(piece) // 1.5))
    return n


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        " hello",
        "it's  don't we'll they've you're I'd I'm",
        "a  b\t\tc\n\n\n   x",
        "1234567 12 1",
        "___ x_y __init__",
        "\x1c\x1d\x1e\x1f separators Python's \\s knows",
        "!!!!!!!!!!!! ?? .",
        "a" * 300,
        " " * 1000,
        "é café naïve 東京 — ünïcödé",
    ],
)
def test_counts_equal_the_reference(text: str) -> None:
    assert count_tokens(text) == _reference(text)


def test_random_ascii_and_mixed_text_counts_equal_the_reference() -> None:
    rng = random.Random(0)
    alphabet = [*"aZ09_ '\t\n\r\x0b\x0c\x1c\x1f\x7f!?.,;sdmtlvre", "ll", "ve", "re", "  ", "é"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert count_tokens(text) == _reference(text), repr(text)


def test_message_tokens_add_framing() -> None:
    assert count_message_tokens(["hello", "world"]) == 2 + 4 * 2 + 3
