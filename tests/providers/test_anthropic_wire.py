"""Pure translation OpenAI <-> Anthropic Messages: bodies, usage, errors, stream events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from turnout.accounting import cost_usd
from turnout.catalog import ModelCard
from turnout.errors import (
    AuthFailed,
    ContextTooLong,
    InvalidRequestError,
    ProviderError,
    RateLimited,
    UpstreamBadRequest,
)
from turnout.providers._anthropic_stream import AnthropicStreamTranslator
from turnout.providers._anthropic_wire import (
    error_from_wire,
    from_wire,
    to_wire,
    usage_from_wire,
)
from turnout.providers.sse import SSEParser
from turnout.testing.anthropic_upstream import AnthropicAnswer

PNG = bytes(range(256)) * 3
PNG_B64 = base64.b64encode(PNG).decode()


def wire(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return to_wire({"model": "auto", "messages": messages, **extra}, model="claude-x")


def test_system_messages_merge_in_order_string_and_parts() -> None:
    out = wire(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "system", "content": [{"type": "text", "text": ""}, "Be kind."]},
            {"role": "user", "content": "hi"},
        ]
    )
    assert out["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
        {"type": "text", "text": "Be kind."},
    ]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert out["model"] == "claude-x" and out["max_tokens"] == 4096


def test_no_system_role_moves_system_text_into_first_user_turn() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "system", "content": "B"},
            {"role": "user", "content": "hi"},
        ]
    }
    out = to_wire(body, model="m", system_role=False)
    assert "system" not in out
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "A\n\nB"},
        {"type": "text", "text": "hi"},
    ]


def test_cache_control_on_parts_is_kept() -> None:
    part = {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
    out = wire([{"role": "system", "content": [part]}, {"role": "user", "content": [part]}])
    assert out["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert out["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_images_base64_byte_identical_and_https_url() -> None:
    out = wire(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    blocks = out["messages"][0]["content"]
    assert blocks[1]["source"]["type"] == "base64"
    assert blocks[1]["source"]["media_type"] == "image/png"
    assert base64.b64decode(blocks[1]["source"]["data"]) == PNG
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


def test_bad_image_url_names_the_field() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.content\[0\]\.image_url\.url"):
        wire(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]
        )


def test_empty_text_blocks_and_empty_assistant_turns_are_dropped() -> None:
    out = wire(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "a"}],
            },
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "b"},
        ]
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_empty_user_turn_is_a_400_naming_the_index() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[2\]\.content") as info:
        wire(
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": ""},
            ]
        )
    assert info.value.status_code == 400 and info.value.param == "messages[2].content"


def test_tools_tool_calls_and_results_round_trip() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    out = wire(
        [
            {"role": "user", "content": "weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "3C"}],
            },
        ],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "description": "Weather now",
        }
    ]
    assert out["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "3C"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice_strings(choice: str, expected: dict[str, str]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = wire([{"role": "user", "content": "x"}], tools=tools, tool_choice=choice)
    assert out["tool_choice"] == expected
    assert out["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_bad_tool_arguments_name_the_field() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]\.tool_calls\[0\]"):
        wire(
            [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}],
                },
            ]
        )


def test_parameters_are_translated() -> None:
    out = wire(
        [{"role": "user", "content": "x"}],
        max_completion_tokens=77,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        user="u-1",
    )
    assert (out["max_tokens"], out["temperature"], out["top_p"]) == (77, 0.2, 0.9)
    assert out["stop_sequences"] == ["END"] and out["metadata"] == {"user_id": "u-1"}


def test_from_wire_text_tools_and_finish_reason() -> None:
    answer = AnthropicAnswer(
        content=[
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, "é"]}},
        ],
        stop_reason="tool_use",
    )
    out = from_wire(answer.message(), created=5, model="claude-x")
    message = out["choices"][0]["message"]
    assert message["content"] == "Checking."
    assert message["tool_calls"][0]["id"] == "toolu_1"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": [1, "é"]}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["object"] == "chat.completion" and out["created"] == 5


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    out = from_wire(
        AnthropicAnswer.text("x", stop_reason=stop_reason).message(), created=0, model="m"
    )
    assert out["choices"][0]["finish_reason"] == finish


def test_acceptance_cache_write_usage_cost_and_prompt_tokens() -> None:
    wire_usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 12304,
        "cache_read_input_tokens": 0,
        "output_tokens": 550,
    }
    usage = usage_from_wire(wire_usage)
    card = ModelCard(
        id="claude-x",
        provider="anthropic",
        input_usd_per_mtok=3.00,
        cache_write_usd_per_mtok=3.75,
        cached_input_usd_per_mtok=0.30,
        output_usd_per_mtok=15,
    )
    assert cost_usd(usage, card) == 0.054399
    out = from_wire(AnthropicAnswer.text("x", usage=wire_usage).message(), created=0, model="m")
    assert out["usage"]["prompt_tokens"] == 12307
    assert out["usage"]["completion_tokens"] == 550


def test_cache_reads_count_as_cached_input() -> None:
    usage = usage_from_wire(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 90,
            "cache_creation_input_tokens": 5,
            "output_tokens": 2,
        }
    )
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_input_tokens) == (
        105,
        90,
        5,
    )


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls", "retryable"),
    [
        (429, "rate_limit_error", "slow down", RateLimited, True),
        (529, "overloaded_error", "Overloaded", ProviderError, True),
        (500, "api_error", "boom", ProviderError, True),
        (401, "authentication_error", "invalid x-api-key", AuthFailed, False),
        (403, "permission_error", "no", AuthFailed, False),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
            ContextTooLong,
            False,
        ),
        (400, "invalid_request_error", "messages.1: empty content", UpstreamBadRequest, False),
        (404, "not_found_error", "model: claude-nope", UpstreamBadRequest, False),
    ],
)
def test_error_mapping(
    status: int, kind: str, message: str, cls: type[ProviderError], retryable: bool
) -> None:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    err = error_from_wire(status, body, "7")
    assert type(err) is cls
    assert err.retryable is retryable and err.status_code == status and err.provider == "anthropic"
    assert message in str(err)
    if cls is RateLimited:
        assert isinstance(err, RateLimited) and err.retry_after_s == 7.0


def translate(raw: bytes, piece: int) -> tuple[list[dict[str, Any]], AnthropicStreamTranslator]:
    parser, translator = SSEParser(), AnthropicStreamTranslator(model="m", created=1)
    chunks: list[dict[str, Any]] = []
    for i in range(0, len(raw), piece):
        for event in parser.feed(raw[i : i + piece]):
            chunks += translator.feed_event(event)
    assert translator.done
    return chunks + translator.finish(), translator


def collect(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, dict[str, Any]], str | None]:
    text, finish = "", None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call["index"], {"arguments": "", "deltas": 0})
                if slot["deltas"] == 0:
                    slot["id"], slot["name"] = call["id"], call["function"]["name"]
                else:
                    assert "id" not in call and "name" not in call["function"]
                slot["deltas"] += 1
                slot["arguments"] += call["function"].get("arguments", "")
            finish = choice["finish_reason"] or finish
    return text, calls, finish


TOOL_ANSWER = AnthropicAnswer(
    content=[
        {"type": "text", "text": "Je vérifie la météo ☀️ pour vous."},
        {
            "type": "tool_use",
            "id": "toolu_A",
            "name": "get_weather",
            "input": {"city": "Zürich", "units": "celsius", "days": [1, 2]},
        },
        {
            "type": "tool_use",
            "id": "toolu_B",
            "name": "get_time",
            "input": {"tz": "Europe/Oslo", "nested": {"ok": True}},
        },
    ],
    stop_reason="tool_use",
    usage={"input_tokens": 40, "output_tokens": 60},
    json_piece_chars=3,
)


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 64, 100_000])
def test_acceptance_stream_text_and_two_tool_calls_any_split(piece: int) -> None:
    raw = b": keep-alive\n\n" + b"".join(TOOL_ANSWER.events())
    chunks, _ = translate(raw, piece)
    text, calls, finish = collect(chunks)
    assert text == "Je vérifie la météo ☀️ pour vous."
    assert sorted(calls) == [0, 1]
    assert (calls[0]["id"], calls[0]["name"]) == ("toolu_A", "get_weather")
    assert (calls[1]["id"], calls[1]["name"]) == ("toolu_B", "get_time")
    assert json.loads(calls[0]["arguments"]) == TOOL_ANSWER.content[1]["input"]
    assert json.loads(calls[1]["arguments"]) == TOOL_ANSWER.content[2]["input"]
    assert calls[0]["deltas"] > 3  # arguments really arrived in fragments
    assert finish == "tool_calls"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 100


def test_acceptance_stream_usage_is_cumulative_not_added() -> None:
    answer = AnthropicAnswer.text(
        "Hello!",
        usage={"input_tokens": 25, "output_tokens": 15},
        start_usage={"input_tokens": 25, "output_tokens": 1},
        delta_usage={"output_tokens": 15},
    )
    chunks, translator = translate(b"".join(answer.events()), 7)
    assert translator.usage.input_tokens == 25 and translator.usage.output_tokens == 15
    assert chunks[-1]["usage"]["total_tokens"] == 40
    assert from_wire(answer.message(), created=0, model="m")["usage"] == chunks[-1]["usage"]


def test_stream_message_delta_with_cache_counts_overrides_start() -> None:
    answer = AnthropicAnswer.text(
        "x",
        usage={"input_tokens": 3, "output_tokens": 9},
        start_usage={"input_tokens": 3, "cache_creation_input_tokens": 0, "output_tokens": 1},
        delta_usage={"input_tokens": 3, "cache_creation_input_tokens": 100, "output_tokens": 9},
    )
    _, translator = translate(b"".join(answer.events()), 1000)
    assert translator.usage.input_tokens == 103
    assert translator.usage.cache_write_input_tokens == 100


def test_error_event_inside_stream_raises_retryable_overload() -> None:
    answer = AnthropicAnswer.text("partial", stream_error=("overloaded_error", "Overloaded"))
    parser, translator = SSEParser(), AnthropicStreamTranslator(model="m", created=1)
    with pytest.raises(ProviderError, match="overloaded_error") as info:
        for event in parser.feed(b"".join(answer.events())):
            translator.feed_event(event)
    assert info.value.retryable and type(info.value) is ProviderError
    assert not translator.done


def test_tool_without_argument_deltas_gets_empty_object() -> None:
    translator = AnthropicStreamTranslator(model="m", created=1)
    translator.feed("message_start", json.dumps({"type": "message_start", "message": {"id": "x"}}))
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "now", "input": {}},
    }
    first = translator.feed("content_block_start", json.dumps(start))
    last = translator.feed("content_block_stop", '{"type": "content_block_stop", "index": 0}')
    assert first[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "now"
    assert last[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == "{}"


PDF = b"%PDF-1.7\n" + bytes(range(256))


def test_pdf_file_part_becomes_a_document_block_byte_identical() -> None:
    data = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
    part = {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}}
    block = wire([{"role": "user", "content": [part]}])["messages"][0]["content"][0]
    assert block["type"] == "document" and block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == PDF
    with pytest.raises(InvalidRequestError, match=r"content\[0\]\.file\.file_data"):
        wire([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}])
    with pytest.raises(InvalidRequestError, match="PDF files only"):
        text = {"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}}
        wire([{"role": "user", "content": [text]}])


def test_response_format_json_object_dropped_json_schema_refused() -> None:
    out = wire(
        [{"role": "user", "content": "JSON please"}], response_format={"type": "json_object"}
    )
    assert "response_format" not in out
    with pytest.raises(InvalidRequestError, match="json_schema"):
        wire(
            [{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
        )


def test_unsupported_part_and_role_name_the_field() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.content\[0\]\.type"):
        wire([{"role": "user", "content": [audio]}])
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.role"):
        wire([{"role": "narrator", "content": "x"}])


def test_foreign_tool_call_ids_are_made_valid_and_still_match() -> None:
    gemini_id = "call_abc_0__thought__c2ln+bmF0/dXJl=="
    out = wire(
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [{"id": gemini_id, "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": gemini_id, "content": "1"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "fc:1/2", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "fc:1/2", "content": "2"},
        ]
    )
    assert out["messages"][1]["content"][0]["id"] == "call_abc_0"
    assert out["messages"][2]["content"][0]["tool_use_id"] == "call_abc_0"
    assert out["messages"][3]["content"][0]["id"] == "fc_1_2"
    assert out["messages"][4]["content"][0]["tool_use_id"] == "fc_1_2"
