from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnout.cli import app
from turnout.cli import commands as _commands  # noqa: F401  (registers the commands)
from turnout.storage.keys import SqliteKeyStore

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/turnout.db"
    code, out, err = invoke(
        "keys",
        "create",
        "--name",
        "search",
        "--route",
        "auto",
        "--route",
        "cheap",
        "--rpm",
        "60",
        "--budget-usd",
        "2.5",
        "--budget-period",
        "week",
        "--meta",
        "team=search",
        "--storage",
        url,
    )
    assert code == 0, err
    plain = out.strip()
    assert plain.startswith("sk-tn-") and "\n" not in plain
    assert "cannot be shown again" in err
    record = SqliteKeyStore(tmp_path / "turnout.db").verify(plain)
    assert record is not None and record.allowed_routes == frozenset({"auto", "cheap"})
    assert record.limits.budget_period == "week" and record.metadata == {"team": "search"}

    secret = plain.split(".", 1)[1]
    for args in (("keys", "list"), ("keys", "list", "--json"), ("keys", "list", "--all")):
        code, out, err = invoke(*args, "--storage", url)
        assert code == 0, err
        assert secret not in out and secret not in err
        assert record.key_id in out
    listed = json.loads(invoke("keys", "list", "--json", "--storage", url)[1])
    assert listed[0]["masked"] == f"sk-tn-{record.key_id}.****"
    assert listed[0]["budget_usd"] == 2.5

    code, out, _ = invoke("keys", "revoke", record.masked, "--storage", url)
    assert code == 0 and "revoked" in out
    code, _, err = invoke("keys", "revoke", record.key_id, "--storage", url)
    assert code == 1 and "no active key" in err
    assert json.loads(invoke("keys", "list", "--json", "--storage", url)[1]) == []
    revoked = json.loads(invoke("keys", "list", "--all", "--json", "--storage", url)[1])
    assert revoked[0]["revoked_at"] is not None


def test_storage_from_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "turnout.yaml").write_text("storage:\n  url: sqlite:///data/keys.db\nroutes: {}\n")
    code, out, err = invoke("keys", "create", "--name", "a", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["key"].startswith("sk-tn-") and created["allowed_routes"] is None
    assert (tmp_path / "data" / "keys.db").exists()
    code, out, _ = invoke("keys", "list", "--config", str(tmp_path / "turnout.yaml"), "--json")
    assert [k["key_id"] for k in json.loads(out)] == [created["key_id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budget-period", "year"), "got 'year'"),
        (("--meta", "team"), "name=value"),
        (("--storage", "mysql://x"), "must start with one of"),
        (("--storage", "redis://127.0.0.1:6379/0"), "must start with one of"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    full = ("keys", "create", "--name", "a", *args)
    if "--storage" not in args:
        full = (*full, "--storage", f"sqlite:///{tmp_path}/k.db")
    code, out, err = invoke(*full)
    assert code == 2
    assert message in " ".join((out + err).replace("│", " ").split())


def test_bad_config_storage_section(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("storage:\n  url: sqlite:///x.db\n  colour: blue\n")
    code, _, err = invoke("keys", "list", "--config", str(config))
    assert code == 2 and "storage.colour: unknown key" in err


def test_usage_from_the_ledger(tmp_path: Path) -> None:
    import datetime as dt

    from turnout.cli.keys import period_start
    from turnout.storage.base import LedgerRow
    from turnout.storage.ledger import SqliteLedger
    from turnout.types import Usage

    url = f"sqlite:///{tmp_path}/turnout.db"
    code, out, _ = invoke(
        "keys", "create", "--name", "team-a", "--budget-usd", "1", "--json", "--storage", url
    )
    key_id = json.loads(out)["key_id"]
    ledger = SqliteLedger(tmp_path / "turnout.db")
    now = dt.datetime.now(dt.UTC).timestamp()
    ledger.append(
        LedgerRow(
            "r1",
            "ok",
            now,
            now,
            key_id=key_id,
            cost_usd=0.25,
            usage=Usage(input_tokens=100, output_tokens=50),
        )
    )
    ledger.append(
        LedgerRow(
            "r2", "rejected", now, now, key_id=key_id, http_status=429, error_code="budget_exceeded"
        )
    )
    ledger.close()
    code, out, err = invoke("keys", "usage", "--json", "--storage", url)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["key_id"] == key_id and row["requests"] == 2 and row["rejected"] == 1
    assert row["recorded_cost_usd"] == pytest.approx(0.25) and row["input_tokens"] == 100
    code, out, err = invoke("keys", "usage", "--storage", url, "--period", "day")
    assert code == 0, err
    assert "team-a" in out and "0.250000" in out and "1/month" in out
    code, out, _ = invoke("keys", "usage", "--json", "--storage", url, "--since", "2999-01-01")
    assert json.loads(out) == []
    monday = period_start("week", dt.datetime(2026, 11, 29, 15, tzinfo=dt.UTC))
    assert monday == dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert period_start("month", dt.datetime(2026, 11, 29, 15, tzinfo=dt.UTC)).day == 1
    code, _, err = invoke("keys", "usage", "--storage", url, "--period", "year")
    assert code == 2
