"""``serve --check-config`` runs every start-up check, reports all problems at once, leaks nothing.

``turnout serve`` itself prints config problems one per line and exits 2, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from turnout.config import check_config, mask_url_credentials
from turnout.storage.base import KeySpec, Limits
from turnout.storage.keys import SqliteKeyStore

GOOD = {
    "deployments": {
        "mini": {"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini"}
    },
    "routes": {"auto": {"candidates": ["gpt-4o-mini"]}},
    "storage": {"url": "memory://"},
}


def _write(tmp_path: Path, data: object, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "TURNOUT_ADMIN_KEY"}
    return subprocess.run(
        [sys.executable, "-c", "from turnout.cli import main; main()", *args],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_short_admin_key_fails_check_config_and_serve_cleanly(tmp_path):
    path = _write(tmp_path, GOOD)
    for extra in (["--check-config"], ["--port", "1"]):
        result = _cli(["serve", "--config", str(path), *extra], {"TURNOUT_ADMIN_KEY": "z"})
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert (
            "  keys.admin_key_env: the admin key in $TURNOUT_ADMIN_KEY must be at least 16 "
            "characters; got 1" in result.stderr.splitlines()
        )
    ok = _cli(["serve", "--config", str(path), "--check-config"], {"TURNOUT_ADMIN_KEY": "z" * 16})
    assert ok.returncode == 0, ok.stderr


def test_model_level_problems_have_a_path_and_never_echo_secrets(tmp_path):
    data = {
        **GOOD,
        "routes": {"mini": {"candidates": ["gpt-4o-mini"]}},
        "storage": {
            "url": "mysql://admin:SuperSecretPw@db.internal/turnout",
            "counters_url": "redis://:RedisPw@cache:6379/0",
        },
    }
    _, problems = check_config(_write(tmp_path, data), environ={})
    text = "\n".join(problems)
    assert "SuperSecretPw" not in text and "RedisPw" not in text
    assert "mysql://admin:***@db.internal/turnout" in text  # the bad URL, masked
    clash = [p for p in problems if "deployment name" in p]
    assert clash == [
        "routes.mini: route alias 'mini' is also a deployment name; route aliases must differ "
        "from deployment names"
    ]
    assert all(not p.startswith(":") for p in problems)


def test_mask_url_credentials():
    assert mask_url_credentials("postgresql://admin:pw@h/db x") == "postgresql://admin:***@h/db x"
    assert mask_url_credentials("'redis://:pw@h:6379/0'") == "'redis://:***@h:6379/0'"
    assert mask_url_credentials("postgresql://admin@h/db") == "postgresql://admin@h/db"


def test_every_problem_is_reported_in_one_run(tmp_path):
    data = {
        "deployments": {
            **GOOD["deployments"],
            "big": {
                "provider": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "gpt-4o",
                "typo_key": 1,
            },
        },
        "models": {"gpt-4o-mini": {"input_usd_per_mtok": -1}},
        "routes": {
            "auto": {
                "candidates": ["gpt-4o-mini", "gpt-99"],
                "policy": "cheepest",
                "router_file": "missing.trt",
            },
            "big-route": {"candidates": ["gpt-4o"]},
        },
        "reliability": {"breaker": {"failure_threshold": -1}},
    }
    _, problems = check_config(_write(tmp_path, data), environ={})
    paths = sorted(p.split(":")[0] for p in problems)
    assert paths == sorted(
        [
            "deployments.big.typo_key",
            "reliability.breaker.failure_threshold",
            "models.gpt-4o-mini.input_usd_per_mtok",
            "routes.auto.candidates.1",
            "routes.auto.policy",
            "routes.auto.router_file",
        ]
    ), problems  # big-route's gpt-4o is served by the (invalid) deployment big: not reported


def test_workers_with_memory_counters_and_limits_are_refused(tmp_path):
    limited = {**GOOD, "keys": {"default_limits": {"rpm": 10}}}
    path = _write(tmp_path, limited)
    _, problems = check_config(path, environ={}, workers=2)
    assert len(problems) == 1 and problems[0].startswith("storage.counters_url:")
    assert "sqlite://" in problems[0] and "redis://" in problems[0]
    assert check_config(path, environ={}, workers=1)[1] == []
    shared = {**limited, "storage": {"url": "memory://", "counters_url": "sqlite:///c.db"}}
    assert check_config(_write(tmp_path, shared, "s.yaml"), environ={}, workers=2)[1] == []
    # No limits anywhere: several workers are fine.
    db = tmp_path / "keys.db"
    unlimited = {**GOOD, "storage": {"url": f"sqlite:///{db}"}}
    upath = _write(tmp_path, unlimited, "u.yaml")
    assert check_config(upath, environ={}, workers=2)[1] == []
    # A key in the store with a budget makes it a problem.
    store = SqliteKeyStore(db)
    store.create(KeySpec(name="team", limits=Limits(budget_usd=5.0)))
    store.close()
    assert len(check_config(upath, environ={}, workers=2)[1]) == 1
    result = _cli(["serve", "--config", str(upath), "--workers", "2", "--check-config"], {})
    assert result.returncode == 2 and "storage.counters_url" in result.stderr
