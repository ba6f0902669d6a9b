from __future__ import annotations

import datetime as dt
import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from turnout.catalog import Catalog
from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers the commands)
from turnout.errors import ConfigError, UnknownModelError

SHARED_DATA = Path("/work/shared/data")
VENDORS = {"openai", "anthropic", "google", "meta", "mistral", "deepseek", "qwen"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.default()


def test_shipped_catalog_validates_and_is_versioned(catalog: Catalog) -> None:
    raw = yaml.safe_load(
        resources.files("turnout.data").joinpath("catalog.yaml").read_text(encoding="utf-8")
    )
    assert len(catalog) == len(raw["models"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.\d+", catalog.version)


def test_at_least_25_models_across_the_seven_vendors(catalog: Catalog) -> None:
    vendor_cards = [c for c in catalog.values() if not c.source.startswith("dataset ")]
    assert len(vendor_cards) >= 25
    makers = {c.maker for c in vendor_cards}
    assert makers >= VENDORS
    for vendor in VENDORS:
        assert sum(c.maker == vendor for c in vendor_cards) >= 2, vendor
    # Meta's models come through a named hosting provider, not from "meta" itself.
    assert {c.provider for c in vendor_cards if c.maker == "meta"} <= {"groq", "together"}


def test_every_entry_has_source_date_and_prices(catalog: Catalog) -> None:
    for card in catalog.values():
        assert card.source, card.id
        assert card.source.startswith(("https://", "dataset ")), card.id
        assert isinstance(card.price_date, dt.date), card.id
        assert dt.date(2024, 1, 1) <= card.price_date <= dt.date(2026, 11, 29), card.id
        assert card.priced, card.id
        assert card.output_usd_per_mtok is not None and card.input_usd_per_mtok is not None
        if card.cached_input_usd_per_mtok is not None:
            assert card.cached_input_usd_per_mtok < card.input_usd_per_mtok, card.id
        assert card.max_output_tokens <= card.context_window_tokens, card.id


def test_anthropic_and_gemini_cache_prices(catalog: Catalog) -> None:
    sonnet = catalog["claude-sonnet-4-5"]
    assert sonnet.cache_write_usd_per_mtok == pytest.approx(1.25 * sonnet.input_usd_per_mtok)
    assert sonnet.cached_input_usd_per_mtok == pytest.approx(0.1 * sonnet.input_usd_per_mtok)
    for model in ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash"):
        assert catalog[model].cached_input_usd_per_mtok is not None, model


@pytest.mark.parametrize("name", ["llmrouter", "routellm", "routerarena"])
def test_dataset_models_priced_as_their_price_file(catalog: Catalog, name: str) -> None:
    path = SHARED_DATA / f"{name}.models.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    prices = json.loads(path.read_text())["models"]
    for model, price in prices.items():
        card = catalog[model]
        assert card.input_usd_per_mtok == price["input_per_mtok"], model
        assert card.output_usd_per_mtok == price["output_per_mtok"], model
        assert f"{name}.models.json" in card.source, model


def test_negative_price_names_field_and_value() -> None:
    data = {"models": {"m": {"provider": "x", "input_usd_per_mtok": -1.5}}}
    with pytest.raises(ConfigError, match=r"models\.m\.input_usd_per_mtok.*-1\.5") as info:
        Catalog.from_mapping(data)
    assert info.value.field == "models.m.input_usd_per_mtok"


def test_unknown_key_names_field_and_value() -> None:
    data = {"models": {"m": {"provider": "x", "input_price": 3}}}
    with pytest.raises(ConfigError, match=r"models\.m\.input_price: unknown key \(got 3\)"):
        Catalog.from_mapping(data)
    with pytest.raises(ConfigError, match=r"unknown key.*'modles'"):
        Catalog.from_mapping({"modles": {}})


def test_unknown_model_names_the_model(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError, match="'gpt-9-ultra'"):
        catalog["gpt-9-ultra"]


def test_overrides_add_and_override(catalog: Catalog) -> None:
    merged = catalog.merged(
        {
            "gpt-4o-mini": {"input_usd_per_mtok": 0.1},
            "my-llama": {"provider": "ollama", "vendor": "meta", "input_usd_per_mtok": 0},
        }
    )
    assert merged["gpt-4o-mini"].input_usd_per_mtok == 0.1
    assert merged["gpt-4o-mini"].output_usd_per_mtok == catalog["gpt-4o-mini"].output_usd_per_mtok
    assert merged["my-llama"].maker == "meta"
    assert len(merged) == len(catalog) + 1
    assert catalog["gpt-4o-mini"].input_usd_per_mtok == 0.15  # the original is unchanged
    with pytest.raises(ConfigError, match=r"models\.gpt-4o\.output_usd_per_mtok.*-2"):
        catalog.merged({"gpt-4o": {"output_usd_per_mtok": -2}})
    with pytest.raises(ConfigError, match=r"models\.new\.provider"):
        catalog.merged({"new": {"input_usd_per_mtok": 1}})


runner = CliRunner()


def test_models_command_prints_a_table() -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for text in ("gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "deepseek-chat"):
        assert text in result.output
    assert "USD per 1M tokens" in result.output


def test_models_command_filters_by_provider_and_prints_json() -> None:
    result = runner.invoke(app, ["models", "--provider", "anthropic", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["version"] == Catalog.default().version
    assert payload["models"]
    assert {m["provider"] for m in payload["models"]} == {"anthropic"}
    sonnet = next(m for m in payload["models"] if m["id"] == "claude-sonnet-4-5")
    assert sonnet["cache_write_usd_per_mtok"] == 3.75
    # A maker also works as a filter: Llama hosted by Groq and Together.
    meta = json.loads(runner.invoke(app, ["models", "-p", "meta", "--json"]).output)
    assert {m["provider"] for m in meta["models"]} >= {"groq", "together"}


def test_models_command_unknown_provider_and_overrides(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "--provider", "acme"])
    assert result.exit_code == 2
    assert "'acme'" in result.output
    path = tmp_path / "mine.yaml"
    path.write_text("models:\n  local-llama:\n    provider: ollama\n    input_usd_per_mtok: 0\n")
    result = runner.invoke(app, ["models", "--overrides", str(path), "-p", "ollama", "--json"])
    assert result.exit_code == 0, result.output
    assert [m["id"] for m in json.loads(result.output)["models"]] == ["local-llama"]
    path.write_text("models:\n  gpt-4o:\n    input_usd_per_mtok: -3\n")
    result = runner.invoke(app, ["models", "--overrides", str(path)])
    assert result.exit_code == 2
    assert "models.gpt-4o.input_usd_per_mtok" in result.output and "-3" in result.output
