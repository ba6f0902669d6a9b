"""Pure translation between OpenAI chat-completions and the Anthropic Messages API.

Wire format: https://docs.anthropic.com/en/api/messages (request and response) and
https://docs.anthropic.com/en/docs/build-with-claude/streaming (SSE events). No I/O here.

Usage: Anthropic's ``input_tokens`` exclude cache reads (``cache_read_input_tokens``) and
cache writes (``cache_creation_input_tokens``); turnout's :class:`~turnout.types.Usage` counts
all three as input. In a stream, ``message_start`` and ``message_delta`` both carry usage and
the counts in ``message_delta`` are cumulative, so the last value of each field wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from turnout.errors import (
    AuthFailed,
    ContextTooLong,
    InvalidRequestError,
    ProviderError,
    RateLimited,
    UpstreamBadRequest,
)
from turnout.providers._http import retry_after_number
from turnout.providers._openai_answer import completion, tool_call
from turnout.providers._openai_parts import (
    SIGNATURE_SEPARATOR,
    checked_messages,
    content_parts,
    empty_user_turn_error,
    file_ref,
    image_ref,
    no_turns_error,
    parse_tool_arguments,
    role_error,
    split_system,
    stop_sequences,
    tool_call_function,
    tool_choice_error,
    tool_function,
    tool_result_text,
    unsupported_part_error,
)
from turnout.types import Usage

__all__ = [
    "FINISH_REASONS",
    "error_from_wire",
    "from_wire",
    "to_wire",
    "usage_from_wire",
]

PROVIDER = "anthropic"

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason``.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_PASSED_ON = ("temperature", "top_p", "top_k")
_NOT_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def wire_tool_id(call_id: str) -> str:
    """A tool call id as Anthropic accepts it (``^[a-zA-Z0-9_-]+$``).

    Ids made by other providers are mapped the same way in tool calls and tool results, so they
    still match: a Gemini thought signature carried in the id is cut off, and any other
    character is replaced by ``_``.
    """
    base = call_id.partition(SIGNATURE_SEPARATOR)[0] or call_id
    return _NOT_ID_CHARS.sub("_", base)[:200]


_CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|too many (input )?tokens|context (window|limit|length)", re.I
)


def _user_blocks(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(message, index)):
        where = f"messages[{index}].content[{j}]"
        if part["type"] == "text":
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
        elif part["type"] == "image_url":
            image = image_ref(part, where)
            if image.url is not None:
                source: dict[str, Any] = {"type": "url", "url": image.url}
            else:
                source = {
                    "type": "base64",
                    "media_type": image.media_type,
                    "data": image.base64_data,
                }
            block = {"type": "image", "source": source}
        elif part["type"] == "file":
            document = file_ref(part, where)
            if document.media_type != "application/pdf":
                raise InvalidRequestError(
                    f"`{where}.file.file_data`: the anthropic provider takes PDF files only; "
                    f"got {document.media_type!r}",
                    param=f"{where}.file.file_data",
                )
            source = {"type": "base64", "media_type": "application/pdf"}
            block = {"type": "document", "source": {**source, "data": document.base64_data}}
        else:
            raise unsupported_part_error(where, part["type"], PROVIDER)
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _assistant_blocks(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    blocks = [
        {"type": "text", "text": p["text"]}
        for p in content_parts(message, index)
        if p["type"] == "text"
    ]
    for k, call in enumerate(message.get("tool_calls") or ()):
        where = f"messages[{index}].tool_calls[{k}]"
        fn = tool_call_function(call, where)
        blocks.append(
            {
                "type": "tool_use",
                "id": wire_tool_id(str(call["id"])),
                "name": fn["name"],
                "input": parse_tool_arguments(fn.get("arguments"), f"{where}.function.arguments"),
            }
        )
    return blocks


def _messages(
    rest: list[tuple[int, Mapping[str, Any]]], system_prefix: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    prefix = list(system_prefix)
    call_ids: set[str] = set()  # ids of the tool calls made by earlier assistant turns
    for index, message in rest:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                if isinstance(call, Mapping) and call.get("id") is not None:
                    call_ids.add(str(call["id"]))
        if role == "user":
            blocks = prefix + _user_blocks(message, index)
            prefix = []
            if not blocks:
                raise empty_user_turn_error(index, PROVIDER)
            wire_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, index)
            if not blocks:  # an empty assistant turn: Anthropic rejects it, so drop it
                continue
            wire_role = "assistant"
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequestError(
                    f"`messages[{index}].tool_call_id` must be a non-empty string; got {call_id!r}",
                    param=f"messages[{index}].tool_call_id",
                    code="invalid_type",
                )
            if call_id not in call_ids:
                raise InvalidRequestError(
                    f"`messages[{index}].tool_call_id` {call_id!r} matches no earlier assistant "
                    "tool call (anthropic needs each tool result to answer one)",
                    param=f"messages[{index}].tool_call_id",
                    code="invalid_value",
                )
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_tool_id(call_id)}
            text = tool_result_text(message, index)
            if text:
                result["content"] = text
            blocks, wire_role = [result], "user"
        else:
            raise role_error(index, role)
        if out and out[-1]["role"] == wire_role:  # tool results and user text share a turn
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": wire_role, "content": blocks})
    if not out:
        raise no_turns_error()
    return out


def _tools(body: Mapping[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    tools = body.get("tools")
    if tools:
        out = []
        for k, tool in enumerate(tools):
            fn = tool_function(tool, k)
            entry: dict[str, Any] = {
                "name": fn["name"],
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            if fn.get("description"):
                entry["description"] = fn["description"]
            out.append(entry)
        wire["tools"] = out
    choice = body.get("tool_choice")
    wire_choice: dict[str, Any] | None = None
    if choice == "auto":
        wire_choice = {"type": "auto"}
    elif choice == "required":
        wire_choice = {"type": "any"}
    elif choice == "none":
        wire_choice = {"type": "none"}
    elif isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise InvalidRequestError(
                f"`tool_choice.function.name` must be set; got {choice!r:.80}",
                param="tool_choice",
            )
        wire_choice = {"type": "tool", "name": name}
    elif choice is not None:
        raise tool_choice_error(choice)
    if body.get("parallel_tool_calls") is False and tools:
        wire_choice = {**(wire_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if wire_choice is not None:
        wire["tool_choice"] = wire_choice
    return wire


def to_wire(
    body: Mapping[str, Any],
    *,
    model: str,
    default_max_tokens: int = 4096,
    system_role: bool = True,
) -> dict[str, Any]:
    """Translate an OpenAI chat-completions body into an Anthropic Messages request body.

    System and developer messages (strings or arrays of text parts, several merged in order)
    become the top-level ``system`` blocks; with ``system_role=False`` (a model that accepts no
    system prompt) their text is put first in the first user turn instead. Empty text parts
    and empty assistant turns are dropped; consecutive tool results and user turns are merged
    into one user turn. Images and PDF files keep their base64 payload byte for byte.
    ``response_format: json_object`` is dropped (the prompt asks for JSON); ``json_schema``
    and ``n > 1`` are refused; ``reasoning_effort`` is not translated (no extended thinking).

    Args:
        body: The caller's OpenAI chat-completions body.
        model: The upstream model name to put in the body.
        default_max_tokens: ``max_tokens`` when the caller gave none (Anthropic requires it).
        system_role: Whether the model accepts a system prompt.

    Returns:
        The Anthropic request body (without ``stream``).

    Raises:
        InvalidRequestError: If the body cannot be expressed for Anthropic; the message names
            the field (e.g. ``messages[3].content``).
    """
    system_parts, rest = split_system(checked_messages(body, PROVIDER))
    system_blocks = []
    for part in system_parts:
        block: dict[str, Any] = {"type": "text", "text": part["text"]}
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        system_blocks.append(block)
    wire: dict[str, Any] = {"model": model}
    prefix: list[dict[str, Any]] = []
    if system_blocks and system_role:
        wire["system"] = system_blocks
    elif system_blocks:
        prefix = [{"type": "text", "text": "\n\n".join(b["text"] for b in system_blocks)}]
    wire["messages"] = _messages(rest, prefix)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    wire["max_tokens"] = max_tokens
    for key in _PASSED_ON:
        if body.get(key) is not None:
            wire[key] = body[key]
    stop = body.get("stop")
    if stop:
        wire["stop_sequences"] = stop_sequences(stop)
    if isinstance(body.get("user"), str):
        wire["metadata"] = {"user_id": body["user"]}
    response_format = body.get("response_format")
    # json_object only asks for JSON, which the prompt must already request (OpenAI requires
    # it): dropped. A schema cannot be enforced here: 400 (the catalog gives Claude models no
    # json_schema capability, so the router does not send such requests to them).
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        raise InvalidRequestError(
            "`response_format.type` 'json_schema' is not supported by the anthropic provider",
            param="response_format",
        )
    wire.update(_tools(body))
    return wire


def usage_from_wire(usage: Mapping[str, Any] | None) -> Usage:
    """Normalise an Anthropic ``usage`` object (input excludes cache reads and writes)."""
    usage = usage or {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        cached_input_tokens=cache_read,
        cache_write_input_tokens=cache_write,
        output_tokens=int(usage.get("output_tokens") or 0),
    )


def from_wire(response: Mapping[str, Any], *, created: int, model: str) -> dict[str, Any]:
    """Translate an Anthropic Messages response into an OpenAI ``chat.completion`` object.

    Text blocks are concatenated into ``message.content``; ``tool_use`` blocks become
    ``message.tool_calls`` (arguments as a JSON string); thinking blocks are not shown.

    Args:
        response: The Anthropic response body.
        created: Unix time, seconds, for the ``created`` field.
        model: The model name to report.

    Returns:
        The OpenAI response body, ``usage`` included.
    """
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in response.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(tool_call(block["id"], block["name"], block.get("input")))
    stop_reason = response.get("stop_reason")
    return completion(
        response_id=response.get("id", ""),
        created=created,
        model=model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=FINISH_REASONS.get(stop_reason or "end_turn", "stop"),
        usage=usage_from_wire(response.get("usage")),
    )


def error_from_wire(
    status_code: int | None, body: Any, retry_after: str | None = None
) -> ProviderError:
    """Map an Anthropic error (HTTP status and body, or an in-stream ``error`` event).

    Rate limits become :class:`RateLimited` (``retry_after_s`` from the ``retry-after``
    header), ``overloaded_error``/529 and 5xx a retryable :class:`ProviderError`,
    ``authentication_error``/``permission_error`` :class:`AuthFailed`, a prompt that does not
    fit :class:`ContextTooLong`, and other 4xx :class:`UpstreamBadRequest`.

    Args:
        status_code: HTTP status, or ``None`` for an error event inside a stream.
        body: ``{"type": "error", "error": {"type": ..., "message": ...}}`` or raw text.
        retry_after: The ``retry-after`` header value, seconds, if any.

    Returns:
        The error to raise.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    kind = str(error.get("type", "")) if isinstance(error, Mapping) else ""
    text = str(error.get("message", "")) if isinstance(error, Mapping) else str(body or "")[:500]
    message = f"anthropic {status_code or 'stream'} {kind or 'error'}: {text}".strip()
    common: dict[str, Any] = {"provider": PROVIDER, "status_code": status_code, "body": body}
    if kind == "rate_limit_error" or status_code == 429:
        return RateLimited(message, retry_after_s=retry_after_number(retry_after), **common)
    if kind == "overloaded_error" or status_code == 529:
        return ProviderError(message, retryable=True, **common)
    if kind in ("authentication_error", "permission_error") or status_code in (401, 403):
        return AuthFailed(message, **common)
    if _CONTEXT_TOO_LONG.search(text) and (status_code in (400, 413, None)):
        return ContextTooLong(message, **common)
    if kind in ("invalid_request_error", "not_found_error", "request_too_large") or (
        status_code is not None and 400 <= status_code < 500
    ):
        return UpstreamBadRequest(message, **common)
    return ProviderError(message, retryable=True, **common)
