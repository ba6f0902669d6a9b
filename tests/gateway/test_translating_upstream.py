"""A translating provider (Anthropic) behind the gateway: the seam relays its OpenAI chunks."""

from __future__ import annotations

import pytest
from gateway_helpers import base_config, deployment

from turnout.testing.anthropic_upstream import AnthropicAnswer, AnthropicUpstream

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def anthropic_up():
    with AnthropicUpstream() as server:
        yield server


def _config(url: str) -> dict[str, object]:
    dep = {**deployment(url, "claude-haiku-4-5", provider="anthropic"), "model": "claude-haiku-4-5"}
    return base_config({"claude": dep}, {"auto": {"candidates": ["claude-haiku-4-5"]}})


def test_anthropic_non_streaming_through_the_gateway(anthropic_up, gateway):
    anthropic_up.script(
        AnthropicAnswer.text("Bonjour!", usage={"input_tokens": 1000, "output_tokens": 100})
    )
    gw = gateway(_config(anthropic_up.base_url))
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Bonjour!"
    assert raw.headers["x-turnout-deployment"] == "claude"
    row = gw.rows()[-1]
    assert (row.usage.input_tokens, row.usage.output_tokens) == (1000, 100)
    assert row.cost_usd is not None and float(raw.headers["x-turnout-cost-usd"]) == pytest.approx(
        row.cost_usd
    )
    (seen,) = anthropic_up.requests
    assert seen.headers["x-api-key"] == "sk-upstream-deployment-key"
    assert gw.api_key not in repr(dict(seen.headers))


@pytest.mark.parametrize("asked", [True, False])
def test_anthropic_stream_through_the_gateway(anthropic_up, gateway, asked):
    anthropic_up.script(AnthropicAnswer.text("Hello from Claude", split_bytes=7))
    gw = gateway(_config(anthropic_up.base_url))
    kwargs = {"stream_options": {"include_usage": True}} if asked else {}
    chunks = list(
        gw.client().chat.completions.create(model="auto", messages=USER, stream=True, **kwargs)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Claude"
    assert any(not c.choices and c.usage for c in chunks) is asked
    row = gw.rows()[-1]
    assert row.status == "ok" and row.usage.output_tokens == 5 and not row.usage.estimated
