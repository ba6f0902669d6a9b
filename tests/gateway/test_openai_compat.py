"""The OpenAI-compatible adapter against the loopback upstream: URLs, auth, errors, usage."""

from __future__ import annotations

import aiohttp
import pytest

from turnout.errors import (
    AuthFailed,
    ContextTooLong,
    ProviderError,
    RateLimited,
    UpstreamBadRequest,
)
from turnout.providers.base import Endpoint, Timeouts, error_from_status, parse_retry_after
from turnout.providers.openai_compat import OpenAICompatProvider, usage_from_openai
from turnout.testing.upstream import Reply, UpstreamServer

BODY = {
    "model": "auto",
    "messages": [{"role": "user", "content": "hi"}],
    "stream_options": {"x": 1},
}


@pytest.fixture
def up():
    with UpstreamServer() as server:
        yield server


async def test_azure_url_and_key_header(up):
    endpoint = Endpoint(
        "az",
        "azure",
        "my-deployment",
        up.base_url.removesuffix("/v1"),
        "azure-secret",
        Timeouts(1, 2, 2, 5),
        api_version="2024-10-21",
    )
    async with aiohttp.ClientSession() as session:
        completion = await OpenAICompatProvider(endpoint, session).complete(
            BODY, {"x-request-id": "r1"}
        )
    (seen,) = up.requests
    assert seen.path == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    assert seen.headers["api-key"] == "azure-secret" and "authorization" not in seen.headers
    assert seen.headers["x-request-id"] == "r1"
    assert "stream_options" not in seen.json() and seen.json()["model"] == "my-deployment"
    assert completion.usage is not None and completion.usage.input_tokens == 12
    assert completion.raw is not None and b'"chat.completion"' in completion.raw


async def test_non_json_success_is_a_retryable_error(up):
    up.script(Reply(body=b"<html>gateway</html>"))
    endpoint = Endpoint("d", "openai", "m", up.base_url, None, Timeouts(1, 2, 2, 5))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ProviderError, match="not a JSON object") as info:
            await OpenAICompatProvider(endpoint, session).complete(BODY, {})
    assert info.value.retryable
    assert "authorization" not in up.requests[0].headers  # keyless upstream


def test_usage_normalisation():
    usage = usage_from_openai(
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 200},
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens) == (2006, 1920)
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 200)
    deepseek = usage_from_openai(
        {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 60}
    )
    assert deepseek is not None and deepseek.cached_input_tokens == 60
    assert usage_from_openai(None) is None and usage_from_openai({"foo": 1}) is None


@pytest.mark.parametrize(
    ("status", "message", "cls", "retryable"),
    [
        (400, "This model's maximum context length is 8192 tokens", ContextTooLong, False),
        (400, "unknown parameter", UpstreamBadRequest, False),
        (401, "bad key", AuthFailed, False),
        (403, "forbidden", AuthFailed, False),
        (404, "no such model", UpstreamBadRequest, False),
        (422, "unprocessable", UpstreamBadRequest, False),
        (408, "timeout", ProviderError, True),
        (409, "conflict", ProviderError, True),
        (429, "slow down", RateLimited, True),
        (500, "boom", ProviderError, True),
        (529, "overloaded", ProviderError, True),
    ],
)
def test_status_mapping(status, message, cls, retryable):
    error = error_from_status(
        "openai", status, {"error": {"message": message}}, {"retry-after": "7"}
    )
    assert type(error) is cls and error.retryable is retryable
    assert str(error) == message and error.status_code == status
    if cls is RateLimited:
        assert error.retry_after_s == 7


def test_retry_after_forms():
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_s=1445412470) == 10
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
