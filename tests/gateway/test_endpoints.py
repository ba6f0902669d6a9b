"""/v1/models, /v1/route, health, metrics, auth, decision headers, and pricing edge cases."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from gateway_helpers import base_config, deployment

from turnout.storage.base import KeySpec, Limits
from turnout.testing.upstream import Reply

USER = [{"role": "user", "content": "hello"}]


def _config(a_url: str, b_url: str, **extra: object) -> dict[str, object]:
    return base_config(
        {
            "dep-a": deployment(a_url, "model-a"),
            "dep-b": deployment(b_url, "model-b"),
            "dep-free": deployment(b_url, "free-x"),
        },
        {"auto": {"candidates": ["model-a", "model-b"]}, "free": {"candidates": ["free-x"]}},
        **extra,
    )


def test_models_lists_routes_and_served_models(upstreams, gateway):
    up = upstreams()
    gw = gateway(_config(up.base_url, up.base_url))
    ids = [m.id for m in gw.client().models.list()]
    assert ids[:2] == ["auto", "free"] and {"model-a", "model-b", "free-x"} <= set(ids)


def test_concrete_model_name_is_routed_to_its_deployment(upstreams, gateway):
    a, b = upstreams(), upstreams()
    gw = gateway(_config(a.base_url, b.base_url))
    raw = gw.client().chat.completions.with_raw_response.create(model="model-b", messages=USER)
    assert raw.headers["x-turnout-route"] == "model-b"
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert b.requests[0].json()["model"] == "upstream-model-b"


def test_route_dry_run_explains_and_calls_nothing(upstreams, gateway):
    a, b = upstreams(), upstreams()
    gw = gateway(_config(a.base_url, b.base_url))
    r = httpx.post(
        f"{gw.url}/v1/route",
        json={"model": "auto", "messages": [{"role": "user", "content": "word " * 10_000}]},
        headers={"authorization": f"Bearer {gw.api_key}"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["decision"]["model"] == "model-a"
    assert body["decision"]["fallbacks"] == []
    assert body["decision"]["removed"][0]["model"] == "model-b"
    assert "context window" in body["decision"]["removed"][0]["reason"]
    assert body["deployments"]["model-a"] == [
        {"name": "dep-a", "breaker": "closed", "in_flight": 0}
    ]
    assert body["worst_case_cost_usd"] > 0
    assert r.headers["x-turnout-model"] == "model-a"
    assert a.requests == [] and b.requests == []


def test_health_ready_and_metrics(upstreams, gateway):
    up = upstreams()
    gw = gateway(_config(up.base_url, up.base_url))
    assert httpx.get(f"{gw.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gw.url}/readyz").status_code == 200
    gw.client().chat.completions.create(model="auto", messages=USER)
    text = httpx.get(f"{gw.url}/metrics").text
    assert (
        'turnout_requests_total{deployment="dep-a",model="model-a",route="auto",status="200"} 1.0'
        in text
    )
    assert 'turnout_tokens_total{kind="output",model="model-a"} 3.0' in text
    for secret in ("sk-upstream-deployment-key", gw.api_key):
        assert secret not in text


def test_unknown_path_and_method_are_openai_shaped(upstreams, gateway):
    up = upstreams()
    gw = gateway(_config(up.base_url, up.base_url))
    r = httpx.get(f"{gw.url}/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{gw.url}/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"


def test_unpriced_model_is_recorded_unpriced_never_zero(upstreams, gateway):
    up = upstreams()
    gw = gateway(_config(up.base_url, up.base_url))
    raw = gw.client().chat.completions.with_raw_response.create(model="free", messages=USER)
    assert raw.headers["x-turnout-cost-usd"] == "unpriced"
    row = gw.rows()[-1]
    assert row.cost_usd is None and row.usage.output_tokens == 3


def test_missing_usage_is_counted_and_marked_estimated(upstreams, gateway):
    a = upstreams()
    a.script(Reply.ok("a short answer", usage=None))
    gw = gateway(_config(a.base_url, a.base_url))
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-cost-estimated"] == "true"
    row = gw.rows()[-1]
    assert row.usage.estimated and row.cost_estimated and row.usage.output_tokens > 0
    assert float(raw.headers["x-turnout-cost-usd"]) == pytest.approx(row.cost_usd)


def test_auth_required_and_route_permissions(upstreams, gateway):
    up = upstreams()
    config = _config(up.base_url, up.base_url)
    config["keys"] = {"required": True, "admin_key_env": None}
    gw = gateway(config)
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "auto", "messages": USER})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError):
        gw.client(api_key="sk-tn-wrong").chat.completions.create(model="auto", messages=USER)
    limited = gw.create_key(KeySpec("limited", allowed_routes=frozenset({"free"})))
    with pytest.raises(openai.PermissionDeniedError) as info:
        gw.client(api_key=limited).chat.completions.create(model="auto", messages=USER)
    assert info.value.body["code"] == "route_not_allowed"
    assert up.requests == []


def test_rate_limit_and_budget_answers_have_different_codes(upstreams, gateway):
    up = upstreams()
    gw = gateway(_config(up.base_url, up.base_url))
    rpm_key = gw.create_key(KeySpec("rpm", limits=Limits(rpm=1)))
    client = gw.client(api_key=rpm_key)
    client.chat.completions.create(model="auto", messages=USER)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="auto", messages=USER)
    assert info.value.body["code"] == "rate_limit_exceeded"
    poor_key = gw.create_key(KeySpec("poor", limits=Limits(budget_usd=0.000001)))
    with pytest.raises(openai.RateLimitError) as info:
        gw.client(api_key=poor_key).chat.completions.create(model="auto", messages=USER)
    assert info.value.body["code"] == "budget_exceeded"
    assert len(up.requests) == 1


def _spent(gw, key_name: str) -> float:
    gate = gw.app.state.gatekeeper
    (record,) = [r for r in gate.key_store.list() if r.name == key_name]
    return float(gw.run(gate.counters.spent_usd(record.key_id, record.limits, now=time.time())))


@pytest.mark.parametrize("stream", [False, True])
def test_budget_is_settled_on_success_and_released_on_failure(upstreams, gateway, stream):
    a = upstreams()
    gw = gateway(_config(a.base_url, a.base_url))
    key = gw.create_key(KeySpec("budget", limits=Limits(budget_usd=1.0)))
    client = gw.client(api_key=key)
    a.script(Reply.error(500, "down"), Reply.error(500, "down"))  # model-b then serves

    def call() -> None:
        if stream:
            list(client.chat.completions.create(model="auto", messages=USER, stream=True))
        else:
            client.chat.completions.create(model="auto", messages=USER)

    call()
    expected = (12 * 2.0 + 3 * 4.0) / 1e6  # served by model-b at 2.0 / 4.0 USD per 1M
    assert _spent(gw, "budget") == pytest.approx(expected)
    a.script(default=Reply.error(500, "down"))
    with pytest.raises(openai.APIStatusError):
        call()
    assert _spent(gw, "budget") == pytest.approx(expected)  # the failure was released
    assert gw.rows()[-1].status == "failed"
