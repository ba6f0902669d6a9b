import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from turnout.catalog import Catalog, ModelCard
from turnout.errors import DatasetError
from turnout.evaluation import ModelPrice, load_outcomes, read_prices
from turnout.features import count_message_tokens, count_tokens

FIXTURE = Path(__file__).parent / "fixtures" / "outcomes_small.jsonl"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _line(**fields: object) -> str:
    base: dict[str, object] = {
        "prompt_id": "p1",
        "prompt": "hello",
        "task": "t",
        "model": "a",
        "score": 1.0,
        "input_tokens": None,
        "output_tokens": None,
        "cost_usd": None,
        "response": None,
    }
    base.update(fields)
    return json.dumps(base)


def _write(tmp_path: Path, lines: list[str], prices: dict[str, tuple[float, float]]) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    models = {m: {"input_per_mtok": a, "output_per_mtok": b} for m, (a, b) in prices.items()}
    (tmp_path / "mine.models.json").write_text(json.dumps({"models": models}), encoding="utf-8")
    return path


def test_fixture_pivots_to_prompts_by_models() -> None:
    table = load_outcomes(FIXTURE)
    assert table.models == ("small", "mid", "large")
    assert table.n_prompts == 37 and table.scores.shape == (37, 3)
    i = table.prompt_ids.index("hard-3")
    assert table.tasks[i] == "qa/hard"
    assert table.scores[i].tolist() == [0.0, 1.0, 1.0]
    assert table.prompts[table.prompt_ids.index("dup-easy-0")] == table.prompts[0]


def test_modelled_cost_is_price_times_counted_tokens() -> None:
    table = load_outcomes(FIXTURE)
    i = table.prompt_ids.index("easy-4")
    prompt = table.prompts[i]
    # input: the prompt as one user message, counted offline
    assert table.input_tokens[i, 0] == count_message_tokens([prompt])
    # small on easy-4 has a recorded response: its output tokens are counted from it
    assert table.output_tokens[i, 0] == count_tokens("The answer is 5.")
    expected = (table.input_tokens[i, 0] * 0.1 + table.output_tokens[i, 0] * 0.1) / 1e6
    assert table.cost_usd[i, 0] == pytest.approx(expected)
    assert not table.cost_recorded[i, 0]


def test_output_estimate_falls_back_model_task_then_model() -> None:
    table = load_outcomes(FIXTURE)
    small = [table.output_tokens[table.prompt_ids.index(f"easy-{k}"), 0] for k in range(12)]
    hard = table.prompt_ids.index("hard-0")
    # small has responses only on qa/easy: on qa/hard it gets its mean over all tasks
    # (its only responses are the qa/easy ones, so the mean of those 12 + the dup's none)
    assert table.output_tokens[hard, 0] == pytest.approx(np.mean(small))
    # mid never has an output: on code it takes the task mean (large's recorded 100 tokens)
    code = table.prompt_ids.index("code-0")
    assert table.output_tokens[code, 1] == pytest.approx(100.0)


def test_cost_kind_recorded_modelled_mixed() -> None:
    table = load_outcomes(FIXTURE)
    assert table.cost_kind == "mixed"
    code = [i for i, t in enumerate(table.tasks) if t == "code"]
    assert table.cost_recorded[code, 2].all()
    assert table.cost_usd[code[0], 2] == 0.0032  # recorded, not modelled
    assert table.subset(code).cost_kind == "mixed"
    easy = [i for i, t in enumerate(table.tasks) if t == "qa/easy"]
    assert table.subset(easy).cost_kind == "modelled"


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    gz = tmp_path / "outcomes_small.jsonl.gz"
    with gzip.open(gz, "wb") as out:
        out.write(FIXTURE.read_bytes())
    shutil.copy(FIXTURE.with_name("outcomes_small.models.json"), tmp_path)
    a, b = load_outcomes(FIXTURE), load_outcomes(gz)
    assert a.prompt_ids == b.prompt_ids
    np.testing.assert_array_equal(a.cost_usd, b.cost_usd)


def test_subset_keeps_rows_in_order() -> None:
    table = load_outcomes(FIXTURE)
    sub = table.subset([5, 0])
    assert sub.prompt_ids == (table.prompt_ids[5], table.prompt_ids[0])
    np.testing.assert_array_equal(sub.scores, table.scores[[5, 0]])
    assert sub.responses is not None and sub.responses[1][0] == "The answer is 1."


