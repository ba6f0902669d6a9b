"""Streaming: usage chunk only on request, idle timeout, disconnect cancels the upstream."""

from __future__ import annotations

import time

import openai
import pytest
from gateway_helpers import base_config, deployment

from turnout.features import count_tokens
from turnout.testing.upstream import Reply, content_chunk

USER = [{"role": "user", "content": "hello"}]


def _one(url: str, **dep: object) -> dict[str, object]:
    return base_config(
        {"dep-a": deployment(url, "model-a", **dep)}, {"auto": {"candidates": ["model-a"]}}
    )


@pytest.mark.parametrize("asked", [True, False])
def test_usage_chunk_reaches_the_client_only_if_asked(upstreams, gateway, asked):
    up = upstreams()
    gw = gateway(_one(up.base_url))
    kwargs = {"stream_options": {"include_usage": True}} if asked else {}
    with gw.client().chat.completions.with_streaming_response.create(
        model="auto", messages=USER, stream=True, **kwargs
    ) as response:
        assert response.headers["x-turnout-cost-usd-estimate"] != ""
        assert "x-turnout-cost-usd" not in response.headers
        chunks = list(response.parse())
    usage_chunks = [c for c in chunks if not c.choices]
    if asked:
        assert len(usage_chunks) == 1 and usage_chunks[0].usage.prompt_tokens == 12
    else:
        assert usage_chunks == []
    assert up.requests[0].json()["stream_options"] == {"include_usage": True}
    row = gw.rows()[-1]
    assert row.usage.input_tokens == 12 and row.usage.output_tokens == 3
    assert row.usage.estimated is False
    assert row.cost_usd == pytest.approx((12 * 1.0 + 3 * 2.0) / 1e6)
    assert row.ttft_s is not None and row.ttft_s <= row.latency_s


def test_stream_without_reported_usage_is_counted_and_marked_estimated(upstreams, gateway):
    up = upstreams()
    up.script(Reply.ok("four words of text", usage=None))
    gw = gateway(_one(up.base_url))
    chunks = list(
        gw.client().chat.completions.create(
            model="auto", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.choices for c in chunks)  # no usage chunk was invented
    row = gw.rows()[-1]
    assert row.usage.estimated and row.cost_estimated
    assert row.usage.output_tokens == count_tokens("four words of text")
    assert row.cost_usd is not None and row.cost_usd > 0


def test_idle_gap_timeout_before_content_falls_back(upstreams, gateway):
    a, b = upstreams(), upstreams()
    a.script(Reply.stalled(after_headers=True))
    config = base_config(
        {
            "dep-a": deployment(
                a.base_url,
                "model-a",
                timeouts={"connect_s": 1, "first_byte_s": 2, "idle_s": 0.5, "total_s": 10},
            ),
            "dep-b": deployment(b.base_url, "model-b"),
        },
        {"auto": {"candidates": ["model-a", "model-b"]}},
    )
    gw = gateway(config)
    started = time.perf_counter()
    text = "".join(
        c.choices[0].delta.content or ""
        for c in gw.client().chat.completions.create(model="auto", messages=USER, stream=True)
        if c.choices
    )
    assert text == "ok"
    assert 0.5 <= time.perf_counter() - started < 1.5
    assert [a.error_class for a in gw.rows()[-1].attempts] == ["ProviderTimeout", None]


def test_idle_gap_after_content_ends_the_stream_with_an_error(upstreams, gateway):
    up = upstreams()
    up.script(
        Reply.stream(
            [content_chunk("m", {"role": "assistant"}), content_chunk("m", {"content": "partial"})],
            end="stall",
        )
    )
    gw = gateway(
        _one(up.base_url, timeouts={"connect_s": 1, "first_byte_s": 2, "idle_s": 1.0, "total_s": 5})
    )
    got: list[str] = []
    with pytest.raises(openai.APIError, match="idle timeout"):
        for chunk in gw.client().chat.completions.create(model="auto", messages=USER, stream=True):
            got += [c.delta.content for c in chunk.choices if c.delta.content]
    assert got == ["partial"]
    row = gw.rows()[-1]
    assert row.status == "failed" and row.error_code == "upstream_error"


def test_client_disconnect_cancels_the_upstream_and_meters_what_was_sent(upstreams, gateway):
    up = upstreams()
    events = [content_chunk("m", {"role": "assistant"})] + [
        content_chunk("m", {"content": f"word{i} "}) for i in range(40)
    ]
    up.script(Reply.stream(events, event_delay_s=0.05))
    gw = gateway(_one(up.base_url))
    stream = gw.client().chat.completions.create(model="auto", messages=USER, stream=True)
    received = 0
    for chunk in stream:
        received += sum(1 for c in chunk.choices if c.delta.content)
        if received == 3:
            break
    stream.close()
    for _ in range(100):
        if up.cut_off and gw.rows() and gw.rows()[-1].http_status == 499:
            break
        time.sleep(0.02)
    assert up.cut_off == 1  # the upstream connection was closed mid-answer
    row = gw.rows()[-1]
    assert row.status == "failed" and row.error_code == "client_disconnected"
    assert row.usage.estimated and 3 <= row.usage.output_tokens < 40 * 2


def test_client_disconnect_cancels_a_non_streaming_call(upstreams, gateway):
    up = upstreams()
    up.script(Reply.ok("late", delay_s=3))
    gw = gateway(_one(up.base_url))
    with pytest.raises(openai.APITimeoutError):
        gw.client(timeout=0.5).chat.completions.create(model="auto", messages=USER)
    for _ in range(100):
        if up.cut_off and gw.rows():
            break
        time.sleep(0.02)
    assert up.cut_off == 1  # the upstream call was abandoned, not waited for
    row = gw.rows()[-1]
    assert row.status == "failed" and row.http_status == 499
    assert row.usage.estimated and row.usage.output_tokens == 0 and row.usage.input_tokens > 0
