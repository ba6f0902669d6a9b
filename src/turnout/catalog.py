"""Model cards: prices, limits, capabilities and latency priors of the models turnout can route to.

The shipped catalog lives in ``turnout/data/catalog.yaml`` (versioned, each entry with the
public page its price comes from and the date it was read). An operator's YAML adds entries or
overrides fields of shipped ones (:meth:`Catalog.merged`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from turnout.errors import ConfigError, UnknownModelError

__all__ = ["CAPABILITIES", "Capability", "Catalog", "ModelCard", "format_validation_error"]

Capability = Literal["vision", "tools", "json_schema", "reasoning"]
CAPABILITIES: tuple[Capability, ...] = ("vision", "tools", "json_schema", "reasoning")


class ModelCard(BaseModel):
    """What turnout knows about one model.

    Prices are USD per one million tokens (``usd_per_mtok``). A price of ``None`` means
    *unknown*: such a model is metered as unpriced, never as $0.

    Attributes:
        id: Model id as callers and upstreams spell it, e.g. ``"gpt-4o-mini"``.
        provider: Who sells it (``"openai"``, ``"anthropic"``, ``"google"``, ``"groq"``, ...).
        vendor: Who made the model (``"meta"`` for a Llama hosted by ``"groq"``); ``None``
            means the provider made it (see :attr:`maker`).
        input_usd_per_mtok: Price of uncached input tokens.
        cached_input_usd_per_mtok: Price of input tokens read from the provider's prompt cache;
            ``None`` means the provider gives no discount (the input price applies).
        cache_write_usd_per_mtok: Price of input tokens written to the prompt cache
            (Anthropic); ``None`` means the input price applies.
        output_usd_per_mtok: Price of output tokens, reasoning tokens included.
        context_window_tokens: Largest prompt plus output, in tokens.
        max_output_tokens: Largest output, in tokens.
        capabilities: Subset of ``{"vision", "tools", "json_schema", "reasoning"}``.
        ttft_s: Prior for time to first token, in seconds.
        output_tokens_per_s: Prior for decoding speed, in tokens per second.
        quality_prior: Prior expected quality in [0, 1] used when no predictor knows the model.
        source: Where the prices come from (a public pricing page or a dataset's price file).
        price_date: The day the price was read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    vendor: str | None = None
    input_usd_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_usd_per_mtok: float | None = Field(default=None, ge=0)
    output_usd_per_mtok: float | None = Field(default=None, ge=0)
    context_window_tokens: int = Field(default=128_000, gt=0)
    max_output_tokens: int = Field(default=4_096, gt=0)
    capabilities: frozenset[Capability] = frozenset()
    ttft_s: float = Field(default=0.5, ge=0)
    output_tokens_per_s: float = Field(default=80.0, gt=0)
    quality_prior: float = Field(default=0.5, ge=0, le=1)
    source: str = ""
    price_date: dt.date | None = None

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capabilities_as_set(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return frozenset(value)
        return value

    @property
    def maker(self) -> str:
        """Who made the model: :attr:`vendor` if given, else :attr:`provider`."""
        return self.vendor or self.provider

    @property
    def priced(self) -> bool:
        """Whether both the input and the output price are known."""
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None


def format_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic error into one line per problem, each naming the field path and value.

    Args:
        error: The pydantic validation error.
        prefix: Dotted path to prepend to every field location (e.g. ``"models"``).

    Returns:
        Lines such as ``"models.gpt-x.input_usd_per_mtok: Input should be greater than or
        equal to 0 (got -1.0)"``.
    """
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        if item["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (got {item.get('input')!r})")
        else:
            lines.append(f"{loc}: {item['msg']} (got {item.get('input')!r})")
    return lines


class Catalog(Mapping[str, ModelCard]):
    """An immutable mapping of model id to :class:`ModelCard`.

    Raises:
        UnknownModelError: On lookup of an id that is not in the catalog.
    """

    def __init__(self, cards: Iterable[ModelCard], *, version: str = "") -> None:
        self._cards: dict[str, ModelCard] = {}
        for card in cards:
            self._cards[card.id] = card
        self.version = version

    def __getitem__(self, model: str) -> ModelCard:
        try:
            return self._cards[model]
        except KeyError:
            raise UnknownModelError(model) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._cards)

    def __len__(self) -> int:
        return len(self._cards)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "catalog") -> Catalog:
        """Build a catalog from ``{"version": ..., "models": {id: {field: value}}}``.

        Raises:
            ConfigError: If a field is unknown or a value is invalid (names field and value).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: must be a mapping; got {type(data).__name__}")
        unknown = set(data) - {"version", "models"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(unknown)}", field=sorted(unknown)[0]
            )
        models = data.get("models") or {}
        if not isinstance(models, Mapping):
            raise ConfigError(
                f"{source}.models: must be a mapping of model id to card", field="models"
            )
        cards, problems = [], []
        for model_id, fields in models.items():
            try:
                cards.append(ModelCard.model_validate({"id": model_id, **(fields or {})}))
            except ValidationError as exc:
                problems += format_validation_error(exc, prefix=f"models.{model_id}")
        if problems:
            raise ConfigError(f"{source}: " + "; ".join(problems), field=problems[0].split(":")[0])
        return cls(cards, version=str(data.get("version", "")))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Catalog:
        """Load a catalog YAML file.

        Raises:
            ConfigError: If the file cannot be read or parsed, or a card is invalid.
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read catalog {path}: {exc}") from exc
        return cls.from_mapping(data or {}, source=str(path))

    @classmethod
    def default(cls) -> Catalog:
        """The catalog shipped with turnout (``turnout/data/catalog.yaml``)."""
        text = resources.files("turnout.data").joinpath("catalog.yaml").read_text(encoding="utf-8")
        return cls.from_mapping(yaml.safe_load(text), source="turnout/data/catalog.yaml")

    def merged(self, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
        """Return a new catalog with entries added or fields overridden.

        Args:
            overrides: ``{model_id: {field: value}}``; fields of an existing card not named
                here keep their value; a new id must give at least ``provider``.

        Raises:
            ConfigError: If an override names an unknown field or an invalid value.
        """
        cards = dict(self._cards)
        problems = []
        for model_id, fields in overrides.items():
            base = cards[model_id].model_dump() if model_id in cards else {}
            try:
                cards[model_id] = ModelCard.model_validate({**base, **dict(fields), "id": model_id})
            except ValidationError as exc:
                problems += format_validation_error(exc, prefix=f"models.{model_id}")
        if problems:
            raise ConfigError("; ".join(problems), field=problems[0].split(":")[0])
        return Catalog(cards.values(), version=self.version)
