"""Validation of incoming chat-completions bodies, and the routing-field guard.

Checks are explicit and cheap (one ``orjson.loads``, one walk of the body), not a pydantic
model: the hot path parses once. Every failure is an
:class:`~turnout.errors.InvalidRequestError` naming the field (``param``) and the bad value.

Security rule: no field of the body may change where a request goes or which credentials it
uses. A key named like ``api_base``, ``base_url``, ``api_key``, ``api_version``,
``organization`` (compared without case, ``-`` or ``_``) anywhere in the body -- top level,
``extra_body``, ``metadata``, inside messages -- is refused with 400 before anything leaves the
machine. JSON Schemas the caller supplies (``tools[].function.parameters``,
``response_format.json_schema.schema``) are data, not settings, and are not scanned: a tool
may well take a ``base_url`` argument.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.errors import InvalidRequestError

__all__ = ["FORBIDDEN_KEYS", "find_forbidden_key", "parse_chat_body"]

#: Normalised (lower-case, no ``-``/``_``) keys that could redirect a request or swap its key.
FORBIDDEN_KEYS = frozenset(
    k.replace("_", "")
    for k in (
        "api_base",
        "base_url",
        "baseurl",
        "api_key",
        "apikey",
        "api_version",
        "api_type",
        "organization",
        "organization_id",
        "custom_llm_provider",
        "azure_endpoint",
        "azure_deployment",
        "azure_ad_token",
        "azure_ad_token_provider",
        "extra_headers",
        "default_headers",
        "http_client",
        "proxy",
        "proxies",
        "endpoint_url",
        "url_override",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "vertex_credentials",
        "vertex_project",
        "vertex_location",
        "credentials",
        "access_token",
        "bearer_token",
        "authorization",
    )
)
# Subtrees that are JSON Schemas (caller data), keyed by the parent key that holds them.
_SCHEMA_KEYS = frozenset({"parameters", "schema"})
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool"})
_INT_FIELDS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_NUMBER_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def _normalise(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def find_forbidden_key(value: Any, path: str = "") -> str | None:
    """The dotted path of the first routing or credential key in ``value``, or ``None``.

    Args:
        value: A parsed JSON value (the request body).
        path: Path prefix for the result.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                key_s = str(key)
                here = f"{where}.{key_s}" if where else key_s
                if _normalise(key_s) in FORBIDDEN_KEYS:
                    return here
                if key_s in _SCHEMA_KEYS and isinstance(child, dict):
                    continue
                if isinstance(child, dict | list):
                    stack.append((child, here))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                if isinstance(child, dict | list):
                    stack.append((child, f"{where}[{i}]"))
    return None


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        raise _bad(
            f"`messages` must be a non-empty array of message objects; got {_type_name(messages)}",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _bad("`messages` must be a non-empty array of message objects; got []", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(
                f"`messages[{i}]` must be an object; got {_type_name(message)}",
                f"messages[{i}]",
                "invalid_type",
            )
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(
                f"`messages[{i}].role` must be one of {sorted(_ROLES)}; got {role!r}",
                f"messages[{i}].role",
            )
        content = message.get("content")
        if content is None and role in _CONTENT_REQUIRED:
            raise _bad(
                f"`messages[{i}].content` must be a string or an array of content parts for a "
                f"{role} message; got null (only an assistant message with tool_calls may omit "
                "it)",
                f"messages[{i}].content",
                "invalid_type",
            )
        if content is not None and not isinstance(content, str | list):
            raise _bad(
                f"`messages[{i}].content` must be a string or an array of content parts; "
                f"got {_type_name(content)}",
                f"messages[{i}].content",
                "invalid_type",
            )


def _check_scalars(body: dict[str, Any]) -> None:
    for name in _INT_FIELDS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _bad(f"`{name}` must be an integer; got {value!r}", name, "invalid_type")
        if name in ("max_tokens", "max_completion_tokens", "n") and value is not None and value < 1:
            raise _bad(f"`{name}` must be >= 1; got {value}", name)
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise _bad(f"`{name}` must be a number; got {value!r}", name, "invalid_type")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad(f"`stream` must be a boolean; got {stream!r}", "stream", "invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad(
            f"`stream_options` must be an object; got {_type_name(options)}",
            "stream_options",
            "invalid_type",
        )
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _bad(f"`tools` must be an array; got {_type_name(tools)}", "tools", "invalid_type")


def parse_chat_body(raw: bytes) -> dict[str, Any]:
    """Parse and validate a chat-completions request body.

    Args:
        raw: The request body bytes.

    Returns:
        The body as a dict with a string ``model`` and a non-empty ``messages`` array.

    Raises:
        InvalidRequestError: Invalid JSON, a body that is not an object, a missing or mistyped
            field, an empty ``messages``, or a routing/credential field anywhere
            (code ``forbidden_field``).
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError(
            f"the request body must be a JSON object; got {_type_name(body)}",
            code="invalid_type",
        )
    forbidden = find_forbidden_key(body)
    if forbidden is not None:
        raise InvalidRequestError(
            f"`{forbidden}` is not allowed: request fields cannot choose the upstream, its URL "
            "or its credentials (the gateway's config does)",
            param=forbidden,
            code="forbidden_field",
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(
            f"`model` must be a non-empty string (a route alias such as 'auto'); got {model!r}",
            "model",
            "missing_field" if model is None else "invalid_type",
        )
    _check_messages(body.get("messages"))
    _check_scalars(body)
    return body
