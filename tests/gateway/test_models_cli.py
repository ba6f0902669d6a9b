"""``turnout models --overrides``: a models file or a whole gateway config, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers models)

GATEWAY = {
    "deployments": {
        "local": {"provider": "vllm", "base_url": "http://127.0.0.1:9/v1", "model": "my-llama"}
    },
    "models": {"my-llama": {"provider": "vllm", "input_usd_per_mtok": 0.05}},
    "routes": {"auto": {"candidates": ["my-llama"]}},
    "storage": {"url": "memory://"},
}


def _run(tmp_path: Path, data: object) -> tuple[int, str, str]:
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["models", "--json", "--overrides", str(path)])
    return result.exit_code, result.stdout, result.stderr


def test_a_whole_gateway_config_is_accepted(tmp_path):
    code, out, err = _run(tmp_path, GATEWAY)
    assert code == 0, err
    cards = {c["id"]: c for c in json.loads(out)["models"]}
    assert cards["my-llama"]["input_usd_per_mtok"] == 0.05
    no_models = {k: v for k, v in GATEWAY.items() if k != "models"}
    code, out, err = _run(tmp_path, no_models)
    assert code == 0, err
    assert "my-llama" not in {c["id"] for c in json.loads(out)["models"]}


def test_models_files_still_work_and_errors_are_clean(tmp_path):
    code, out, _ = _run(tmp_path, {"my-llama": {"provider": "vllm"}})
    assert code == 0 and "my-llama" in out
    code, _, err = _run(tmp_path, {**GATEWAY, "models": {"my-llama": 3}})
    assert code == 2 and "Traceback" not in err
    assert "each model under models must be a mapping of its fields, not: my-llama" in err
    code, _, err = _run(tmp_path, {**GATEWAY, "models": {"my-llama": {"input_usd_per_mtok": -1}}})
    assert code == 2 and "models.my-llama" in err
    code, _, err = _run(tmp_path, [1, 2])
    assert code == 2 and "must be a mapping; got list" in err
