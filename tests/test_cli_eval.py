"""``turnout eval`` end to end on the committed fixture, through the real CLI app."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.toy_router import FirstWordPredictor, ToyUtilityPolicy
from turnout import policies, predictors
from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers the commands)

FIXTURE = Path(__file__).parent / "fixtures" / "outcomes_small.jsonl"


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(predictors.PREDICTORS, "toy-first-word", FirstWordPredictor)
    if "utility" not in policies.POLICIES:
        monkeypatch.setitem(policies.POLICIES, "utility", ToyUtilityPolicy)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["eval", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("toy_registry")
def test_eval_writes_json_plot_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    png = tmp_path / "plots" / "r.png"
    md = tmp_path / "r.md"
    code, stdout, stderr = _run(
        "--data",
        str(FIXTURE),
        "--predictor",
        "toy-first-word",
        "--json",
        str(out),
        "--plot",
        str(png),
        "--markdown",
        str(md),
        "--test-size",
        "0.3",
        "--points",
        "6",
        "--quiet",
    )
    assert code == 0, stderr
    assert "best single: mid" in stdout and "toy-first-word" in stdout
    data = json.loads(out.read_text())
    for key in ("best_single", "oracle", "routers", "cost_kind"):
        assert key in data
    router = data["routers"]["toy-first-word"]
    for key in (
        "apgr",
        "cpt50",
        "cpt80",
        "aiq",
        "savings_at_parity",
        "savings_at_95",
        "savings_at_97",
        "max_quality",
        "cost_kind",
    ):
        assert key in router
    assert router["cost_kind"] in ("recorded", "modelled", "mixed")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| toy-first-word |" in md.read_text()


@pytest.mark.usefixtures("toy_registry")
def test_eval_cross_task_split(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, _, stderr = _run(
        "--data",
        str(FIXTURE),
        "--predictor",
        "toy-first-word",
        "--split",
        "cross-task",
        "--test-task",
        "code",
        "--json",
        str(out),
        "--quiet",
    )
    assert code == 0, stderr
    data = json.loads(out.read_text())
    assert data["split"] == "cross-task" and data["test_tasks"] == ["code"]
    # only "large" answers code prompts: it is the best single model there
    assert data["best_single"]["model"] == "large" and data["cost_kind"] == "mixed"


@pytest.mark.usefixtures("toy_registry")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictor", "nope"], "unknown predictor 'nope'"),
        (["--predictor", "toy-first-word", "--split", "sideways"], "--split must be one of"),
        (["--predictor", "toy-first-word", "--test-size", "1.5"], "--test-size must be in"),
        (["--predictor", "toy-first-word", "--test-task", "qa"], "needs --split cross-task"),
        (
            [
                "--predictor",
                "toy-first-word",
                "--split",
                "cross-task",
                "--test-task",
                "qa",
                "--folds",
                "3",
            ],
            "exclude each other",
        ),
        (
            ["--predictor", "toy-first-word", "--split", "cross-task", "--test-task", "zzz"],
            "matches no task",
        ),
    ],
)
def test_eval_bad_arguments_exit_2(args: list[str], message: str) -> None:
    code, _, stderr = _run("--data", str(FIXTURE), "--quiet", *args)
    assert code == 2 and message in stderr


def test_eval_malformed_data_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a", "prompt": "x", "task": "t", "model": "m", "score": 2}\n')
    code, _, stderr = _run("--data", str(bad), "--quiet")
    assert code == 2 and f"{bad}:1: field `score`" in stderr


@pytest.mark.usefixtures("toy_registry")
def test_eval_folds(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, _, stderr = _run(
        "--data",
        str(FIXTURE),
        "--predictor",
        "toy-first-word",
        "--folds",
        "3",
        "--json",
        str(out),
        "--points",
        "4",
    )
    assert code == 0, stderr
    data = json.loads(out.read_text())
    assert data["folds"] == 3 and data["n_test_prompts"] == 37
