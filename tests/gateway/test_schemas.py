"""Request validation and the routing-field guard, without a server."""

from __future__ import annotations

import orjson
import pytest

from turnout.errors import InvalidRequestError
from turnout.gateway.schemas import find_forbidden_key, parse_chat_body

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"api_base": "x"}, "api_base"),
        ({"baseURL": "x"}, "baseURL"),
        ({"extra_body": {"Api-Key": "x"}}, "extra_body.Api-Key"),
        ({"metadata": {"deep": [{"organization": "o"}]}}, "metadata.deep[0].organization"),
        (
            {"messages": [{"role": "user", "content": "hi", "api_version": "1"}]},
            "messages[0].api_version",
        ),
        ({"extra_headers": {"x": "y"}}, "extra_headers"),
    ],
)
def test_forbidden_keys_are_found_at_any_depth(body, path):
    assert find_forbidden_key(body) == path
    with pytest.raises(InvalidRequestError, match="not allowed") as info:
        parse_chat_body(orjson.dumps({"model": "auto", "messages": MSG, **body}))
    assert info.value.param == path and info.value.status_code == 400


def test_json_schemas_may_name_such_properties():
    tool = {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {"type": "object", "properties": {"base_url": {"type": "string"}}},
        },
    }
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"properties": {"api_key": {}}}},
    }
    body = {"model": "auto", "messages": MSG, "tools": [tool], "response_format": schema}
    assert parse_chat_body(orjson.dumps(body))["tools"] == [tool]


def test_error_names_the_field_and_value():
    with pytest.raises(
        InvalidRequestError, match=r"`messages\[0\]\.role` must be one of .* got 'robot'"
    ) as info:
        parse_chat_body(b'{"model": "auto", "messages": [{"role": "robot", "content": "x"}]}')
    assert info.value.param == "messages[0].role"
    with pytest.raises(InvalidRequestError, match="`max_tokens` must be >= 1; got 0"):
        parse_chat_body(orjson.dumps({"model": "auto", "messages": MSG, "max_tokens": 0}))
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        parse_chat_body(b"\xff\xfe")
