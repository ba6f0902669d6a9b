"""Pure translation between OpenAI chat-completions and the Google Gemini API.

Wire format: https://ai.google.dev/api/generate-content (``models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, whose SSE events carry no event name and each hold one
whole ``GenerateContentResponse``). No I/O here.

Usage: ``promptTokenCount`` already includes ``cachedContentTokenCount``;
``candidatesTokenCount`` excludes ``thoughtsTokenCount``, which turnout counts as output
(reasoning) tokens; ``toolUsePromptTokenCount`` is input. Stream chunks carry cumulative
``usageMetadata``; the last one wins.

Thought signatures: Gemini 3 models return a ``thoughtSignature`` beside each
``functionCall`` and require it back on the next turn. OpenAI tool calls have no such field,
so the signature travels inside the tool call id (``<id>__thought__<signature>``) and is
restored by :func:`to_wire`.
"""

from __future__ import annotations

import json
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

PROVIDER = "gemini"

#: Gemini ``finishReason`` -> OpenAI ``finish_reason`` (``STOP`` with calls -> tool_calls).
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}

_CONTEXT_TOO_LONG = re.compile(r"exceeds the maximum number of tokens|input token count", re.I)
_GENERATION = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def _user_parts(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(message, index)):
        where = f"messages[{index}].content[{j}]"
        if part["type"] == "text":
            parts.append({"text": part["text"]})
        elif part["type"] == "image_url":
            image = image_ref(part, where)
            if image.url is not None:
                data: dict[str, Any] = {"fileUri": image.url}
                if image.media_type:
                    data["mimeType"] = image.media_type
                parts.append({"fileData": data})
            else:
                parts.append(
                    {"inlineData": {"mimeType": image.media_type, "data": image.base64_data}}
                )
        elif part["type"] == "file":
            document = file_ref(part, where)
            parts.append(
                {"inlineData": {"mimeType": document.media_type, "data": document.base64_data}}
            )
        else:
            raise unsupported_part_error(where, part["type"], PROVIDER)
    return parts


def _model_parts(
    message: Mapping[str, Any], index: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"text": p["text"]} for p in content_parts(message, index) if p["type"] == "text"
    ]
    for k, call in enumerate(message.get("tool_calls") or ()):
        where = f"messages[{index}].tool_calls[{k}]"
        fn = tool_call_function(call, where)
        names[call["id"]] = fn["name"]
        wire: dict[str, Any] = {
            "functionCall": {
                "name": fn["name"],
                "args": parse_tool_arguments(fn.get("arguments"), f"{where}.function.arguments"),
            }
        }
        _, _, signature = str(call["id"]).partition(SIGNATURE_SEPARATOR)
        if signature:
            wire["thoughtSignature"] = signature
        parts.append(wire)
    return parts


def _function_response(
    message: Mapping[str, Any], index: int, names: Mapping[str, str]
) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise InvalidRequestError(
            f"`messages[{index}].tool_call_id` {call_id!r} matches no earlier assistant tool "
            "call (gemini needs the function name)",
            param=f"messages[{index}].tool_call_id",
        )
    text = tool_result_text(message, index)
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": names[call_id], "response": response}}


