"""Reading an OpenAI chat-completions body, shared by the non-OpenAI adapters.

Pure helpers: split system messages off, normalise content to a list of parts, decode data
URLs, parse tool-call arguments, and write turnout's :class:`~turnout.types.Usage` back as the
OpenAI ``usage`` object. Every problem with the caller's body raises
:class:`~turnout.errors.InvalidRequestError` naming the message index and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turnout.errors import InvalidRequestError
from turnout.types import Usage

__all__ = [
    "SIGNATURE_SEPARATOR",
    "ImageRef",
    "checked_messages",
    "content_parts",
    "empty_user_turn_error",
    "file_ref",
    "image_ref",
    "no_turns_error",
    "openai_usage",
    "parse_tool_arguments",
    "role_error",
    "split_system",
    "stop_sequences",
    "tool_call_function",
    "tool_choice_error",
    "tool_function",
    "tool_result_text",
    "unsupported_part_error",
]

#: Joins a tool call id and the Gemini thought signature carried inside it.
SIGNATURE_SEPARATOR = "__thought__"

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,", re.I)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image from an ``image_url`` content part.

    Attributes:
        media_type: IANA type (``"image/png"``), or ``None`` for a URL whose type is unknown.
        base64_data: The base64 payload exactly as the caller sent it (no re-encoding), or
            ``None`` for a URL.
        url: The ``https://`` (or ``http://``) URL, or ``None`` for inline data.
    """

    media_type: str | None
    base64_data: str | None
    url: str | None


_EXTENSION_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}


def image_ref(part: Mapping[str, Any], where: str) -> ImageRef:
    """Read an OpenAI ``image_url`` content part.

    Args:
        part: ``{"type": "image_url", "image_url": {"url": ...}}`` (a bare string URL is
            accepted too).
        where: Field path for error messages, e.g. ``"messages[2].content[1]"``.

    Returns:
        The image as inline base64 data or as a URL.

    Raises:
        InvalidRequestError: If the URL is missing, not a base64 data URL and not http(s).
    """
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, Mapping) else raw
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"`{where}.image_url.url` must be a non-empty string; got {url!r}",
            param=f"{where}.image_url.url",
        )
    match = _DATA_URL.match(url)
    if match:
        return ImageRef(match.group("mime").lower(), url[match.end() :], None)
    if url.startswith(("https://", "http://")):
        path = url.split("?", 1)[0].split("#", 1)[0].lower()
        ext = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
        return ImageRef(_EXTENSION_TYPES.get(ext), None, url)
    raise InvalidRequestError(
        f"`{where}.image_url.url` must be an https URL or a base64 data URL "
        f"(data:image/png;base64,...); got {url[:40]!r}",
        param=f"{where}.image_url.url",
    )


def file_ref(part: Mapping[str, Any], where: str) -> ImageRef:
    """Read an OpenAI ``file`` content part given inline (``file.file_data`` as a data URL).

    Args:
        part: ``{"type": "file", "file": {"file_data": "data:application/pdf;base64,...",
            "filename": ...}}``.
        where: Field path for error messages.

    Returns:
        The file's media type and base64 payload (exactly as sent).

    Raises:
        InvalidRequestError: If the part holds no inline base64 data URL (a ``file_id`` of
            OpenAI's Files API means nothing to other vendors).
    """
    raw = part.get("file")
    data = raw.get("file_data") if isinstance(raw, Mapping) else None
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None:
        raise InvalidRequestError(
            f"`{where}.file.file_data` must be a base64 data URL "
            "(data:application/pdf;base64,...); file ids are not supported for this provider",
            param=f"{where}.file.file_data",
        )
    assert isinstance(data, str)
    return ImageRef(match.group("mime").lower(), data[match.end() :], None)


def content_parts(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    """The message's content as a list of OpenAI content parts, empty text parts removed.

    Args:
        message: One OpenAI chat message.
        index: Its position in ``messages`` (for error messages).

    Returns:
        Parts of type ``"text"`` or ``"image_url"`` (and any other typed part, passed on);
        a string content becomes one text part; ``None`` becomes ``[]``.

    Raises:
        InvalidRequestError: If ``content`` is neither a string, a list of parts nor null.
    """
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"`messages[{index}].content` must be a string or a list of content parts; "
            f"got {type(content).__name__}",
            param=f"messages[{index}].content",
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequestError(
                f"`messages[{index}].content[{j}]` must be an object with a `type`; got {part!r}",
                param=f"messages[{index}].content[{j}]",
            )
        if part["type"] == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"`messages[{index}].content[{j}].text` must be a string; got {text!r}",
                    param=f"messages[{index}].content[{j}].text",
                )
            if not text:
                continue
        parts.append(dict(part))
    return parts


