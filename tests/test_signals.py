import json
from typing import Any

import pytest

from turnout import route_request_from_chat
from turnout.errors import InvalidRequestError
from turnout.signals import (
    CATEGORIES,
    TIER_HEADER,
    Signals,
    compute_signals,
    detect_language,
    parse_tier,
    prompt_terms,
)
from turnout.types import RouteRequest


def _body(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def test_signals_from_a_plain_chat_body() -> None:
    body = _body("Translate to German: the meeting is moved to Thursday.")
    request = route_request_from_chat(body, metadata={"team": "support", "key_id": "k1"})
    s = compute_signals(request, body)
    assert s.category == "translation"
    assert 0.0 <= s.category_confidence <= 1.0
    assert 0.0 <= s.difficulty <= 1.0
    assert s.language == "en"
    assert s.modalities == ("text",)
    assert not s.has_images and not s.tools and not s.structured_output
    assert s.input_tokens == request.input_tokens > 0
    assert s.conversation_depth == 1
    assert s.tier is None
    assert s.metadata == {"team": "support", "key_id": "k1"}


def test_images_tools_json_and_depth() -> None:
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "response_format": {"type": "json_object"},
    }
    s = compute_signals(route_request_from_chat(body), body)
    assert s.modalities == ("text", "image", "audio")
    assert s.has_images and s.tools and s.structured_output
    assert s.conversation_depth == 2


def test_without_a_body_capabilities_stand_in() -> None:
    request = RouteRequest(
        prompt="Describe the chart", required_capabilities=frozenset({"vision", "tools"})
    )
    s = compute_signals(request)
    assert s.has_images and s.tools and not s.structured_output
    assert s.conversation_depth == 1


def test_tier_header_beats_route_default() -> None:
    request = RouteRequest(prompt="hello there", tier="batch")
    assert compute_signals(request, default_tier="interactive").tier == "batch"
    assert compute_signals(RouteRequest(prompt="hi"), default_tier="interactive").tier == (
        "interactive"
    )


@pytest.mark.parametrize(
    ("value", "tier"),
    [(None, None), ("", None), ("batch", "batch"), (" Interactive ", "interactive")],
)
def test_parse_tier(value: str | None, tier: str | None) -> None:
    assert parse_tier(value) == tier


def test_parse_tier_rejects_other_values_naming_the_header() -> None:
    with pytest.raises(InvalidRequestError, match="x-turnout-tier.*'urgent'") as info:
        parse_tier("urgent")
    assert info.value.param == TIER_HEADER


def test_signals_are_frozen_and_json_ready() -> None:
    s = compute_signals(RouteRequest(prompt="Write a haiku about rain", metadata={"team": "a"}))
    with pytest.raises(AttributeError):
        s.category = "code"  # type: ignore[misc]
    data = json.loads(json.dumps(s.to_dict()))
    assert data["category"] in (*CATEGORIES, "unknown")
    assert set(data) == {f for f in Signals.__dataclass_fields__}


def test_empty_prompt_is_unknown_not_an_error() -> None:
    s = compute_signals(RouteRequest(prompt=""))
    assert s.category == "unknown"
    assert s.language == "unknown"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Could you please tell me what the weather is like in the city today?", "en"),
        ("Ich habe eine Frage zu meiner Bestellung, die nicht angekommen ist.", "de"),
        ("Je voudrais savoir pourquoi ma commande n'est pas encore arrivée.", "fr"),
        ("¿Por qué mi pedido no ha llegado todavía? Es muy urgente para mí.", "es"),
        ("Vorrei sapere perché il mio ordine non è ancora arrivato, è molto urgente.", "it"),
        ("Gostaria de saber por que meu pedido ainda não chegou, é muito urgente.", "pt"),
        ("Почему мой заказ до сих пор не пришёл?", "ru"),
        ("Чому моє замовлення досі не прийшло?", "uk"),
        ("我的订单为什么还没有到？", "zh"),
        ("注文した商品がまだ届きません。", "ja"),
        ("주문한 상품이 아직 도착하지 않았어요.", "ko"),
        ("لماذا لم يصل طلبي بعد؟", "ar"),
        ("मेरा ऑर्डर अभी तक क्यों नहीं आया?", "hi"),
        ("Γιατί δεν έχει φτάσει ακόμα η παραγγελία μου;", "el"),
        ("ok", "unknown"),
        ("", "unknown"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_prompt_terms_bounded_for_long_prompts() -> None:
    short = prompt_terms("Summarise this.")
    assert "summarise" in short and "summarise this" in short
    assert any(t.startswith("#chars:") for t in short)
    long = prompt_terms("word " * 100_000 + "please summarise the text above")
    assert len(long) < 2 * 2500
    assert "summarise" in long  # the tail is read
