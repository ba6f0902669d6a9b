"""What keys, budgets and the ledger add to each gateway request.

Measures, on this machine:

* admission: ``authenticate`` (cached key) + ``admit`` (RPM, TPM and budget checks and the
  worst-case reservation) + ``settle``, per request, with each counters backend, sequentially
  (latency) and 64 at a time (throughput);
* the ledger: the cost of ``append`` on the caller's thread, and how many rows per second the
  background writer stores in SQLite (WAL) and, if reachable, PostgreSQL.

Run: ``/work/venv/bin/python benchmarks/storage_overhead.py [--requests 20000]``; results are
printed and written to ``benchmarks/results/storage_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from turnout.gateway.admission import Gatekeeper
from turnout.storage.base import Attempt, Counters, KeySpec, LedgerRow, Limits
from turnout.storage.counters import MemoryCounters
from turnout.storage.keys import SqliteKeyStore
from turnout.storage.ledger import BatchLedger, SqliteLedger
from turnout.types import Usage

RESULTS = Path(__file__).parent / "results" / "storage_overhead.json"


def _row(i: int) -> LedgerRow:
    return LedgerRow(
        request_id=f"bench-{i}",
        status="ok",
        started_at=time.time(),
        finished_at=time.time(),
        key_id="0123456789ab",
        route="auto",
        model="gpt-4o-mini",
        deployment="openai",
        decision={"model": "gpt-4o-mini", "fallbacks": ["gpt-4o"], "reason": "cheapest eligible"},
        attempts=(Attempt("openai", "gpt-4o-mini", "ok", 200, None, 0.4),),
        usage=Usage(input_tokens=120, output_tokens=300),
        cost_usd=0.000198,
        latency_s=0.41,
        ttft_s=0.12,
    )


async def _admission(counters: Counters, tmp: Path, n: int) -> dict[str, float]:
    store = SqliteKeyStore(tmp / "keys.db")
    limits = Limits(rpm=10**9, tpm=10**12, budget_usd=10**6)
    _, plain = store.create(KeySpec(name="bench", limits=limits))
    keeper = Gatekeeper(store, counters)
    header = f"Bearer {plain}"

    async def one() -> None:
        principal = keeper.authenticate(header)
        admission = await keeper.admit(
            principal, route="auto", worst_case_cost_usd=0.01, input_tokens=120
        )
        await admission.settle(0.004, Usage(input_tokens=120, output_tokens=300))

    for _ in range(200):  # warm-up (key cache, Lua script load, connections)
        await one()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await one()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n // 64):
        await asyncio.gather(*(one() for _ in range(64)))
    concurrent_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    await keeper.aclose()
    return {
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
        "mean_us": statistics.fmean(samples) * 1e6,
        "admissions_per_s_at_concurrency_64": (n // 64) * 64 / concurrent_s,
        # CPU of this process per admission at concurrency 64: what the gateway pays.
        "cpu_us_per_admission": cpu_s / ((n // 64) * 64) * 1e6,
    }


def _ledger(ledger: BatchLedger, n: int) -> dict[str, float]:
    rows = [_row(i) for i in range(n)]
    t0 = time.perf_counter()
    for row in rows:
        ledger.append(row)
    append_s = time.perf_counter() - t0
    ledger.flush()
    total_s = time.perf_counter() - t0
    ledger.close()
    return {"append_us_per_row": append_s / n * 1e6, "rows_written_per_s": n / total_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    n = args.requests
    results: dict[str, Any] = {"requests": n, "admission": {}, "ledger": {}}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        backends: dict[str, Any] = {"memory": MemoryCounters}
        try:
            import redis

            redis.Redis(socket_connect_timeout=1).ping()
            from turnout.storage.redis_counters import RedisCounters

            backends["redis"] = lambda: RedisCounters("redis://127.0.0.1:6379/0")
        except Exception as exc:  # noqa: BLE001 - report and go on without Redis
            print(f"redis skipped: {exc}")
        from turnout.storage.sqlite_counters import SqliteCounters

        backends["sqlite"] = lambda: SqliteCounters(tmp / "counters.db")
        for backend, factory in backends.items():
            count = n if backend == "memory" else n // 4
            results["admission"][backend] = asyncio.run(_admission(factory(), tmp, count))
            print(backend, json.dumps(results["admission"][backend]))
        results["ledger"]["sqlite"] = _ledger(SqliteLedger(tmp / "ledger.db"), n)
        print("ledger sqlite", json.dumps(results["ledger"]["sqlite"]))
        try:
            from turnout.storage.postgres import PostgresLedger

            pg = PostgresLedger("postgresql://postgres@127.0.0.1:5432/test")
            results["ledger"]["postgres"] = _ledger(pg, n)
            print("ledger postgres", json.dumps(results["ledger"]["postgres"]))
        except Exception as exc:  # noqa: BLE001 - report and go on without Postgres
            print(f"postgres skipped: {exc}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
