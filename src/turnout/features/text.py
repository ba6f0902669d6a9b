"""Text and request signals from an OpenAI chat-completions body, whatever its message shapes.

Handles string content, arrays of content parts (``text``, ``image_url``, ``input_audio``,
``file``), system/developer messages, multi-turn conversations, assistant tool calls and tool
results. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from turnout.features.tokens import count_message_tokens
from turnout.types import RouteRequest

__all__ = ["message_text", "messages_text", "route_request_from_chat"]


def message_text(message: Mapping[str, Any]) -> str:
    """All text of one chat message: content (string or text parts) and tool-call arguments.

    Args:
        message: One OpenAI chat message.

    Returns:
        The text, parts joined by newlines; ``""`` if there is none.
    """
    content = message.get("content")
    if type(content) is str and not message.get("tool_calls"):
        return content  # the common shape, as the general path below would join it
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, Sequence):
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping):
            fn = call.get("function")
            if isinstance(fn, Mapping):
                parts.append(f"{fn.get('name', '')}({fn.get('arguments', '')})")
    return "\n".join(p for p in parts if p)


def messages_text(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The text of each message, in order (see :func:`message_text`)."""
    return [message_text(m) for m in messages if isinstance(m, Mapping)]


def _has_image(messages: Sequence[Mapping[str, Any]]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and part.get("type") in ("image_url", "image"):
                    return True
    return False


def _required_capabilities(body: Mapping[str, Any], messages: Sequence[Any]) -> frozenset[str]:
    needed = set()
    if _has_image(messages):
        needed.add("vision")
    if body.get("tools") or body.get("functions"):
        needed.add("tools")
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        needed.add("json_schema")
    if body.get("reasoning_effort") is not None:
        needed.add("reasoning")
    return frozenset(needed)


def route_request_from_chat(
    body: Mapping[str, Any],
    *,
    allowed_models: frozenset[str] | None = None,
    max_cost_usd: float | None = None,
    max_latency_s: float | None = None,
    max_ttft_s: float | None = None,
    tier: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> RouteRequest:
    """Build a :class:`RouteRequest` from an OpenAI chat-completions body.

    The body is assumed already validated (a dict with a non-empty ``messages`` list); the
    gateway validates it first. Unknown shapes inside messages are skipped, never fatal.

    Args:
        body: The parsed JSON request body.
        allowed_models: Restrict candidates to these model ids.
        max_cost_usd: Per-request cost ceiling, USD.
        max_latency_s: Latency SLO, seconds.
        max_ttft_s: Time-to-first-token SLO, seconds.
        tier: ``"interactive"`` or ``"batch"``.
        metadata: Caller metadata for rules and the ledger.

    Returns:
        The request's text, last user prompt, estimated input tokens and needed capabilities.
    """
    raw = body.get("messages") or []
    messages = [m for m in raw if isinstance(m, Mapping)]
    texts = messages_text(messages)
    users = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
    max_out = body.get("max_completion_tokens", body.get("max_tokens"))
    return RouteRequest(
        text="\n".join(texts),
        prompt=users[-1] if users else (texts[-1] if texts else ""),
        input_tokens=count_message_tokens(texts),
        max_output_tokens=max_out if isinstance(max_out, int) and max_out > 0 else None,
        required_capabilities=_required_capabilities(body, messages),
        allowed_models=allowed_models,
        max_cost_usd=max_cost_usd,
        max_latency_s=max_latency_s,
        max_ttft_s=max_ttft_s,
        tier=tier,
        metadata=dict(metadata or {}),
    )
