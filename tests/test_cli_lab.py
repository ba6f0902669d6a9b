"""``turnout train`` and ``turnout route`` end to end on a small outcome file on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnout.artifact import read_header
from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers the commands)

MODELS = {"tiny": (0.1, 0.2), "mid": (1.0, 2.0), "huge": (10.0, 30.0)}


def _write_outcomes(folder: Path) -> Path:
    """60 arithmetic prompts only `huge` gets right, 60 greetings everyone gets right."""
    lines = []
    for i in range(120):
        hard = i % 2 == 0
        prompt = (
            f"Compute the integral of x^{i % 7 + 2} from 0 to {i}; show every step."
            if hard
            else f"Say a friendly hello to visitor {i}."
        )
        for model in MODELS:
            good = model == "huge" or not hard
            lines.append(
                {
                    "prompt_id": f"p{i}",
                    "prompt": prompt,
                    "task": "math" if hard else "chat",
                    "model": model,
                    "score": 1.0 if good else 0.0,
                    "input_tokens": None,
                    "output_tokens": None,
                    "cost_usd": None,
                    "latency_s": None,
                    "response": "ok " * (40 if hard else 5),
                }
            )
    data = folder / "toy.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    prices = {m: {"input_per_mtok": i, "output_per_mtok": o} for m, (i, o) in MODELS.items()}
    (folder / "toy.models.json").write_text(json.dumps({"models": prices}), encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lab")
    data = _write_outcomes(folder)
    out = folder / "toy.router"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--predictor",
            "knn",
            "--willingness-to-pay",
            "0.01",
            "-o",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "knn predictor, utility policy" in result.output
    return out


def test_train_writes_a_router_file_with_its_metadata(trained: Path) -> None:
    header = read_header(trained)
    assert header["policy"] == "utility" and header["predictor"] == "KNNPredictor"
    assert header["length_predictor"] == "LengthPredictor"
    assert header["metadata"]["n_prompts"] == 120 and header["metadata"]["predictor"] == "knn"
    assert header["metadata"]["cost_kind"] == "modelled"
    assert header["policy_params"]["willingness_to_pay_usd"] == 0.01


def test_route_explains_the_decision(trained: Path) -> None:
    runner = CliRunner()
    hard = runner.invoke(
        app,
        [
            "route",
            "--router",
            str(trained),
            "Compute the integral of x^5 from 0 to 3; show every step.",
        ],
    )
    assert hard.exit_code == 0, hard.output
    assert "chosen: huge" in hard.output and "pred. quality" in hard.output
    easy = runner.invoke(
        app, ["route", "--router", str(trained), "--json", "Say a friendly hello to visitor 7."]
    )
    decision = json.loads(easy.output)
    assert decision["model"] == "tiny" and len(decision["candidates"]) == 3
    capped = runner.invoke(
        app, ["route", "--router", str(trained), "--max-cost-usd", "0.00001", "--json", ""]
    )
    removed = json.loads(capped.output)["removed"]
    assert {r["model"] for r in removed} >= {"huge"} and "ceiling" in removed[0]["reason"]


def test_train_calibrates_each_policy_on_a_validation_split(tmp_path: Path) -> None:
    data = _write_outcomes(tmp_path)
    runner = CliRunner()
    for policy, key in (
        ("utility", "willingness_to_pay_usd"),
        ("quality_floor", "threshold"),
        ("threshold", "strong"),
    ):
        out = tmp_path / f"{policy}.router"
        result = runner.invoke(
            app,
            [
                "train",
                "--data",
                str(data),
                "--predictor",
                "knn",
                "--policy",
                policy,
                "-o",
                str(out),
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        header = read_header(out)
        assert key in header["policy_params"]
        assert header["metadata"]["calibration"]["best_single_model"] == "huge"
        if policy == "quality_floor":
            assert header["metadata"]["calibration"]["floor_confidence"] == 0.9
        if policy == "utility":
            assert header["metadata"]["calibration"]["target_confidence"] == 0.9
    bad = runner.invoke(
        app,
        ["train", "--data", str(data), "--policy", "quality_floor", "--floor-confidence", "1.0"]
        + ["-o", str(tmp_path / "x.router"), "--quiet"],
    )
    assert bad.exit_code == 2 and "--floor-confidence" in bad.output


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(
        app, ["train", "--data", "x.jsonl", "--predictor", "gpt", "-o", str(tmp_path / "r")]
    )
    assert unknown.exit_code == 2 and "--predictor must be one of" in unknown.output
    missing = runner.invoke(app, ["route", "--router", str(tmp_path / "nope.router"), "hi"])
    assert missing.exit_code == 2 and "cannot read router file" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a", "prompt": "x"}\n', encoding="utf-8")
    broken = runner.invoke(app, ["train", "--data", str(bad), "-o", str(tmp_path / "r")])
    assert broken.exit_code == 2 and "bad.jsonl" in broken.output
