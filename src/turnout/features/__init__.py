"""Features of a request: text from any message shape, token counts, and text encoders.

The encoders (:mod:`turnout.features.encoders`: ``HashingEncoder``, ``WordHashingEncoder``,
``SentenceEncoder``, ``ENCODERS``, ``make_encoder``) are exported lazily, so that importing
turnout does not import scipy.
"""

from typing import Any

from turnout.features.text import message_text, messages_text, route_request_from_chat
from turnout.features.tokens import count_message_tokens, count_tokens

_ENCODER_NAMES = frozenset(
    {"ENCODERS", "HashingEncoder", "SentenceEncoder", "WordHashingEncoder", "make_encoder"}
)

__all__ = [
    "ENCODERS",
    "HashingEncoder",
    "SentenceEncoder",
    "WordHashingEncoder",
    "count_message_tokens",
    "count_tokens",
    "make_encoder",
    "message_text",
    "messages_text",
    "route_request_from_chat",
]


def __getattr__(name: str) -> Any:
    if name in _ENCODER_NAMES:
        from turnout.features import encoders

        return getattr(encoders, name)
    raise AttributeError(f"module 'turnout.features' has no attribute {name!r}")
