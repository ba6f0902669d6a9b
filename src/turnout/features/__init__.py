"""Features of a request: text from any message shape, token counts, and text encoders."""

from turnout.features.text import message_text, messages_text, route_request_from_chat
from turnout.features.tokens import count_message_tokens, count_tokens

__all__ = [
    "count_message_tokens",
    "count_tokens",
    "message_text",
    "messages_text",
    "route_request_from_chat",
]
