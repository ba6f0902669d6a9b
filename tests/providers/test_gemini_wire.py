"""Pure translation OpenAI <-> Gemini generateContent: bodies, usage, errors, stream events."""

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
from turnout.providers._gemini_stream import GeminiStreamTranslator
from turnout.providers._gemini_wire import (
    error_from_wire,
    from_wire,
    to_wire,
    usage_from_wire,
)
from turnout.providers.sse import SSEParser
from turnout.testing.gemini_upstream import GeminiAnswer

JPEG = bytes(reversed(range(256))) * 5
JPEG_B64 = base64.b64encode(JPEG).decode()
USAGE = {
    "promptTokenCount": 1200,
    "cachedContentTokenCount": 1000,
    "candidatesTokenCount": 80,
    "thoughtsTokenCount": 120,
    "totalTokenCount": 1400,
}


def test_system_instruction_merges_in_order_and_no_system_role() -> None:
    messages = [
        {"role": "system", "content": "One."},
        {
            "role": "developer",
            "content": [{"type": "text", "text": "Two."}, {"type": "text", "text": ""}],
        },
        {"role": "user", "content": "hi"},
    ]
    out = to_wire({"messages": messages})
    assert out["systemInstruction"] == {"parts": [{"text": "One."}, {"text": "Two."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    flat = to_wire({"messages": messages}, system_role=False)
    assert "systemInstruction" not in flat
    assert flat["contents"][0]["parts"] == [{"text": "One.\n\nTwo."}, {"text": "hi"}]


def test_images_inline_byte_identical_and_file_uri() -> None:
    out = to_wire(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/jpeg;base64,{JPEG_B64}"},
                        },
                        {"type": "image_url", "image_url": "https://example.com/a/b.PNG?x=1"},
                        {"type": "text", "text": "what is this?"},
                    ],
                }
            ]
        }
    )
    parts = out["contents"][0]["parts"]
    assert parts[0]["inlineData"]["mimeType"] == "image/jpeg"
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == JPEG
    assert parts[1] == {
        "fileData": {"fileUri": "https://example.com/a/b.PNG?x=1", "mimeType": "image/png"}
    }


def test_tools_calls_results_and_thought_signature_round_trip() -> None:
    answer = GeminiAnswer(
        parts=[
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2ln",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
        usage=USAGE,
    )
    openai = from_wire(answer.response(), created=3, model="gemini-x", call_id_prefix="call_q")
    message = openai["choices"][0]["message"]
    assert openai["choices"][0]["finish_reason"] == "tool_calls"
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert calls[0]["id"] != calls[1]["id"]
    body = {
        "messages": [
            {"role": "user", "content": "weather?"},
            message,
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp_c": 18}'},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "12:00"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "d",
                    "parameters": {"type": "object"},
                },
            }
        ],
        "tool_choice": "required",
    }
    out = to_wire(body)
    model_turn = out["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "c2ln",
    }
    assert out["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
        ],
    }
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "d",
                    "parametersJsonSchema": {"type": "object"},
                }
            ]
        }
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


def test_tool_result_for_unknown_call_names_the_index() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]\.tool_call_id"):
        to_wire(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "nope", "content": "1"},
                ]
            }
        )


def test_empty_turns() -> None:
    out = to_wire(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "text", "text": ""}]},
                {"role": "user", "content": "b"},
            ]
        }
    )
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]\.content"):
        to_wire({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": []}]})


def test_generation_config() -> None:
    out = to_wire(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.1,
            "top_p": 0.5,
            "max_tokens": 9,
            "stop": ["a", "b"],
            "seed": 4,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"type": "object"}},
            },
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.1,
        "topP": 0.5,
        "seed": 4,
        "maxOutputTokens": 9,
        "stopSequences": ["a", "b"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }


def test_usage_cached_and_thoughts_and_cost() -> None:
    usage = usage_from_wire(USAGE)
    assert (usage.input_tokens, usage.cached_input_tokens) == (1200, 1000)
    assert (usage.output_tokens, usage.reasoning_tokens) == (200, 120)
    card = ModelCard(
        id="g",
        provider="google",
        input_usd_per_mtok=0.30,
        cached_input_usd_per_mtok=0.03,
        output_usd_per_mtok=2.50,
    )
    # 200 * 0.30 + 1000 * 0.03 + 200 * 2.50 = 60 + 30 + 500 micro-USD
    assert cost_usd(usage, card) == 0.00059
    out = from_wire(
        GeminiAnswer.text("hi", usage=USAGE).response(), created=0, model="g", call_id_prefix="c"
    )
    assert out["usage"]["prompt_tokens"] == 1200
    assert out["usage"]["completion_tokens"] == 200
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 1000
    assert out["usage"]["completion_tokens_details"]["reasoning_tokens"] == 120