def split_system(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[int, Mapping[str, Any]]]]:
    """Separate system (and developer) messages from the conversation.

    Args:
        messages: The OpenAI ``messages`` list.

    Returns:
        ``(system_parts, rest)``: the non-empty text parts of every system/developer message,
        in order (several messages merged; extra keys such as ``cache_control`` kept), and the
        other messages with their original indices.

    Raises:
        InvalidRequestError: If a message is not an object, or a system message holds a part
            that is not text.
    """
    system: list[dict[str, Any]] = []
    rest: list[tuple[int, Mapping[str, Any]]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                f"`messages[{i}]` must be an object; got {type(message).__name__}",
                param=f"messages[{i}]",
            )
        if message.get("role") in ("system", "developer"):
            for j, part in enumerate(content_parts(message, i)):
                if part["type"] != "text":
                    raise InvalidRequestError(
                        f"`messages[{i}].content[{j}]`: a system message may hold only text "
                        f"parts; got type {part['type']!r}",
                        param=f"messages[{i}].content[{j}]",
                    )
                system.append(part)
        else:
            rest.append((i, message))
    return system, rest


def tool_result_text(message: Mapping[str, Any], index: int) -> str:
    """The text of a ``role: "tool"`` message (text parts joined without separator)."""
    return "".join(p["text"] for p in content_parts(message, index) if p["type"] == "text")


def parse_tool_arguments(arguments: Any, where: str) -> dict[str, Any]:
    """Parse an assistant tool call's ``function.arguments`` JSON string into an object.

    Raises:
        InvalidRequestError: If it is not a JSON object (an empty string counts as ``{}``).
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or arguments == "":
        return {}
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"`{where}` must be a JSON object string; got invalid JSON ({exc.msg})",
            param=where,
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"`{where}` must be a JSON object string; got {arguments!r:.60}", param=where
        )
    return value


def checked_messages(body: Mapping[str, Any], provider: str) -> list[Any]:
    """The body's ``messages``, once it is known to be a non-empty list and ``n`` to be 1.

    Raises:
        InvalidRequestError: If ``messages`` is not a non-empty list, or ``n`` is not 1 (the
            message names ``provider``).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("`messages` must be a non-empty list", param="messages")
    if (body.get("n") or 1) != 1:
        raise InvalidRequestError(
            f"`n` must be 1 for the {provider} provider; got {body['n']!r}", param="n"
        )
    return messages


def unsupported_part_error(where: str, part_type: Any, provider: str) -> InvalidRequestError:
    """The error for a content part of a type ``provider`` cannot take, at ``where``."""
    return InvalidRequestError(
        f"`{where}.type` {part_type!r} is not supported by the {provider} provider "
        "(supported: text, image_url, file)",
        param=f"{where}.type",
    )


def empty_user_turn_error(index: int, provider: str) -> InvalidRequestError:
    """The error for a user message at ``messages[index]`` with no content left."""
    return InvalidRequestError(
        f"`messages[{index}].content` is empty; the {provider} provider rejects empty user turns",
        param=f"messages[{index}].content",
    )


def role_error(index: int, role: Any) -> InvalidRequestError:
    """The error for a message at ``messages[index]`` whose ``role`` is unknown."""
    return InvalidRequestError(
        f"`messages[{index}].role` must be one of system, developer, user, assistant, "
        f"tool; got {role!r}",
        param=f"messages[{index}].role",
    )


def no_turns_error() -> InvalidRequestError:
    """The error for a body whose messages leave no user or assistant turn."""
    return InvalidRequestError(
        "`messages` holds no non-empty user or assistant message", param="messages"
    )


def tool_call_function(call: Any, where: str) -> Mapping[str, Any]:
    """The ``function`` of an assistant tool call at ``where``, once it has an id and a name.

    Raises:
        InvalidRequestError: If the call has no ``id`` or no ``function.name``.
    """
    fn = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(fn, Mapping) or not fn.get("name") or not call.get("id"):
        raise InvalidRequestError(
            f"`{where}` must have an `id` and a `function.name`; got {call!r:.80}",
            param=where,
        )
    return fn


def tool_function(tool: Any, k: int) -> Mapping[str, Any]:
    """The ``function`` of ``tools[k]``, once it is a function tool with a name.

    Raises:
        InvalidRequestError: If ``tools[k]`` is not ``{"type": "function", "function": {...}}``
            with a ``name``.
    """
    fn = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(fn, Mapping) or not fn.get("name"):
        raise InvalidRequestError(
            f"`tools[{k}]` must be {{'type': 'function', 'function': {{'name': ...}}}}; "
            f"got {tool!r:.80}",
            param=f"tools[{k}]",
        )
    return fn


def tool_choice_error(choice: Any) -> InvalidRequestError:
    """The error for a ``tool_choice`` that is not auto, required, none or a function."""
    return InvalidRequestError(
        f"`tool_choice` must be auto, required, none or a function; got {choice!r}",
        param="tool_choice",
    )


def stop_sequences(stop: Any) -> list[Any]:
    """OpenAI's ``stop`` (one string or a list of them) as a list."""
    return [stop] if isinstance(stop, str) else list(stop)


def openai_usage(usage: Usage) -> dict[str, Any]:
    """Write turnout's usage as OpenAI's ``usage`` object.

    ``prompt_tokens`` counts every input token (cache reads and writes included),
    ``completion_tokens`` every output token (reasoning included), as OpenAI reports them.
    """
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