def test_missing_cells_are_nan(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [_line(model="a"), _line(model="b", score=0.0), _line(prompt_id="p2", model="a")],
        {"a": (1.0, 2.0), "b": (3.0, 4.0)},
    )
    table = load_outcomes(path)
    assert math.isnan(table.scores[1, 1]) and math.isnan(table.cost_usd[1, 1])
    assert table.observed.tolist() == [[True, True], [True, False]]
    assert table.cost_kind == "modelled" and table.responses is None


def test_explicit_prices_override_the_price_file(tmp_path: Path) -> None:
    path = _write(tmp_path, [_line(), _line(model="b")], {"a": (1.0, 1.0), "b": (1.0, 1.0)})
    table = load_outcomes(path, prices={"a": ModelPrice(1000.0, 0.0)})
    assert table.cost_usd[0, 0] == pytest.approx(table.input_tokens[0, 0] * 1000 / 1e6)
    assert table.prices["b"].input_usd_per_mtok == 1.0


def test_catalog_prices_when_no_price_file(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text(_line(model="x") + "\n", encoding="utf-8")
    catalog = Catalog(
        [ModelCard(id="x", provider="p", input_usd_per_mtok=2, output_usd_per_mtok=8)]
    )
    table = load_outcomes(path, catalog=catalog, default_output_tokens=10)
    assert table.output_tokens[0, 0] == 10
    assert table.cost_usd[0, 0] == pytest.approx((count_message_tokens(["hello"]) * 2 + 80) / 1e6)
    assert "turnout catalog" in table.prices["x"].source
    card = table.to_catalog()["x"]
    assert card.input_usd_per_mtok == 2 and card.output_usd_per_mtok == 8


def test_unpriced_model_without_recorded_cost_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text(_line(model="nobody-prices-me") + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="'nobody-prices-me' has outcomes without"):
        load_outcomes(path, catalog=Catalog([]))


@pytest.mark.parametrize(
    ("line", "field", "match"),
    [
        (_line(score=1.5), "score", "must be a number in \\[0, 1\\] or null; got 1.5"),
        (_line(score="high"), "score", "got 'high'"),
        (_line(prompt_id=""), "prompt_id", "non-empty string"),
        (_line(model=None), "model", "got None"),
        (_line(input_tokens=-3), "input_tokens", "integer >= 0"),
        (_line(output_tokens=2.5), "output_tokens", "integer >= 0"),
        (_line(cost_usd=-0.1), "cost_usd", ">= 0"),
        (_line(response=3), "response", "string or null"),
        (_line(contaminated="no"), "contaminated", "true or false"),
        (_line(prompt="other text"), "prompt", "one id must have one prompt text"),
        (_line(), "model", "appears twice"),
        ('{"prompt_id": "p9", ', None, "not valid JSON"),
        ("[1, 2]", None, "must be a JSON object"),
    ],
)
def test_malformed_line_names_file_line_and_field(
    tmp_path: Path, line: str, field: str | None, match: str
) -> None:
    path = _write(tmp_path, [_line(), "", line], {"a": (1, 1)})
    with pytest.raises(DatasetError, match=match) as info:
        load_outcomes(path)
    assert info.value.line == 3 and info.value.field == field
    assert str(path) in str(info.value) and ":3:" in str(info.value)
    if field:
        assert f"`{field}`" in str(info.value)


def test_empty_file_and_bad_price_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no outcome lines"):
        load_outcomes(empty)
    bad = tmp_path / "bad.models.json"
    bad.write_text(json.dumps({"models": {"a": {"input_per_mtok": -1}}}), encoding="utf-8")
    with pytest.raises(DatasetError, match="models.a.input_per_mtok must be a price >= 0"):
        read_prices(bad)


def test_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_outcomes(tmp_path / "nope.jsonl")


@pytest.mark.skipif(not (SHARED / "routerarena.jsonl.gz").exists(), reason="no shared data")
def test_shared_routerarena_costs_are_recorded() -> None:
    table = load_outcomes(SHARED / "routerarena.jsonl.gz")
    assert table.scores.shape == (809, 2) and table.cost_kind == "recorded"
    assert table.tokens_recorded.all()
