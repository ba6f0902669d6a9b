"""The Anthropic and Gemini adapters over real loopback HTTP, on a pooled aiohttp session."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from turnout.errors import (
    AuthFailed,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from turnout.providers import PROVIDERS
from turnout.providers.anthropic import AnthropicProvider
from turnout.providers.base import Endpoint, Provider, StreamEvent, Timeouts
from turnout.providers.gemini import GeminiProvider
from turnout.testing._vendor_server import WireReply
from turnout.testing.anthropic_upstream import AnthropicAnswer, AnthropicUpstream, anthropic_error
from turnout.testing.gemini_upstream import GeminiAnswer, GeminiUpstream, gemini_error

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
IMAGE_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            ],
        },
    ],
}


def anthropic(
    up: AnthropicUpstream, session: aiohttp.ClientSession, **kw: Any
) -> AnthropicProvider:
    endpoint = Endpoint(
        name="claude",
        provider="anthropic",
        model="claude-test",
        base_url=up.base_url,
        api_key="sk-ant-test",
        **kw,
    )
    return AnthropicProvider(endpoint, session)


def gemini(up: GeminiUpstream, session: aiohttp.ClientSession, **kw: Any) -> GeminiProvider:
    endpoint = Endpoint(
        name="gem",
        provider="gemini",
        model="gemini-test",
        base_url=up.base_url,
        api_key="g-key",
        **kw,
    )
    return GeminiProvider(endpoint, session)


async def drain(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


async def call_once(provider: Any, stream: bool) -> None:
    """One call of BODY, streamed (drained) or not."""
    if stream:
        await drain(provider.stream(BODY, {}))
    else:
        await provider.complete(BODY, {})


def test_registry_has_both_adapters() -> None:
    assert PROVIDERS["anthropic"] is AnthropicProvider
    assert PROVIDERS["gemini"] is GeminiProvider


async def test_anthropic_complete_request_and_headers(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession
) -> None:
    anthropic_up.script(
        AnthropicAnswer.text("Bonjour", usage={"input_tokens": 9, "output_tokens": 2})
    )
    provider = anthropic(anthropic_up, session)
    done = await provider.complete(BODY, {"x-request-id": "r1"})
    assert done.body["choices"][0]["message"]["content"] == "Bonjour"
    assert done.usage is not None and done.usage.total_tokens == 11
    request = anthropic_up.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["x-request-id"] == "r1"
    sent = request.json()
    assert sent["model"] == "claude-test" and "stream" not in sent
    assert sent["system"] == [{"type": "text", "text": "Be brief."}]
    assert base64.b64decode(sent["messages"][0]["content"][1]["source"]["data"]) == PNG


async def test_anthropic_stream_split_bytes_pings_comments(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession
) -> None:
    answer = AnthropicAnswer(
        content=[
            {"type": "text", "text": "Größe: 10 € ✓"},
            {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expr": "2+2 ≈ 4"}},
        ],
        stop_reason="tool_use",
        usage={"input_tokens": 25, "output_tokens": 15},
        split_bytes=5,
        piece_delay_s=0.0005,
        comment=True,
    )
    anthropic_up.script(answer)
    events = await drain(anthropic(anthropic_up, session).stream(BODY, {}))
    assert anthropic_up.requests[0].json()["stream"] is True
    assert events[-1].done and events[-1].chunk is None
    usage_event = events[-2]
    assert usage_event.usage_only and usage_event.usage is not None
    assert usage_event.usage.total_tokens == 40
    chunks = [e.chunk for e in events if e.chunk and e.chunk["choices"]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Größe: 10 € ✓"
    args = "".join(
        tc["function"].get("arguments", "")
        for c in chunks
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    assert json.loads(args) == {"expr": "2+2 ≈ 4"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[0].has_delta is False and any(e.has_delta for e in events)


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_http_errors_are_mapped(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession, stream: bool
) -> None:
    anthropic_up.script(
        anthropic_error(
            429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "12"}
        ),
        anthropic_error(529, "overloaded_error", "Overloaded"),
        anthropic_error(401, "authentication_error", "invalid x-api-key"),
    )
    provider = anthropic(anthropic_up, session)

    with pytest.raises(RateLimited) as limited:
        await call_once(provider, stream)
    assert limited.value.retry_after_s == 12.0
    with pytest.raises(ProviderError, match="overloaded_error") as overloaded:
        await call_once(provider, stream)
    assert overloaded.value.retryable and overloaded.value.status_code == 529
    with pytest.raises(AuthFailed):
        await call_once(provider, stream)


async def test_anthropic_error_event_inside_stream(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession
) -> None:
    anthropic_up.script(
        AnthropicAnswer.text("Half an ans", stream_error=("overloaded_error", "Overloaded"))
    )
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError, match="overloaded_error") as info:
        async for event in anthropic(anthropic_up, session).stream(BODY, {}):
            seen.append(event)
    assert info.value.retryable
    assert any(e.has_delta for e in seen)  # the gateway knows content already reached the client


async def test_anthropic_truncated_stream_is_a_connection_error(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession
) -> None:
    events = AnthropicAnswer.text("cut short").events()[:4]
    anthropic_up.script(WireReply(headers={"content-type": "text/event-stream"}, pieces=events))
    with pytest.raises(ProviderConnectionError, match="ended before"):
        await drain(anthropic(anthropic_up, session).stream(BODY, {}))


async def test_anthropic_idle_timeout(
    anthropic_up: AnthropicUpstream, session: aiohttp.ClientSession
) -> None:
    events = AnthropicAnswer.text("slow").events()
    anthropic_up.script(
        WireReply(headers={"content-type": "text/event-stream"}, pieces=events, piece_delay_s=0.5)
    )
    provider = anthropic(anthropic_up, session, timeouts=Timeouts(idle_s=0.1))
    with pytest.raises(ProviderTimeout, match="idle"):
        await drain(provider.stream(BODY, {}))


async def test_bad_body_is_rejected_before_anything_is_sent(
    anthropic_up: AnthropicUpstream, gemini_up: GeminiUpstream, session: aiohttp.ClientSession
) -> None:
    body = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": ""}]}
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]"):
        await anthropic(anthropic_up, session).complete(body, {})
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]"):
        await drain(gemini(gemini_up, session).stream(body, {}))
    assert anthropic_up.requests == [] and gemini_up.requests == []


async def test_gemini_complete_and_stream_paths_and_usage(
    gemini_up: GeminiUpstream, session: aiohttp.ClientSession
) -> None:
    usage = {
        "promptTokenCount": 50,
        "cachedContentTokenCount": 40,
        "candidatesTokenCount": 7,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 87,
    }
    answer = GeminiAnswer(
        parts=[{"text": "plan", "thought": True}, {"text": "Résumé ✓ done"}],
        usage=usage,
        split_bytes=3,
        piece_delay_s=0.0005,
        comment=True,
    )
    gemini_up.script(answer, answer)
    provider = gemini(gemini_up, session)
    done = await provider.complete(BODY, {})
    assert done.body["choices"][0]["message"]["content"] == "Résumé ✓ done"
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.cached_input_tokens) == (50, 40)
    assert (done.usage.output_tokens, done.usage.reasoning_tokens) == (37, 30)
    events = await drain(provider.stream(BODY, {}))
    first, second = gemini_up.requests
    assert first.path == "/v1beta/models/gemini-test:generateContent"
    assert second.path == "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    assert first.headers["x-goog-api-key"] == "g-key" and "key=" not in first.path
    sent = first.json()
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert base64.b64decode(sent["contents"][0]["parts"][1]["inlineData"]["data"]) == PNG
    text = "".join(
        e.chunk["choices"][0]["delta"].get("content") or ""
        for e in events
        if e.chunk and e.chunk["choices"]
    )
    assert text == "Résumé ✓ done"
    assert events[-2].usage == done.usage and events[-1].done


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_errors(
    gemini_up: GeminiUpstream, session: aiohttp.ClientSession, stream: bool
) -> None:
    retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]
    gemini_up.script(
        gemini_error(429, "Resource has been exhausted", retry),
        gemini_error(503, "The model is overloaded. Please try again later."),
        GeminiAnswer.text("partial text here", stream_error=(503, "overloaded mid-stream")),
    )
    provider = gemini(gemini_up, session)

    with pytest.raises(RateLimited) as limited:
        await call_once(provider, stream)
    assert limited.value.retry_after_s == 2.5
    with pytest.raises(ProviderError, match="overloaded") as overloaded:
        await call_once(provider, stream)
    assert overloaded.value.retryable
    if stream:
        with pytest.raises(ProviderError, match="overloaded mid-stream"):
            await call_once(provider, stream)


async def test_gemini_stream_without_finish_reason_is_a_connection_error(
    gemini_up: GeminiUpstream, session: aiohttp.ClientSession
) -> None:
    answer = GeminiAnswer.text("never finishes properly")
    gemini_up.script(
        WireReply(headers={"content-type": "text/event-stream"}, pieces=answer.events()[:2])
    )
    with pytest.raises(ProviderConnectionError):
        await drain(gemini(gemini_up, session).stream(BODY, {}))


async def test_connection_refused_is_mapped(session: aiohttp.ClientSession) -> None:
    endpoint = Endpoint(name="x", provider="anthropic", model="m", base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderConnectionError):
        await AnthropicProvider(endpoint, session).complete(BODY, {})


async def test_no_system_role_flag_from_the_endpoint(
    anthropic_up: AnthropicUpstream, gemini_up: GeminiUpstream, session: aiohttp.ClientSession
) -> None:
    await anthropic(anthropic_up, session, system_role=False).complete(BODY, {})
    await gemini(gemini_up, session, system_role=False).complete(BODY, {})
    sent_a, sent_g = anthropic_up.requests[0].json(), gemini_up.requests[0].json()
    assert "system" not in sent_a and "systemInstruction" not in sent_g
    assert sent_a["messages"][0]["content"][0] == {"type": "text", "text": "Be brief."}
    assert sent_g["contents"][0]["parts"][0] == {"text": "Be brief."}


def test_deployment_config_has_the_system_role_flag() -> None:
    from turnout.config import DeploymentConfig

    dep = DeploymentConfig(
        provider="gemini", base_url="http://127.0.0.1:1", model="gemma-3", system_role=False
    )
    assert dep.system_role is False


@pytest.mark.parametrize("stream", [False, True])
async def test_missing_usage_is_reported_as_none_so_the_gateway_counts(
    gemini_up: GeminiUpstream, session: aiohttp.ClientSession, stream: bool
) -> None:
    answer = GeminiAnswer(parts=[{"text": "no usage here"}], usage={})
    gemini_up.script(answer)
    provider = gemini(gemini_up, session)
    if stream:
        events = await drain(provider.stream(BODY, {}))
        assert events[-2].usage_only and events[-2].usage is None
    else:
        assert (await provider.complete(BODY, {})).usage is None


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_every_registered_provider_keeps_the_seam(
    name: str, session: aiohttp.ClientSession
) -> None:
    endpoint = Endpoint(name="d", provider=name, model="m", base_url="http://127.0.0.1:9")
    provider = PROVIDERS[name](endpoint, session)
    assert isinstance(provider, Provider)
    assert provider.endpoint is endpoint
