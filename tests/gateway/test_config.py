"""The gateway config: unknown keys with their path, every problem at once, no inline secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers serve)
from turnout.config import check_config, load_config
from turnout.errors import ConfigError

GOOD = {
    "deployments": {
        "mini": {
            "provider": "openai",
            "base_url": "http://127.0.0.1:9/v1/",
            "api_key_env": "TEST_KEY_VAR",
            "model": "gpt-4o-mini",
        }
    },
    "routes": {"auto": {"candidates": ["gpt-4o-mini"], "policy": "cheapest"}},
    "storage": {"url": "memory://"},
}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_good_config_loads(tmp_path):
    config = load_config(_write(tmp_path, GOOD), environ={"TEST_KEY_VAR": "sk-x"})
    assert config.deployments["mini"].base_url == "http://127.0.0.1:9/v1"
    assert config.deployments_by_model() == {"gpt-4o-mini": ["mini"]}
    assert config.server.max_body_bytes == 10 * 1024 * 1024


def test_every_problem_is_reported_at_once_with_its_path(tmp_path):
    bad = {
        "deployments": {
            "mini": {**GOOD["deployments"]["mini"], "timeouts": {"connect_s": -1, "ttfb": 2}},
            "inline": {
                "provider": "openai",
                "base_url": "http://h",
                "model": "m",
                "api_key_env": "sk-live-SECRET123",
            },
        },
        "routes": {"auto": {"candidates": []}},
        "extra_section": 1,
    }
    _, problems = check_config(_write(tmp_path, bad))
    text = "\n".join(problems)
    assert "deployments.mini.timeouts.connect_s: Input should be greater than 0 (got -1)" in text
    assert "deployments.mini.timeouts.ttfb: unknown key" in text
    assert "routes.auto.candidates:" in text
    assert "extra_section: unknown key" in text
    assert "deployments.inline.api_key_env: must be the NAME of an environment variable" in text
    assert "SECRET123" not in text  # an inline key is never echoed
    assert len(problems) == 5


def test_cross_references_are_checked(tmp_path):
    bad = {
        **GOOD,
        "routes": {"auto": {"candidates": ["gpt-4o-mini", "no-such-model"], "policy": "nope"}},
    }
    _, problems = check_config(_write(tmp_path, bad), environ={})
    assert [p.split(":")[0] for p in problems] == [
        "deployments.mini.api_key_env",
        "routes.auto.candidates.1",
        "routes.auto.policy",
    ]
    assert "'TEST_KEY_VAR' is not set" in problems[0]
    assert "unknown policy 'nope'; known: [" in problems[2]
    with pytest.raises(ConfigError, match="no-such-model"):
        load_config(_write(tmp_path, bad))


def test_serve_check_config_cli(tmp_path):
    runner = CliRunner()
    good = _write(tmp_path, GOOD)
    result = runner.invoke(
        app, ["serve", "--config", str(good), "--check-config"], env={"TEST_KEY_VAR": "sk-x"}
    )
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, "routes": {"auto": {"candidates": ["x"]}}, "oops": 1}))
    result = runner.invoke(app, ["serve", "--config", str(bad), "--check-config"])
    assert result.exit_code == 2
    assert "oops: unknown key" in result.output
