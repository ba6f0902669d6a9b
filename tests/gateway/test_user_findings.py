"""Problems a new user found, end to end: openai client -> uvicorn gateway -> loopback upstreams.

Null message content, a malformed upstream success, ``/v1/models`` per key, and one style of
``param`` (``messages[0].content``) with a code on every error.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from gateway_helpers import base_config, deployment

from turnout.storage.base import KeySpec
from turnout.testing.upstream import Reply

USER = [{"role": "user", "content": "hello"}]


def _two(upstreams: Any, gateway: Any, routes: dict[str, Any] | None = None) -> Any:
    a, b = upstreams(), upstreams()
    deps = {"dep-a": deployment(a.base_url, "model-a"), "dep-b": deployment(b.base_url, "model-b")}
    routes = routes or {
        "auto": {"candidates": ["model-a", "model-b"], "policy": "cheapest"},
        "solo": {"candidates": ["model-a"]},
    }
    return a, b, gateway(base_config(deps, routes))


@pytest.mark.parametrize("role", ["user", "system", "tool"])
def test_null_content_is_a_400_and_never_forwarded(upstreams, gateway, role):
    a, b, gw = _two(upstreams, gateway)
    message: dict[str, Any] = {"role": role, "content": None}
    if role == "tool":
        message["tool_call_id"] = "call_1"
    with gw.client() as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=[*USER, message])
    body = info.value.body
    del info
    assert isinstance(body, dict)
    assert body["param"] == "messages[1].content" and body["code"] == "invalid_type"
    assert "got null" in body["message"]
    assert a.requests == [] and b.requests == []


def test_assistant_with_tool_calls_may_have_null_content(upstreams, gateway):
    a, _, gw = _two(upstreams, gateway)
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    out = gw.client().chat.completions.create(model="solo", messages=messages)
    assert out.choices[0].message.content == "ok" and len(a.requests) == 1


def test_malformed_upstream_success_is_an_upstream_error_with_fallback(upstreams, gateway):
    a, b, gw = _two(upstreams, gateway)
    a.script(default=Reply(body={"weird": True}))
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert raw.parse().choices[0].message.content == "ok"
    with gw.client() as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="solo", messages=USER)
    status = info.value.status_code
    del info
    assert status == 503  # every attempt failed as an upstream error: none relayed as 200
    row = gw.rows()[-1]
    assert row.status != "ok"


def test_models_lists_only_what_the_key_may_use(upstreams, gateway):
    _, _, gw = _two(upstreams, gateway)
    narrow = gw.create_key(KeySpec("narrow", allowed_routes=frozenset({"solo"})))
    assert [m.id for m in gw.client(api_key=narrow).models.list()] == ["solo"]
    everything = {"auto", "solo", "model-a", "model-b"}
    assert {m.id for m in gw.client().models.list()} == everything
    anonymous = httpx.get(f"{gw.url}/v1/models").json()["data"]  # keys not required here
    assert {m["id"] for m in anonymous} == everything


def test_every_error_has_a_code_and_bracketed_params(upstreams, gateway):
    _, _, gw = _two(upstreams, gateway)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": USER, "metadata": {"a": [{"api_key": "k"}]}}, "metadata.a[0].api_key"),
    ]
    for body, param in cases:
        r = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", **body})
        error = r.json()["error"]
        assert r.status_code == 400 and error["param"] == param and error["code"], error
