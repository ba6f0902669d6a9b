"""Request signals: what a request *is* and *who sends it*, computed once per request.

:func:`compute_signals` reads a :class:`turnout.types.RouteRequest` (and, when there is one,
the OpenAI chat body it came from) and returns a frozen, JSON-ready :class:`Signals` that
the declarative rules (:mod:`turnout.rules`) match on and the ledger records. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from turnout.errors import InvalidRequestError
from turnout.signals.classifier import CategoryClassifier, default_classifier
from turnout.signals.language import detect_language
from turnout.types import RouteRequest

__all__ = ["TIER_HEADER", "TIERS", "Signals", "Tier", "compute_signals", "parse_tier"]

Tier = Literal["interactive", "batch"]
#: The service tiers a caller may ask for.
TIERS: tuple[Tier, ...] = get_args(Tier)
#: The request header that carries the tier.
TIER_HEADER = "x-turnout-tier"


@dataclass(frozen=True, slots=True)
class Signals:
    """What the router knows about one request before choosing a model.

    Attributes:
        category: Task category (see :data:`turnout.signals.CATEGORIES`) or ``"unknown"``.
        category_confidence: The classifier's probability for its best category, in [0, 1].
        difficulty: Estimated difficulty in [0, 1] (expected share of models that fail).
        language: ISO 639-1 code of the prompt's language, or ``"unknown"``.
        modalities: Input modalities present: ``"text"``, ``"image"``, ``"audio"``, ``"file"``.
        tools: Whether the caller offered tools (or legacy functions).
        structured_output: Whether the caller asked for JSON output (schema or JSON mode).
        input_tokens: Estimated prompt tokens (offline tokenizer), whole conversation.
        conversation_depth: Number of user turns in the conversation.
        tier: ``"interactive"``, ``"batch"``, or ``None`` when neither header nor route says.
        metadata: Caller metadata (key id, team, ...), as given by the gateway.
    """

    category: str
    category_confidence: float
    difficulty: float
    language: str
    modalities: tuple[str, ...] = ("text",)
    tools: bool = False
    structured_output: bool = False
    input_tokens: int = 0
    conversation_depth: int = 1
    tier: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_images(self) -> bool:
        """Whether an image is part of the input."""
        return "image" in self.modalities

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every signal (for the ledger and ``RouteDecision.signals``)."""
        return {
            "category": self.category,
            "category_confidence": round(self.category_confidence, 4),
            "difficulty": round(self.difficulty, 4),
            "language": self.language,
            "modalities": list(self.modalities),
            "tools": self.tools,
            "structured_output": self.structured_output,
            "input_tokens": self.input_tokens,
            "conversation_depth": self.conversation_depth,
            "tier": self.tier,
            "metadata": dict(self.metadata),
        }


def parse_tier(value: str | None) -> Tier | None:
    """Validate the ``x-turnout-tier`` header value.

    Args:
        value: The header value (case-insensitive, surrounding spaces ignored), or ``None``.

    Returns:
        ``"interactive"``, ``"batch"``, or ``None`` if the header is absent or empty.

    Raises:
        InvalidRequestError: If the value is anything else (names the header and the value).
    """
    if value is None or not value.strip():
        return None
    tier = value.strip().lower()
    if tier == "interactive":
        return "interactive"
    if tier == "batch":
        return "batch"
    raise InvalidRequestError(
        f"header `{TIER_HEADER}` must be one of {list(TIERS)}; got {value!r}",
        param=TIER_HEADER,
    )


_PART_MODALITY = {
    "image_url": "image",
    "image": "image",
    "input_image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
}


def _body_shape(body: Mapping[str, Any]) -> tuple[set[str], bool, bool, int]:
    """(modalities, tools, structured output, user turns) of an OpenAI chat body."""
    modalities = {"text"}
    users = 0
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        users += message.get("role") == "user"
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    kind = _PART_MODALITY.get(str(part.get("type")))
                    if kind:
                        modalities.add(kind)
    tools = bool(body.get("tools") or body.get("functions"))
    fmt = body.get("response_format")
    structured = isinstance(fmt, Mapping) and fmt.get("type") in ("json_schema", "json_object")
    return modalities, tools, structured, users


_MODALITY_ORDER = ("text", "image", "audio", "file")


def compute_signals(
    request: RouteRequest,
    body: Mapping[str, Any] | None = None,
    *,
    default_tier: str | None = None,
    classifier: CategoryClassifier | None = None,
) -> Signals:
    """Compute the signals of one request.

    Args:
        request: The routing request (its ``prompt`` is classified; its ``tier`` and
            ``metadata`` come from the gateway's header and key).
        body: The OpenAI chat-completions body, if there is one: it adds audio/file
            modalities, JSON mode and the conversation depth. Without it these come from
            ``request.required_capabilities`` and depth is 1.
        default_tier: The route's tier when the request names none.
        classifier: The category classifier; ``None`` uses the shipped one.

    Returns:
        The frozen signals.

    Raises:
        ConfigError: If the shipped classifier file is missing or malformed.
    """
    prediction = (classifier or default_classifier()).predict_one(request.prompt)
    caps = request.required_capabilities
    if body is not None:
        modalities, tools, structured, users = _body_shape(body)
        if "vision" in caps:
            modalities.add("image")
    else:
        modalities = {"text", "image"} if "vision" in caps else {"text"}
        tools, structured, users = "tools" in caps, "json_schema" in caps, 1
    return Signals(
        category=prediction.category,
        category_confidence=prediction.confidence,
        difficulty=prediction.difficulty,
        language=detect_language(request.prompt),
        modalities=tuple(m for m in _MODALITY_ORDER if m in modalities),
        tools=tools or "tools" in caps,
        structured_output=structured or "json_schema" in caps,
        input_tokens=request.input_tokens,
        conversation_depth=max(1, users),
        tier=request.tier or default_tier,
        metadata=request.metadata,
    )
