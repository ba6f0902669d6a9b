"""Issue 3's acceptance cases, against real loopback servers with the official openai client.

(The budget-concurrency case is the storage helper's test, tests/test_admission.py; the
gateway's settle/release on every path is tested in test_metering.py.)
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from gateway_helpers import base_config, deployment

from turnout.testing.upstream import Reply, content_chunk

USER = [{"role": "user", "content": "hello there"}]


def test_cached_prompt_usage_is_priced_exactly(upstreams, gateway):
    up = upstreams()
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    }
    up.script(Reply.ok("fine", usage=usage))
    gw = gateway(
        base_config(
            {"dep-x": deployment(up.base_url, "gpt-x")}, {"auto": {"candidates": ["gpt-x"]}}
        )
    )
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-cost-usd"] == "0.005615"
    assert "x-turnout-cost-estimated" not in raw.headers
    row = gw.rows()[-1]
    assert row.cost_usd == pytest.approx(0.005615, abs=1e-12)
    assert row.usage.cached_input_tokens == 1920 and row.usage.input_tokens == 2006
    assert row.cost_estimated is False


def test_rate_limited_deployment_falls_back_past_too_small_context(upstreams, gateway):
    a, b, c = upstreams(), upstreams(), upstreams()
    a.script(Reply.error(429, "slow down", headers={"retry-after": "30"}))
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
                "dep-c": deployment(c.base_url, "model-c"),
            },
            {"auto": {"candidates": ["model-a", "model-b", "model-c"]}},
        )
    )
    prompt = "word " * 10_000  # about 10k tokens: more than model-b's 8k context window
    started = time.perf_counter()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}]
    )
    assert time.perf_counter() - started < 5  # did not wait the 30 s Retry-After
    assert raw.headers["x-turnout-deployment"] == "dep-c"
    assert raw.headers["x-turnout-model"] == "model-c"
    assert len(a.requests) == 1 and len(b.requests) == 0 and len(c.requests) == 1
    row = gw.rows()[-1]
    assert [(x.deployment, x.status) for x in row.attempts] == [
        ("dep-a", "failed"),
        ("dep-c", "ok"),
    ]
    assert any(
        r["model"] == "model-b" and "context window" in r["reason"] for r in row.decision["removed"]
    )


def test_upstream_400_goes_back_as_is_without_retry_or_cooldown(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(Reply.error(400, "Unrecognized request argument: unknown parameter 'foo'"))
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            {"auto": {"candidates": ["model-a", "model-b"]}},
        )
    )
    client = gw.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=USER)
    assert info.value.status_code == 400
    assert "unknown parameter 'foo'" in info.value.message
    assert len(a.requests) == 1 and len(b.requests) == 0
    # A stays in rotation: the next request goes to A again and succeeds.
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-a"
    assert len(a.requests) == 2 and len(b.requests) == 0
    assert gw.app.state.runtime.deployments["dep-a"].breaker.state == "closed"


def test_stalled_deployment_times_out_and_fallback_serves_in_time(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(Reply.stalled())
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            {"auto": {"candidates": ["model-a", "model-b"]}},
        )
    )
    started = time.perf_counter()
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    elapsed = time.perf_counter() - started
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert 1.9 <= elapsed <= 2.6
    assert [x.error_class for x in gw.rows()[-1].attempts] == ["ProviderTimeout", None]


def test_stalled_deployment_without_fallback_gives_timeout_error(upstreams, gateway):
    a = upstreams()
    a.script(Reply.stalled())
    gw = gateway(
        base_config(
            {"dep-a": deployment(a.base_url, "model-a")}, {"auto": {"candidates": ["model-a"]}}
        )
    )
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="auto", messages=USER)
    elapsed = time.perf_counter() - started
    assert 1.9 <= elapsed <= 2.6
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"
    assert "dep-a" in info.value.message
    assert len(a.requests) == 1


def test_stream_error_before_content_falls_back(upstreams, gateway):
    a, b = upstreams(), upstreams()
    failing = Reply.stream(
        [
            content_chunk("m", {"role": "assistant", "content": ""}),
            {"error": {"message": "overloaded", "type": "server_error"}},
        ],
        end="close",
    )
    a.script(failing, failing)  # the first try and its one retry (max_retries_per_deployment)
    b.script(
        Reply.stream(
            [
                content_chunk("m", {"role": "assistant", "content": ""}),
                content_chunk("m", {"content": "Hello"}),
                content_chunk("m", {"content": " world"}),
                content_chunk("m", {}, "stop"),
            ]
        )
    )
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            {"auto": {"candidates": ["model-a", "model-b"]}},
        )
    )
    with gw.client().chat.completions.with_streaming_response.create(
        model="auto", messages=USER, stream=True
    ) as response:
        assert response.headers["x-turnout-deployment"] == "dep-b"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"]  # A's role chunk was never sent
    row = gw.rows()[-1]
    assert row.status == "ok" and row.deployment == "dep-b"
    assert [x.deployment for x in row.attempts] == ["dep-a", "dep-a", "dep-b"]
    assert len(a.requests) == 2 and len(b.requests) == 1


def test_stream_dropped_after_content_ends_with_error_event(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(
        Reply.stream(
            [
                content_chunk("m", {"role": "assistant", "content": ""}),
                content_chunk("m", {"content": "first "}),
                content_chunk("m", {"content": "second"}),
            ],
            end="drop",
        )
    )
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            {"auto": {"candidates": ["model-a", "model-b"]}},
        )
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in gw.client().chat.completions.create(model="auto", messages=USER, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["first ", "second"]
    assert "closed the connection" in info.value.message
    assert len(b.requests) == 0  # no fallback once content reached the client
    row = gw.rows()[-1]
    assert row.status == "failed"
    assert row.usage is not None and row.usage.estimated and row.usage.output_tokens >= 2
    assert row.cost_usd is not None and row.cost_usd > 0


@pytest.mark.parametrize("where", ["top", "extra_body_sdk", "extra_body_literal", "metadata"])
def test_routing_fields_are_refused_and_nothing_leaves(upstreams, gateway, where):
    up = upstreams()
    gw = gateway(
        base_config(
            {"dep-a": deployment(up.base_url, "model-a")}, {"auto": {"candidates": ["model-a"]}}
        )
    )
    evil = "http://169.254.169.254/"
    if where in ("top", "extra_body_literal", "metadata"):
        body: dict[str, object] = {"model": "auto", "messages": USER}
        if where == "top":
            body["api_base"] = evil
        elif where == "extra_body_literal":
            body["extra_body"] = {"api_base": evil}
        else:
            body["metadata"] = {"note": {"api_key": "sk-other"}}
        r = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {gw.api_key}"},
        )
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "forbidden_field"
    else:
        with pytest.raises(openai.BadRequestError) as info:
            gw.client().chat.completions.create(
                model="auto", messages=USER, extra_body={"api_base": evil}
            )
        assert info.value.body["param"] == "api_base"
    assert up.requests == []


def test_inbound_credentials_are_never_forwarded(upstreams, gateway):
    up = upstreams()
    gw = gateway(
        base_config(
            {"dep-a": deployment(up.base_url, "model-a")}, {"auto": {"candidates": ["model-a"]}}
        )
    )
    client = gw.client(
        default_headers={
            "x-api-key": "secret-2",
            "cookie": "session=secret-3",
            "api-key": "secret-4",
        }
    )
    client.chat.completions.create(model="auto", messages=USER)
    (seen,) = up.requests
    assert seen.headers["authorization"] == "Bearer sk-upstream-deployment-key"
    flat = repr(dict(seen.headers)) + seen.body.decode()
    for secret in (gw.api_key, "secret-2", "secret-3", "secret-4"):
        assert secret not in flat
    assert "x-api-key" not in seen.headers and "cookie" not in seen.headers


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}],}',
            400,
            "invalid_json",
        ),
        (b"[]", 400, "invalid_type"),
        (b'{"model": "auto", "messages": []}', 400, "invalid_value"),
        (b'{"model": "auto"}', 400, "invalid_type"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "missing_field"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_type"),
        (
            b'{"model": "auto", "messages": [{"role": "robot", "content": "hi"}]}',
            400,
            "invalid_value",
        ),
        (b'{"model": "auto", "messages": [{"role": "user", "content": 5}]}', 400, "invalid_type"),
        (
            b'{"model": "auto", "max_tokens": "9", "messages": [{"role": "user", "content": ""}]}',
            400,
            "invalid_type",
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            400,
            "invalid_type",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}',
            404,
            "model_not_found",
        ),
    ],
)
def test_bad_input_gets_openai_shaped_4xx_and_is_not_forwarded(
    upstreams, gateway, body, status, code
):
    up = upstreams()
    gw = gateway(
        base_config(
            {"dep-a": deployment(up.base_url, "model-a")}, {"auto": {"candidates": ["model-a"]}}
        )
    )
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {gw.api_key}", "content-type": "application/json"},
    )
    assert r.status_code == status
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    assert up.requests == []
    assert gw.rows()[-1].status == "rejected"


def test_body_over_the_limit_gets_413(upstreams, gateway):
    up = upstreams()
    config = base_config(
        {"dep-a": deployment(up.base_url, "model-a")}, {"auto": {"candidates": ["model-a"]}}
    )
    config["server"] = {"max_body_bytes": 10 * 1024 * 1024}
    gw = gateway(config)
    big = "x" * (12 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(
            model="auto", messages=[{"role": "user", "content": big}]
        )
    assert info.value.status_code == 413
    assert info.value.body["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(12):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=chunks(),
        headers={"authorization": f"Bearer {gw.api_key}"},
    )
    assert r.status_code == 413
    assert up.requests == []
