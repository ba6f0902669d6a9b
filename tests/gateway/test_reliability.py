"""Retries, backoff, Retry-After, circuit breaker and the 503 "nothing available" answer."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from gateway_helpers import base_config, deployment

from turnout.gateway.breaker import CircuitBreaker
from turnout.testing.upstream import Reply

USER = [{"role": "user", "content": "hello"}]


def _two(a_url: str, b_url: str, **extra: object) -> dict[str, object]:
    return base_config(
        {"dep-a": deployment(a_url, "model-a"), "dep-b": deployment(b_url, "model-b")},
        {"auto": {"candidates": ["model-a", "model-b"]}},
        **extra,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
def test_retryable_status_is_retried_on_the_same_deployment(upstreams, gateway, status):
    a, b = upstreams(), upstreams()
    a.script(Reply.error(status, "transient"))
    gw = gateway(_two(a.base_url, b.base_url))
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-a"
    assert len(a.requests) == 2 and len(b.requests) == 0


def test_short_retry_after_is_honoured_on_the_same_deployment(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(Reply.error(429, "busy", headers={"retry-after-ms": "300"}))
    gw = gateway(_two(a.base_url, b.base_url))
    started = time.perf_counter()
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert time.perf_counter() - started >= 0.3
    assert raw.headers["x-turnout-deployment"] == "dep-a"
    assert len(a.requests) == 2 and len(b.requests) == 0


def test_connection_refused_falls_back(upstreams, gateway):
    b = upstreams()
    gw = gateway(_two("http://127.0.0.1:9", b.base_url))  # nothing listens on port 9
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert "fallback to model-b after model-a failed" in raw.headers["x-turnout-reason"]
    classes = [a.error_class for a in gw.rows()[-1].attempts]
    assert classes == ["ProviderConnectionError", "ProviderConnectionError", None]


@pytest.mark.parametrize("status", [401, 403, 404, 413, 422])
def test_non_retryable_status_passes_through_once(upstreams, gateway, status):
    a, b = upstreams(), upstreams()
    a.script(Reply.error(status, f"upstream says {status}", code="some_code"))
    gw = gateway(_two(a.base_url, b.base_url))
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="auto", messages=USER)
    assert info.value.status_code == status
    assert info.value.body["message"] == f"upstream says {status}"
    assert info.value.body["code"] == "some_code"
    assert len(a.requests) == 1 and len(b.requests) == 0
    assert "sk-upstream-deployment-key" not in repr(info.value.body)


def test_nothing_available_gives_503_with_retry_after_and_what_was_tried(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(default=Reply.error(500, "down"))
    b.script(default=Reply.error(503, "also down"))
    gw = gateway(_two(a.base_url, b.base_url))
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="auto", messages=USER)
    err = info.value
    assert err.status_code == 503
    assert err.body["code"] == "no_upstream_available"
    assert int(err.response.headers["retry-after"]) >= 1
    assert "dep-a (model-a): HTTP 500" in err.message and "dep-b (model-b): HTTP 503" in err.message
    assert gw.rows()[-1].status == "failed"


def test_breaker_opens_then_probes_and_closes(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(Reply.error(500, "down"), Reply.error(500, "down"))
    config = _two(
        a.base_url,
        b.base_url,
        reliability={
            "backoff_base_s": 0.01,
            "breaker": {"failure_threshold": 2, "cooldown_s": 0.5},
        },
    )
    gw = gateway(config)
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-b"  # A failed twice: breaker open
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert len(a.requests) == 2  # skipped while open
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200  # dep-b still serves
    assert ready.json()["deployments"]["dep-a"] == "open"
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'turnout_circuit_open{deployment="dep-a"} 1.0' in metrics
    time.sleep(0.6)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-a"  # the probe succeeded
    assert gw.app.state.runtime.deployments["dep-a"].breaker.state == "closed"


def test_breaker_half_open_lets_one_probe_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe only
    breaker.record_failure()  # the probe failed: open again for a new cooldown
    assert breaker.state == "open" and breaker.retry_in_s() == pytest.approx(10)
    now[0] = 21
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_retry_after_cools_the_deployment_down() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=5, cooldown_s=1, clock=lambda: now[0])
    breaker.record_failure(cool_down_s=30)
    assert not breaker.allow() and breaker.retry_in_s() == pytest.approx(30)
    now[0] = 31
    assert breaker.allow()


def test_unreachable_upstream_is_reported_without_its_address(upstreams, gateway):
    config = base_config(
        {"dep-a": deployment("http://127.0.0.1:9/v1", "model-a")},
        {"auto": {"candidates": ["model-a"]}},
    )
    gw = gateway(config)
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="auto", messages=USER)
    assert info.value.status_code == 503
    assert "dep-a (model-a): ProviderConnectionError" in info.value.message
    assert "127.0.0.1" not in info.value.message and ":9" not in info.value.message
