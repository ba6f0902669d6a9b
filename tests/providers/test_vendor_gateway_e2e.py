"""End to end: the official openai client -> the gateway under uvicorn -> loopback Anthropic /
Gemini servers. Every case runs streaming and non-streaming."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette

from turnout.config import load_config
from turnout.gateway import create_app
from turnout.storage.base import KeySpec
from turnout.storage.ledger import MemoryLedger
from turnout.testing.anthropic_upstream import AnthropicAnswer, AnthropicUpstream, anthropic_error
from turnout.testing.gemini_upstream import GeminiAnswer, GeminiUpstream
from turnout.testing.uvicorn_thread import serve_in_thread

MODELS: dict[str, dict[str, Any]] = {
    "claude-e2e": {
        "provider": "anthropic",
        "input_usd_per_mtok": 3.00,
        "cache_write_usd_per_mtok": 3.75,
        "cached_input_usd_per_mtok": 0.30,
        "output_usd_per_mtok": 15.0,
        "capabilities": ["vision", "tools"],
        "quality_prior": 0.9,
    },
    "gemini-e2e": {
        "provider": "google",
        "input_usd_per_mtok": 0.30,
        "cached_input_usd_per_mtok": 0.03,
        "output_usd_per_mtok": 2.50,
        "capabilities": ["vision", "tools"],
        "quality_prior": 0.8,
    },
    "claude-text-only": {
        "provider": "anthropic",
        "input_usd_per_mtok": 0.10,
        "output_usd_per_mtok": 0.20,
        "capabilities": ["tools"],
        "quality_prior": 0.5,
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@dataclass
class Gateway:
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    api_key: str

    def client(self) -> openai.OpenAI:
        port = self.sock.getsockname()[1]
        return openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=self.api_key, max_retries=0
        )

    def rows(self) -> list[Any]:
        ledger = self.app.state.ledger
        assert isinstance(ledger, MemoryLedger)
        ledger.flush(5)
        return list(reversed(ledger.recent(1000)))

    def breaker(self, deployment: str) -> str:
        return str(self.app.state.runtime.deployments[deployment].breaker.state)


def _deployment(provider: str, url: str, model: str, catalog_model: str) -> dict[str, Any]:
    return {
        "provider": provider,
        "base_url": url,
        "api_key_env": "VENDOR_KEY",
        "model": model,
        "catalog_model": catalog_model,
        "timeouts": {"connect_s": 1, "first_byte_s": 3, "idle_s": 3, "total_s": 10},
    }


@pytest.fixture(scope="module")
def vendors() -> Iterator[tuple[AnthropicUpstream, GeminiUpstream]]:
    with AnthropicUpstream() as claude, GeminiUpstream() as gemini:
        yield claude, gemini


@pytest.fixture(scope="module")
def gateway(
    vendors: tuple[AnthropicUpstream, GeminiUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    claude, gemini = vendors
    config = {
        "deployments": {
            "claude": _deployment("anthropic", claude.base_url, "claude-up", "claude-e2e"),
            "claude-text": _deployment(
                "anthropic", claude.base_url, "claude-text-up", "claude-text-only"
            ),
            "gemini": _deployment("gemini", gemini.base_url, "gemini-up", "gemini-e2e"),
        },
        "models": MODELS,
        "routes": {
            "claude-first": {
                "candidates": ["claude-e2e", "gemini-e2e"],
                "policy": "fixed",
                "params": {"model": "claude-e2e"},
            },
            "gemini-only": {"candidates": ["gemini-e2e"]},
            "claude-only": {"candidates": ["claude-e2e"]},
            "mixed": {"candidates": ["claude-text-only", "claude-e2e"], "policy": "cheapest"},
            "text-only": {"candidates": ["claude-text-only"]},
        },
        "keys": {"required": False, "admin_key_env": None},
        "storage": {"url": "memory://", "counters_url": "memory://"},
        "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
    }
    path = tmp_path_factory.mktemp("gw") / "turnout.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    app = create_app(load_config(path), environ={"VENDOR_KEY": "vendor-secret"})
    served = serve_in_thread(app)
    _, api_key = app.state.gatekeeper.key_store.create(KeySpec("providers-e2e"))
    yield Gateway(app, served.server, served.thread, served.sock, str(api_key))
    served.stop()


@pytest.fixture
def up(
    vendors: tuple[AnthropicUpstream, GeminiUpstream],
) -> Iterator[tuple[AnthropicUpstream, GeminiUpstream]]:
    for server in vendors:
        server.reset()
    yield vendors
    for server in vendors:
        server.reset()


@dataclass
class Answer:
    content: str | None
    tool_calls: dict[int, dict[str, Any]]
    finish_reason: str | None
    usage: Any


def ask(
    gw: Gateway, stream: bool, model: str, messages: list[dict[str, Any]], **extra: Any
) -> Answer:
    """Call the gateway with the openai client; collect the answer either way."""
    create: Any = gw.client().chat.completions.create
    calls: dict[int, dict[str, Any]] = {}
    if not stream:
        out = create(model=model, messages=messages, **extra)
        message = out.choices[0].message
        for i, c in enumerate(message.tool_calls or []):
            calls[i] = {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        return Answer(message.content, calls, out.choices[0].finish_reason, out.usage)
    text, finish, usage = "", None, None
    events = create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    for chunk in events:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                if call.index not in calls:  # the first delta of a call carries id and name
                    assert call.id and call.function and call.function.name
                    calls[call.index] = {
                        "id": call.id,
                        "name": call.function.name,
                        "arguments": "",
                    }
                else:  # later deltas carry argument fragments only
                    assert call.id is None and (call.function is None or not call.function.name)
                if call.function and call.function.arguments:
                    calls[call.index]["arguments"] += call.function.arguments
            finish = choice.finish_reason or finish
    return Answer(text or None, calls, finish, usage)


USER: list[dict[str, Any]] = [{"role": "user", "content": "hello"}]
BOTH = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


@BOTH
def test_anthropic_cache_write_usage_is_priced_exactly(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 12304,
        "cache_read_input_tokens": 0,
        "output_tokens": 550,
    }
    claude.script(AnthropicAnswer.text("Cached and answered.", usage=usage))
    answer = ask(gateway, stream, "claude-only", USER)
    assert answer.content == "Cached and answered."
    assert answer.usage.prompt_tokens == 12307 and answer.usage.completion_tokens == 550
    row = gateway.rows()[-1]
    assert row.status == "ok" and row.deployment == "claude"
    assert row.cost_usd == 0.054399 and row.cost_estimated is False
    assert row.usage.cache_write_input_tokens == 12304


@BOTH
def test_anthropic_stream_usage_is_cumulative(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    claude.script(
        AnthropicAnswer.text(
            "Fifteen tokens of answer.",
            usage={"input_tokens": 25, "output_tokens": 15},
            start_usage={"input_tokens": 25, "output_tokens": 1},
            delta_usage={"output_tokens": 15},
        )
    )
    answer = ask(gateway, stream, "claude-only", USER)
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (25, 15)
    assert answer.usage.total_tokens == 40
    assert gateway.rows()[-1].usage.total_tokens == 40


TOOL_INPUTS = [
    {"city": "Zürich", "units": "celsius", "days": [1, 2, 3]},
    {"timezone": "Europe/Oslo", "format": {"24h": True, "seconds": False}},
]


@BOTH
def test_anthropic_text_and_two_fragmented_tool_calls(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    claude.script(
        AnthropicAnswer(
            content=[
                {"type": "text", "text": "Let me check both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": TOOL_INPUTS[0],
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01B",
                    "name": "get_time",
                    "input": TOOL_INPUTS[1],
                },
            ],
            stop_reason="tool_use",
            json_piece_chars=5,
        )
    )
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    answer = ask(gateway, stream, "claude-only", USER, tools=tools)
    assert answer.content == "Let me check both."
    assert sorted(answer.tool_calls) == [0, 1]
    assert [answer.tool_calls[i]["id"] for i in (0, 1)] == ["toolu_01A", "toolu_01B"]
    assert [answer.tool_calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert [json.loads(answer.tool_calls[i]["arguments"]) for i in (0, 1)] == TOOL_INPUTS
    assert answer.finish_reason == "tool_calls"
    sent = claude.requests[-1].json()
    assert [t["name"] for t in sent["tools"]] == ["get_weather", "get_time"]


@BOTH
def test_tool_results_go_back_to_anthropic(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    claude.script(AnthropicAnswer.text("It is 18C in Zürich."))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(TOOL_INPUTS[0])},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"},
    ]
    answer = ask(gateway, stream, "claude-only", messages)
    assert answer.content == "It is 18C in Zürich." and answer.finish_reason == "stop"
    sent = claude.requests[-1].json()
    assert sent["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use metric units."},
    ]
    assert sent["messages"][1]["content"][0]["input"] == TOOL_INPUTS[0]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"}
    ]


@BOTH
def test_gemini_usage_cached_and_thoughts(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    _, gemini = up
    usage = {
        "promptTokenCount": 4000,
        "cachedContentTokenCount": 3000,
        "candidatesTokenCount": 100,
        "thoughtsTokenCount": 400,
        "totalTokenCount": 4500,
    }
    gemini.script(
        GeminiAnswer(
            parts=[{"text": "thinking", "thought": True}, {"text": "Short answer."}], usage=usage
        )
    )
    answer = ask(gateway, stream, "gemini-only", USER)
    assert answer.content == "Short answer."
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4000, 500)
    assert answer.usage.prompt_tokens_details.cached_tokens == 3000
    assert answer.usage.completion_tokens_details.reasoning_tokens == 400
    # 1000 * 0.30 + 3000 * 0.03 + 500 * 2.50 = 300 + 90 + 1250 micro-USD
    assert gateway.rows()[-1].cost_usd == 0.00164


@BOTH
def test_gemini_two_tool_calls_and_round_trip(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    _, gemini = up
    gemini.script(
        GeminiAnswer(
            parts=[
                {"text": "Checking."},
                {
                    "functionCall": {"name": "get_weather", "args": TOOL_INPUTS[0]},
                    "thoughtSignature": "c2lnbmF0dXJl",
                },
                {"functionCall": {"name": "get_time", "args": TOOL_INPUTS[1]}},
            ]
        ),
        GeminiAnswer.text("Done."),
    )
    tools = [{"type": "function", "function": {"name": n}} for n in ("get_weather", "get_time")]
    answer = ask(gateway, stream, "gemini-only", USER, tools=tools)
    assert answer.content == "Checking." and answer.finish_reason == "tool_calls"
    assert [answer.tool_calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert [json.loads(answer.tool_calls[i]["arguments"]) for i in (0, 1)] == TOOL_INPUTS
    follow_up = [
        *USER,
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": answer.tool_calls[i]["id"],
                    "type": "function",
                    "function": {
                        "name": answer.tool_calls[i]["name"],
                        "arguments": answer.tool_calls[i]["arguments"],
                    },
                }
                for i in (0, 1)
            ],
        },
        {"role": "tool", "tool_call_id": answer.tool_calls[0]["id"], "content": '{"t": 18}'},
        {"role": "tool", "tool_call_id": answer.tool_calls[1]["id"], "content": "12:00"},
    ]
    assert ask(gateway, stream, "gemini-only", follow_up, tools=tools).content == "Done."
    sent = gemini.requests[-1].json()
    assert sent["contents"][1]["parts"][1]["thoughtSignature"] == "c2lnbmF0dXJl"
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"t": 18}}},
        {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
    ]


def image_message(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in it?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


@BOTH
def test_images_reach_both_vendors_byte_identical(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, gemini = up
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert ask(gateway, stream, "claude-only", image_message(data_url)).content
    assert ask(gateway, stream, "gemini-only", image_message(data_url)).content
    source = claude.requests[-1].json()["messages"][0]["content"][1]["source"]
    assert source["media_type"] == "image/png" and base64.b64decode(source["data"]) == PNG
    inline = gemini.requests[-1].json()["contents"][0]["parts"][1]["inlineData"]
    assert inline["mimeType"] == "image/png" and base64.b64decode(inline["data"]) == PNG
    ask(gateway, stream, "claude-only", image_message("https://example.com/cat.webp"))
    assert claude.requests[-1].json()["messages"][0]["content"][1]["source"] == {
        "type": "url",
        "url": "https://example.com/cat.webp",
    }


@BOTH
def test_image_request_never_goes_to_a_text_only_model(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    ask(gateway, stream, "mixed", image_message(data_url))
    assert claude.requests[-1].json()["model"] == "claude-up"  # not the cheaper text-only one
    ask(gateway, stream, "mixed", USER)
    assert claude.requests[-1].json()["model"] == "claude-text-up"
    before = len(claude.requests)
    with pytest.raises(openai.BadRequestError, match="vision") as info:
        ask(gateway, stream, "text-only", image_message(data_url))
    assert info.value.status_code == 400
    assert len(claude.requests) == before


@BOTH
def test_empty_user_turn_is_a_400_naming_the_index_without_cooldown(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, gemini = up
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": ""}]},
    ]
    for route in ("claude-only", "gemini-only"):
        with pytest.raises(openai.BadRequestError, match=r"messages\[2\]\.content"):
            ask(gateway, stream, route, messages)
    assert claude.requests == [] and gemini.requests == []
    assert gateway.breaker("claude") == "closed" and gateway.breaker("gemini") == "closed"
    # the empty assistant turn alone is dropped, not an error
    ask(gateway, stream, "claude-only", messages[:2] + [{"role": "user", "content": "b"}])
    assert claude.requests[-1].json()["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


@BOTH
def test_overloaded_anthropic_falls_back_to_gemini(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, gemini = up
    claude.script(
        anthropic_error(529, "overloaded_error", "Overloaded"),
        AnthropicAnswer.text(
            "never", stream_error=("overloaded_error", "Overloaded"), stream_error_after=0
        )
        if stream
        else anthropic_error(529, "overloaded_error", "Overloaded"),
    )
    gemini.script(GeminiAnswer.text("Gemini answered."))
    answer = ask(gateway, stream, "claude-first", USER)
    assert answer.content == "Gemini answered."
    row = gateway.rows()[-1]
    assert row.deployment == "gemini"
    assert [a.status for a in row.attempts] == ["failed", "failed", "ok"]
    assert len(row.attempts) == 3


@BOTH
def test_anthropic_bad_request_is_returned_without_cooldown(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, _ = up
    claude.script(anthropic_error(400, "invalid_request_error", "messages.0: bad thing"))
    with pytest.raises(openai.BadRequestError, match="bad thing"):
        ask(gateway, stream, "claude-first", USER)
    assert gateway.breaker("claude") == "closed"


def test_anthropic_error_event_after_content_reaches_the_client(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream]
) -> None:
    claude, gemini = up
    claude.script(
        AnthropicAnswer(
            content=[{"type": "text", "text": "Half of"}, {"type": "text", "text": " it"}],
            stream_error=("overloaded_error", "Overloaded"),
        )
    )
    received = ""
    with pytest.raises(openai.APIError, match="overloaded"):
        create: Any = gateway.client().chat.completions.create
        for chunk in create(model="claude-first", messages=USER, stream=True):
            for choice in chunk.choices:
                received += choice.delta.content or ""
    assert received == "Half of"
    assert gemini.requests == []  # content had reached the client: no fallback


def _error_body(gw: Gateway, stream: bool, model: str, messages: list[dict[str, Any]]) -> Any:
    """The error object of a request the gateway must refuse with 400 (client closed after)."""
    with gw.client() as client:
        try:
            client.chat.completions.create(model=model, messages=messages, stream=stream)  # type: ignore[call-overload]
        except openai.BadRequestError as exc:
            return exc.body
    raise AssertionError("expected a 400")


@BOTH
def test_anthropic_tool_result_for_an_unknown_call_is_a_400_naming_the_index(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    claude, gemini = up
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
        {"role": "tool", "tool_call_id": "call_404", "content": "2"},
    ]
    for route in ("claude-only", "gemini-only"):
        body = _error_body(gateway, stream, route, messages)
        assert body["param"] == "messages[3].tool_call_id" and body["code"] == "invalid_value"
        assert "call_404" in body["message"]
    assert claude.requests == [] and gemini.requests == []
    ask(gateway, stream, "claude-only", messages[:3])  # a matching id is still forwarded
    assert len(claude.requests) == 1


@BOTH
def test_translation_errors_use_the_gateway_param_style_and_a_code(
    gateway: Gateway, up: tuple[AnthropicUpstream, GeminiUpstream], stream: bool
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": ""}]}]
    body = _error_body(gateway, stream, "claude-only", messages)
    assert body["param"] == "messages[0].content" and body["code"] == "invalid_value"
