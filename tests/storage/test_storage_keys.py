from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.local_services import POSTGRES_URL, postgres_reachable, require_postgres
from turnout.storage.base import KeySpec, KeyStore, Limits
from turnout.storage.keys import KEY_PREFIX, MemoryKeyStore, SqliteKeyStore, mask_key, parse_key
from turnout.storage.postgres import PostgresKeyStore


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        yield SqliteKeyStore(tmp_path / "keys.db")
    elif request.param == "memory":
        yield MemoryKeyStore()
    else:
        require_postgres()
        # A fresh table per test: the keys live in a schema of their own.
        schema = "keys_" + secrets.token_hex(4)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        pg = PostgresKeyStore(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
        yield pg
        pg.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


SPEC = KeySpec(
    name="search team",
    allowed_routes=frozenset({"auto", "cheap"}),
    limits=Limits(rpm=60, tpm=10_000, budget_usd=2.5, budget_period="week"),
    metadata={"team": "search"},
)


def test_create_verify_round_trip(store: KeyStore) -> None:
    record, plain = store.create(SPEC)
    assert plain.startswith(KEY_PREFIX + record.key_id + ".")
    assert len(plain) > 50  # 32 random bytes of secret
    found = store.verify(plain)
    assert found == record
    assert found.limits == SPEC.limits
    assert found.allowed_routes == frozenset({"auto", "cheap"})
    assert found.metadata == {"team": "search"}
    assert found.active


def test_two_keys_differ(store: KeyStore) -> None:
    (a, plain_a), (b, plain_b) = store.create(SPEC), store.create(SPEC)
    assert a.key_id != b.key_id and plain_a != plain_b
    assert store.verify(plain_a) == a and store.verify(plain_b) == b


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # wrong secret
        lambda p: p.split(".")[0] + ".",  # empty secret
        lambda p: "sk-tn-000000000000." + p.split(".", 1)[1],  # unknown key id
        lambda p: p.replace("sk-tn-", "sk-"),  # wrong prefix
        lambda p: "",
        lambda p: "Bearer " + p,
    ],
)
def test_wrong_keys_are_rejected(store: KeyStore, mutate: object) -> None:
    _, plain = store.create(SPEC)
    assert callable(mutate)
    assert store.verify(mutate(plain)) is None


def test_revoke(store: KeyStore) -> None:
    record, plain = store.create(SPEC)
    other, _ = store.create(KeySpec(name="other"))
    assert store.revoke(record.key_id) is True
    assert store.revoke(record.key_id) is False  # already revoked
    assert store.revoke("nope") is False
    found = store.verify(plain)
    assert found is not None and not found.active and found.revoked_at is not None
    assert [r.key_id for r in store.list()] == [other.key_id]
    assert {r.key_id for r in store.list(include_revoked=True)} == {record.key_id, other.key_id}


def test_plain_key_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    store = SqliteKeyStore(path)
    record, plain = store.create(SPEC)
    store.close()
    secret = plain.split(".", 1)[1]
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # db, -wal, -shm
    assert secret.encode() not in blob
    assert plain.encode() not in blob
    assert record.key_id.encode() in blob  # the public id is stored, so the search is valid
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT salt, secret_sha256 FROM api_keys").fetchone()
    assert len(row[0]) == 16 and len(row[1]) == 32


def test_keys_survive_reopen(tmp_path: Path) -> None:
    record, plain = SqliteKeyStore(tmp_path / "k.db").create(SPEC)
    again = SqliteKeyStore(tmp_path / "k.db")
    assert again.verify(plain) == record
    assert again.list() == [record]


def test_masking_and_parsing() -> None:
    assert mask_key("0123456789ab") == "sk-tn-0123456789ab.****"
    assert parse_key("sk-tn-0123456789ab.s3cret") == ("0123456789ab", "s3cret")
    assert parse_key("sk-tn-short.s3cret") is None
    assert parse_key("sk-tn-0123456789ab") is None
    record, plain = MemoryKeyStore().create(SPEC)
    assert plain.split(".", 1)[1] not in record.masked
    assert plain.split(".", 1)[1] not in repr(record)


def test_seconds_budget_period_round_trips(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "k.db")
    record, plain = store.create(KeySpec(name="x", limits=Limits(budget_usd=1, budget_period=3600)))
    found = store.verify(plain)
    assert found is not None and found.limits.budget_period == 3600
    assert found.allowed_routes is None


def test_open_key_store_by_url(tmp_path: Path) -> None:
    from turnout.storage.config import StorageConfig
    from turnout.storage.factory import open_key_store

    assert isinstance(open_key_store(StorageConfig(url="memory://")), MemoryKeyStore)
    store = open_key_store(StorageConfig(url="memory://", keys_url=f"sqlite:///{tmp_path}/k.db"))
    assert isinstance(store, SqliteKeyStore)
    if postgres_reachable():
        pg = open_key_store(StorageConfig(url=POSTGRES_URL))
        assert isinstance(pg, PostgresKeyStore)
        pg.close()