def _contents(
    rest: list[tuple[int, Mapping[str, Any]]], prefix: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, message in rest:
        role = message.get("role")
        if role == "user":
            parts, wire_role = prefix + _user_parts(message, index), "user"
            prefix = []
            if not parts:
                raise empty_user_turn_error(index, PROVIDER)
        elif role == "assistant":
            parts, wire_role = _model_parts(message, index, names), "model"
            if not parts:  # an empty assistant turn: Gemini rejects empty parts, so drop it
                continue
        elif role == "tool":
            parts, wire_role = [_function_response(message, index, names)], "user"
        else:
            raise role_error(index, role)
        if out and out[-1]["role"] == wire_role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": wire_role, "parts": parts})
    if not out:
        raise no_turns_error()
    return out


def _tools(body: Mapping[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    declarations = []
    for k, tool in enumerate(body.get("tools") or ()):
        fn = tool_function(tool, k)
        entry: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            entry["description"] = fn["description"]
        if fn.get("parameters"):
            entry["parametersJsonSchema"] = fn["parameters"]
        declarations.append(entry)
    if declarations:
        wire["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    config: dict[str, Any] | None = None
    if choice in ("auto", "required", "none"):
        config = {"mode": {"auto": "AUTO", "required": "ANY", "none": "NONE"}[choice]}
    elif isinstance(choice, Mapping) and (choice.get("function") or {}).get("name"):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    elif choice is not None:
        raise tool_choice_error(choice)
    if config is not None:
        wire["toolConfig"] = {"functionCallingConfig": config}
    return wire


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config = {wire: body[key] for key, wire in _GENERATION.items() if body.get(key) is not None}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = stop_sequences(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") == "json_object":
            config["responseMimeType"] = "application/json"
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            config["responseMimeType"] = "application/json"
            if schema:
                config["responseJsonSchema"] = schema
    return config


def to_wire(body: Mapping[str, Any], *, system_role: bool = True) -> dict[str, Any]:
    """Translate an OpenAI chat-completions body into a Gemini ``generateContent`` body.

    System and developer messages (strings or arrays of text parts, several merged in order)
    become ``systemInstruction``; with ``system_role=False`` their text is put first in the
    first user turn. Assistant turns become ``model`` turns, tool results ``functionResponse``
    parts. Empty text parts and empty assistant turns are dropped. Images keep their base64
    payload byte for byte (``inlineData``); https URLs become ``fileData``.

    Args:
        body: The caller's OpenAI chat-completions body.
        system_role: Whether the model accepts a system instruction.

    Returns:
        The Gemini request body (the model goes in the URL, not the body).

    Raises:
        InvalidRequestError: If the body cannot be expressed for Gemini; the message names the
            field (e.g. ``messages[3].tool_call_id``).
    """
    system_parts, rest = split_system(checked_messages(body, PROVIDER))
    wire: dict[str, Any] = {}
    prefix: list[dict[str, Any]] = []
    if system_parts and system_role:
        wire["systemInstruction"] = {"parts": [{"text": p["text"]} for p in system_parts]}
    elif system_parts:
        prefix = [{"text": "\n\n".join(p["text"] for p in system_parts)}]
    wire["contents"] = _contents(rest, prefix)
    wire.update(_tools(body))
    config = _generation_config(body)
    if config:
        wire["generationConfig"] = config
    return wire


def usage_from_wire(meta: Mapping[str, Any] | None) -> Usage:
    """Normalise Gemini ``usageMetadata`` (thoughts are output; cached reads are in the prompt)."""
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0)
        + int(meta.get("toolUsePromptTokenCount") or 0),
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        reasoning_tokens=thoughts,
    )


def _tool_call(part: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    call = part["functionCall"]
    if part.get("thoughtSignature"):
        call_id = f"{call_id}{SIGNATURE_SEPARATOR}{part['thoughtSignature']}"
    return tool_call(call_id, call.get("name", ""), call.get("args"))


def _finish_reason(reason: str | None, has_calls: bool) -> str:
    finish = FINISH_REASONS.get(reason or "STOP", "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def from_wire(
    response: Mapping[str, Any], *, created: int, model: str, call_id_prefix: str
) -> dict[str, Any]:
    """Translate a Gemini ``GenerateContentResponse`` into an OpenAI ``chat.completion``.

    Args:
        response: The Gemini response body.
        created: Unix time, seconds, for the ``created`` field.
        model: The model name to report.
        call_id_prefix: Prefix of generated tool call ids (``<prefix>_<n>``), when Gemini
            gives none.

    Returns:
        The OpenAI response body, ``usage`` included. A prompt blocked by safety filters
        (no candidates) gives empty content with ``finish_reason`` ``"content_filter"``.
    """
    candidates = response.get("candidates") or []
    candidate = candidates[0] if candidates else {}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            call_id = part["functionCall"].get("id") or f"{call_id_prefix}_{len(tool_calls)}"
            tool_calls.append(_tool_call(part, call_id))
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
    reason = candidate.get("finishReason") if candidates else "SAFETY"
    return completion(
        response_id=response.get("responseId") or call_id_prefix,
        created=created,
        model=model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=_finish_reason(reason, bool(tool_calls)),
        usage=usage_from_wire(response.get("usageMetadata")),
    )


def _retry_delay_s(error: Mapping[str, Any], retry_after: str | None) -> float | None:
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            try:
                return float(delay.rstrip("s"))
            except ValueError:
                break
    return retry_after_number(retry_after)


def _api_key_invalid(error: Mapping[str, Any]) -> bool:
    return any(
        isinstance(d, Mapping) and d.get("reason") == "API_KEY_INVALID"
        for d in error.get("details") or ()
    )


def error_from_wire(
    status_code: int | None, body: Any, retry_after: str | None = None
) -> ProviderError:
    """Map a Gemini error (HTTP status and body, or an error inside a stream).

    ``RESOURCE_EXHAUSTED``/429 becomes :class:`RateLimited` (``retry_after_s`` from the
    ``RetryInfo`` detail or the ``retry-after`` header); ``UNAVAILABLE``/503 (overloaded),
    ``INTERNAL`` and other 5xx a retryable :class:`ProviderError`; ``UNAUTHENTICATED``,
    ``PERMISSION_DENIED`` or an invalid API key :class:`AuthFailed`; a prompt over the token
    limit :class:`ContextTooLong`; other 4xx :class:`UpstreamBadRequest`.

    Args:
        status_code: HTTP status, or ``None`` for an error inside a stream (then the body's
            ``error.code`` is used).
        body: ``{"error": {"code": ..., "message": ..., "status": ..., "details": [...]}}``
            or raw text.
        retry_after: The ``retry-after`` header value, seconds, if any.

    Returns:
        The error to raise.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    status = str(error.get("status", ""))
    text = str(error.get("message", "")) if error else str(body or "")[:500]
    code = status_code if status_code is not None else error.get("code")
    code = code if isinstance(code, int) else None
    message = f"gemini {code or 'stream'} {status or 'error'}: {text}".strip()
    common: dict[str, Any] = {"provider": PROVIDER, "status_code": code, "body": body}
    if status == "RESOURCE_EXHAUSTED" or code == 429:
        return RateLimited(message, retry_after_s=_retry_delay_s(error, retry_after), **common)
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or code in (401, 403):
        return AuthFailed(message, **common)
    if _api_key_invalid(error):
        return AuthFailed(message, **common)
    if code is not None and 400 <= code < 500:
        if _CONTEXT_TOO_LONG.search(text):
            return ContextTooLong(message, **common)
        return UpstreamBadRequest(message, **common)
    return ProviderError(message, retryable=True, **common)
