from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import openai
import pytest
from typer.testing import CliRunner

from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers the commands)
from turnout.demo.datasets import DEMO_DATASETS, load_demo_dataset
from turnout.demo.replay import REPLAY_HEADER, ReplayUpstream, answers_for_model
from turnout.demo.run import DemoOptions, DemoResult, run_demo
from turnout.errors import ConfigError
from turnout.evaluation.datasets import OutcomeTable, load_outcomes
from turnout.evaluation.splits import split_by_prompt

DATA_DIR = Path(__file__).resolve().parents[1] / "src" / "turnout" / "data" / "datasets"


# --- the shipped data ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DEMO_DATASETS))
def test_shipped_dataset_has_licence_source_prices_and_responses(name: str) -> None:
    dataset, table = load_demo_dataset(name)
    stem = dataset.filename.removesuffix(".jsonl.gz")
    licence = (DATA_DIR / f"{stem}.LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    assert "Source:" in (DATA_DIR / f"{stem}.SOURCE").read_text()
    assert set(json.loads((DATA_DIR / f"{stem}.models.json").read_text())["models"]) == set(
        table.models
    )
    assert table.responses is not None
    assert all(r is not None for row in table.responses for r in row)
    assert len(set(table.prompts)) == table.n_prompts  # prompt text identifies the row


def test_unknown_dataset_names_the_value() -> None:
    with pytest.raises(ConfigError, match=r"`--dataset`.*'nope'"):
        load_demo_dataset("nope")


# --- the replay upstream ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def arena() -> OutcomeTable:
    return load_demo_dataset("routerarena")[1]


async def test_replay_upstream_answers_with_the_recorded_cell(arena: OutcomeTable) -> None:
    model = arena.models[1]
    upstream = ReplayUpstream(model, answers_for_model(arena, model), dataset="routerarena")
    await upstream.start()
    try:
        async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key="x") as client:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": arena.prompts[3]}]
            )
            completion = raw.parse()
            assert raw.headers[REPLAY_HEADER] == "recorded-outcome"
            assert completion.choices[0].message.content == arena.responses[3][1]  # type: ignore[index]
            assert completion.usage is not None
            assert completion.usage.prompt_tokens == int(arena.input_tokens[3, 1])
            assert completion.usage.completion_tokens == int(arena.output_tokens[3, 1])
            replay = (completion.model_extra or {})["turnout_replay"]
            assert replay["prompt_id"] == arena.prompt_ids[3]
            assert replay["score"] == arena.scores[3, 1]
            assert replay["cost_kind"] == "recorded"
            assert "not a live model" in replay["note"]

            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": arena.prompts[4]}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text, usage = "", None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                usage = chunk.usage or usage
            assert text == arena.responses[4][1]  # type: ignore[index]
            assert usage is not None and usage.completion_tokens == int(arena.output_tokens[4, 1])

            with pytest.raises(openai.NotFoundError, match="not in the recorded dataset"):
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "not a recorded prompt"}]
                )
            with pytest.raises(openai.BadRequestError, match="user message"):
                await client.chat.completions.create(
                    model=model, messages=[{"role": "system", "content": "x"}]
                )
        assert upstream.calls == 2
    finally:
        await upstream.stop()


def test_missing_response_becomes_a_labelled_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "mini.jsonl"
    lines = [
        {"prompt_id": "p1", "prompt": "2+2?", "task": "t", "model": "m", "score": 1.0},
        {"prompt_id": "p2", "prompt": "3+3?", "task": "t", "model": "m", "score": 0.0},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    (tmp_path / "mini.models.json").write_text(
        json.dumps({"models": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}})
    )
    answers = answers_for_model(load_outcomes(path), "m")
    assert "not its answer text" in answers["2+2?"].text
    assert "(1)" in answers["2+2?"].text and "(0)" in answers["3+3?"].text
    assert not answers["2+2?"].cost_recorded


# --- the whole demo on a few prompts -----------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("router-cache")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 150 prompts of each shipped dataset, with its price file (trains fast)."""
    folder = tmp_path_factory.mktemp("small-data")
    out = {}
    for name, dataset in DEMO_DATASETS.items():
        stem = dataset.filename.removesuffix(".jsonl.gz")
        with gzip.open(dataset.path(), "rt", encoding="utf-8") as handle:
            lines = [line for _, line in zip(range(300), handle, strict=False)]
        path = folder / f"{name}-small.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        shutil.copyfile(DATA_DIR / f"{stem}.models.json", folder / f"{name}-small.models.json")
        out[name] = path
    return out


def _run(dataset: str, out: Path, cache: Path, limit: int = 20) -> DemoResult:
    options = DemoOptions(
        dataset=dataset,
        limit=limit,
        concurrency=4,
        out_dir=out,
        cache_dir=cache,
        folds=2,
        show_progress=False,
        command=f"turnout demo --dataset {dataset} --limit {limit}",
    )
    return run_demo(options, log=lambda _: None)


