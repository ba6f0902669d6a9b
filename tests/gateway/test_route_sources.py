"""Routes built from declarative rules (turnout.rules) and from a saved router file."""

from __future__ import annotations

import httpx
import openai
import pytest
from gateway_helpers import TEST_MODELS, base_config, deployment

from turnout.artifact import save_router
from turnout.catalog import Catalog
from turnout.policies import FixedPolicy, UtilityPolicy
from turnout.router import Router

USER = [{"role": "user", "content": "hello"}]


def test_rules_pick_candidates_by_tier_header(upstreams, gateway):
    a, b = upstreams(), upstreams()
    routes = {
        "auto": {
            "candidates": ["model-a", "model-b"],
            "rules": [
                {"name": "batch", "when": {"tier": ["batch"]}, "candidates": ["model-b"]},
                {"name": "default", "when": {}},
            ],
        }
    }
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            routes,
        )
    )
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-a"
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=USER, extra_headers={"x-turnout-tier": "batch"}
    )
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert gw.rows()[-1].decision["rule"]["matched"] == "batch"
    with pytest.raises(openai.BadRequestError, match="x-turnout-tier"):
        client.chat.completions.create(
            model="auto", messages=USER, extra_headers={"x-turnout-tier": "urgent"}
        )
    r = httpx.post(
        f"{gw.url}/v1/route",
        json={"model": "auto", "messages": USER},
        headers={"authorization": f"Bearer {gw.api_key}", "x-turnout-tier": "batch"},
    )
    assert r.json()["decision"]["model"] == "model-b"
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_router_file_keeps_its_saved_policy(upstreams, gateway, tmp_path):
    a, b = upstreams(), upstreams()
    catalog = Catalog.default().merged(TEST_MODELS)
    path = tmp_path / "router.bin"
    save_router(Router(catalog, ["model-a", "model-b"], FixedPolicy("model-b")), path)
    routes = {"auto": {"candidates": ["model-a", "model-b"], "router_file": str(path)}}
    gw = gateway(
        base_config(
            {
                "dep-a": deployment(a.base_url, "model-a"),
                "dep-b": deployment(b.base_url, "model-b"),
            },
            routes,
        )
    )
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-deployment"] == "dep-b"
    assert raw.headers["x-turnout-reason"] == "fixed policy: always model-b"


def test_router_file_with_same_policy_keeps_the_trained_params(upstreams, gateway, tmp_path):
    """``policy: utility`` on a utility-trained file keeps its willingness to pay; params merge."""
    a, b = upstreams(), upstreams()
    models = {**TEST_MODELS, "model-b": {**TEST_MODELS["model-b"], "quality_prior": 0.99}}
    catalog = Catalog.default().merged(models)
    path = tmp_path / "router.bin"
    # Trained calibration: a quality point is worth almost nothing, so the cheaper model-a wins
    # (the policy default of $1 per point would pick the better, dearer model-b).
    trained = UtilityPolicy(willingness_to_pay_usd=1e-9)
    save_router(Router(catalog, ["model-a", "model-b"], trained), path)
    candidates = ["model-a", "model-b"]
    routes = {
        "auto": {"candidates": candidates, "router_file": str(path), "policy": "utility"},
        "rich": {
            "candidates": candidates,
            "router_file": str(path),
            "policy": "utility",
            "params": {"willingness_to_pay_usd": 1000.0},
        },
        "plain": {"candidates": candidates, "policy": "utility"},
    }
    deps = {"dep-a": deployment(a.base_url, "model-a"), "dep-b": deployment(b.base_url, "model-b")}
    gw = gateway({**base_config(deps, routes), "models": models})
    client = gw.client()
    served = {
        alias: client.chat.completions.with_raw_response.create(model=alias, messages=USER).headers[
            "x-turnout-deployment"
        ]
        for alias in routes
    }
    assert served == {"auto": "dep-a", "rich": "dep-b", "plain": "dep-b"}
    policy = gw.app.state.runtime.routes["auto"].router.policy
    assert policy.willingness_to_pay_usd == 1e-9