def test_thought_parts_are_not_content_and_blocked_prompt() -> None:
    answer = GeminiAnswer(parts=[{"text": "thinking...", "thought": True}, {"text": "Answer."}])
    out = from_wire(answer.response(), created=0, model="g", call_id_prefix="c")
    assert out["choices"][0]["message"]["content"] == "Answer."
    blocked = from_wire(
        {"promptFeedback": {"blockReason": "SAFETY"}}, created=0, model="g", call_id_prefix="c"
    )
    assert blocked["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable"),
    [
        (
            429,
            {
                "error": {
                    "code": 429,
                    "message": "quota",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
                    ],
                }
            },
            RateLimited,
            True,
        ),
        (
            503,
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded.",
                    "status": "UNAVAILABLE",
                }
            },
            ProviderError,
            True,
        ),
        (500, {"error": {"code": 500, "message": "x", "status": "INTERNAL"}}, ProviderError, True),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                        }
                    ],
                }
            },
            AuthFailed,
            False,
        ),
        (
            403,
            {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}},
            AuthFailed,
            False,
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "The input token count (1200000) exceeds the "
                    "maximum number of tokens allowed (1048576).",
                    "status": "INVALID_ARGUMENT",
                }
            },
            ContextTooLong,
            False,
        ),
        (
            400,
            {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
            UpstreamBadRequest,
            False,
        ),
    ],
)
def test_error_mapping(
    status: int, body: dict[str, Any], cls: type[ProviderError], retryable: bool
) -> None:
    err = error_from_wire(status, body)
    assert type(err) is cls and err.retryable is retryable and err.provider == "gemini"
    if cls is RateLimited:
        assert isinstance(err, RateLimited) and err.retry_after_s == 37.0


def run_stream(raw: bytes, piece: int) -> tuple[list[dict[str, Any]], GeminiStreamTranslator]:
    parser = SSEParser()
    translator = GeminiStreamTranslator(model="g", created=1, call_id_prefix="call_s")
    chunks: list[dict[str, Any]] = []
    for i in range(0, len(raw), piece):
        for event in parser.feed(raw[i : i + piece]):
            chunks += translator.feed_event(event)
    for event in parser.flush():
        chunks += translator.feed_event(event)
    assert translator.done
    return chunks + translator.finish(), translator


@pytest.mark.parametrize("piece", [1, 3, 17, 100_000])
def test_stream_text_tools_usage_any_split(piece: int) -> None:
    answer = GeminiAnswer(
        parts=[
            {"text": "Ich prüfe das Wetter ☔ für dich."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Köln"}}},
            {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
        ],
        usage=USAGE,
    )
    raw = b": keep-alive\r\n\r\n" + b"".join(answer.events())
    chunks, translator = run_stream(raw, piece)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Ich prüfe das Wetter ☔ für dich."
    calls = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert [c["index"] for c in calls] == [0, 1]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Köln"}
    assert all(c["id"] for c in calls)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] == 1200
    assert chunks[-1]["usage"]["completion_tokens"] == 200
    assert translator.usage == usage_from_wire(USAGE)


def test_error_inside_stream_raises_mapped_error() -> None:
    answer = GeminiAnswer.text("partial answer", stream_error=(503, "The model is overloaded."))
    parser = SSEParser()
    translator = GeminiStreamTranslator(model="g", created=1, call_id_prefix="c")
    with pytest.raises(ProviderError, match="overloaded") as info:
        for event in parser.feed(b"".join(answer.events())):
            translator.feed_event(event)
    assert info.value.retryable and info.value.status_code == 503


def test_pdf_file_part_becomes_inline_data_byte_identical() -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256))
    data = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    part = {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}}
    out = to_wire({"messages": [{"role": "user", "content": [part]}]})
    inline = out["contents"][0]["parts"][0]["inlineData"]
    assert inline["mimeType"] == "application/pdf" and base64.b64decode(inline["data"]) == pdf