def _ledger(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM ledger"))
    finally:
        conn.close()


@pytest.mark.parametrize("dataset", ["gsm8k", "routerarena"])
def test_demo_report_agrees_with_the_gateway_ledger(
    dataset: str, tmp_path: Path, cache_dir: Path, small: dict[str, Path]
) -> None:
    result = _run(str(small[dataset]), tmp_path / "out", cache_dir)
    report = result.report
    rows = _ledger(result.files["ledger"])

    # Every prompt went through the gateway and was answered; the ledger has one row each.
    assert report.n_train == 120 and report.n_test == 30
    assert report.n_sent == report.n_ok == len(rows) == 20
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["route"] for r in rows} == {"auto"}

    # Requests and cost per model, and the totals, are the ledger's own numbers.
    by_model = Counter(r["model"] for r in rows)
    assert {m.model: m.requests for m in report.per_model if m.requests} == dict(by_model)
    assert report.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows), rel=1e-12)
    assert sum(m.cost_usd for m in report.per_model) == pytest.approx(report.cost_usd)
    assert all(r["cost_estimated"] == 0 for r in rows)  # priced from the upstream's usage

    # Quality is the recorded score of the model the ledger says answered, on that prompt;
    # and the ledger's cost of each call is the dataset's cost of that recorded call.
    table = load_outcomes(small[dataset])
    assert table.n_prompts == 150
    test = split_by_prompt(table, test_size=0.2, seed=0).test
    row_of = {p: i for i, p in enumerate(test.prompts)}
    scores, costs = [], []
    for r in rows:
        i, j = row_of[r["prompt_text"]], test.model_index(r["model"])
        assert i < 20
        scores.append(test.scores[i, j])
        costs.append((r["cost_usd"], test.cost_usd[i, j]))
    assert report.mean_quality == pytest.approx(float(np.mean(scores)))
    for ledger_cost, dataset_cost in costs:
        assert ledger_cost == pytest.approx(dataset_cost, rel=1e-9, abs=1e-15)
    assert report.max_cost_mismatch_usd < 1e-12
    # The library, replaying the same router file offline, picks what the gateway picked.
    assert report.library_agreement == report.n_ok
    assert {b.model for b in report.singles} == set(test.models)

    # Savings are computed against the baseline's cost on the same 20 prompts.
    best = test.model_index(report.always_best.model)
    assert report.always_best.cost_usd == pytest.approx(float(test.cost_usd[:20, best].sum()))
    assert report.savings_vs_best == pytest.approx(
        1 - report.cost_usd / report.always_best.cost_usd
    )
    assert report.cost_kind == ("recorded" if dataset == "routerarena" else "modelled")
    assert report.gateway_overhead_s["p50"] <= report.latency_s["p50"]

    # The written report says what it is.
    text = result.files["report_md"].read_text()
    assert report.headline() in text
    assert "replaying recorded outcomes" in text and "not live models" in text
    assert f"Costs are **{report.cost_kind}**" in text
    saved = json.loads(result.files["report_json"].read_text())
    assert saved["cost_usd"] == report.cost_usd and saved["n_ok"] == 20
    assert result.files["plot_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_cli_prints_the_report(
    tmp_path: Path, cache_dir: Path, small: dict[str, Path]
) -> None:
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(
        app,
        ["demo", "--dataset", str(small["gsm8k"]), "--limit", "6", "--concurrency", "2"]
        + ["--out", str(out), "--quiet", "--cache-dir", str(cache_dir), "--folds", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "turnout saved" in result.output
    assert (out / "report.md").is_file() and (out / "cost_quality.png").is_file()
    bad = CliRunner().invoke(app, ["demo", "--dataset", "nope", "--quiet", "--out", str(out)])
    assert bad.exit_code == 2 and "'nope'" in bad.output


def test_real_providers_example_config_is_valid(tmp_path: Path) -> None:
    from turnout.config import check_config, load_config
    from turnout.gateway import create_app

    path = Path(__file__).resolve().parents[1] / "examples" / "real-providers.yaml"
    env = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}
    config, problems = check_config(path, environ={**env, "TURNOUT_ADMIN_KEY": "a" * 24})
    assert problems == [] and config is not None
    _, missing = check_config(path, environ={})
    assert any("OPENAI_API_KEY" in p for p in missing)  # it needs real keys, and says so
    config = load_config(path)
    storage = config.storage.model_copy(update={"url": f"sqlite:///{tmp_path / 'l.db'}"})
    app = create_app(
        config.model_copy(update={"storage": storage}),
        environ={**env, "TURNOUT_ADMIN_KEY": "a" * 24},
    )
    routes = app.state.runtime.routes
    assert set(routes["auto"].router.candidates) == {
        "local-llama-3.1-8b",
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "gpt-4.1",
        "claude-sonnet-4-5",
    }
    providers = {d.endpoint.provider for d in app.state.runtime.deployments.values()}
    app.state.ledger.close()
    assert providers == {"openai", "anthropic", "ollama"}
