"""What keys, rate limits, budgets and the ledger cost the whole gateway, in requests/s.

Runs the real gateway (uvicorn, one worker, in a subprocess) in front of the loopback upstream
(answering instantly, in another subprocess) in three set-ups and drives it with an aiohttp
client at a fixed concurrency:

* ``anonymous``: ``keys.required: false`` -- no key lookup, no counters (the ledger still
  writes one row per request);
* ``key+budget (memory)``: a key with RPM, TPM and a USD budget; in-process counters;
* ``key+budget (redis)``: the same key; counters in the local Redis.

The ledger is SQLite on disk in every set-up. Run:
``/work/venv/bin/python benchmarks/gateway_admission.py [--requests 6000] [--rounds 3]``;
results go to ``benchmarks/results/gateway_admission.json``. The load generator shares the
2-core machine with the gateway, so absolute numbers are lower than on a dedicated host; the
differences between set-ups are what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from turnout.storage.base import KeySpec, Limits
from turnout.storage.keys import SqliteKeyStore

RESULTS = Path(__file__).parent / "results" / "gateway_admission.json"
SRC = str(Path(__file__).resolve().parents[1] / "src")
# The upstream on the default asyncio loop (its module's own main prefers uvloop).
UPSTREAM = """
import asyncio, sys
from turnout.testing.upstream import UpstreamServer
async def run():
    await UpstreamServer(int(sys.argv[1]), record=False).serve()
    await asyncio.Event().wait()
asyncio.run(run())
"""
LAUNCH = """
import sys, uvicorn
from turnout.config import load_config
from turnout.gateway.app import create_app
app = create_app(load_config(sys.argv[1]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


async def _drive(url: str, key: str | None, n: int, concurrency: int) -> dict[str, float]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = json.dumps(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    ).encode()
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm-up
        statuses.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    done = (n // concurrency) * concurrency
    return {"requests_per_s": done / elapsed, "status_200": statuses.get(200, 0), "sent": done}


def _start(
    name: str, tmp: Path, upstream_port: int
) -> tuple[subprocess.Popen[bytes], str, str | None]:
    """Start a gateway for set-up ``name``; returns the process, its URL and the key."""
    slug = "".join(c if c.isalnum() else "_" for c in name)
    keys: dict[str, Any] = {"required": name != "anonymous", "admin_key_env": None}
    counters = "redis://127.0.0.1:6379/0" if "redis" in name else "memory://"
    config = {
        "deployments": {
            "up": {
                "provider": "openai",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "model": "gpt-4o-mini",
            }
        },
        "routes": {"auto": {"candidates": ["gpt-4o-mini"]}},
        "keys": keys,
        "storage": {"url": f"sqlite:///{tmp}/{slug}.db", "counters_url": counters},
    }
    path = tmp / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(config))
    key = None
    if keys["required"]:
        store = SqliteKeyStore(tmp / f"{slug}.db")
        limits = Limits(rpm=10**9, tpm=10**12, budget_usd=10**6, budget_period="day")
        _, key = store.create(KeySpec("bench", limits=limits))
        store.close()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(path), str(port)], env=env)
    _wait_port(port)
    return process, f"http://127.0.0.1:{port}/v1/chat/completions", key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    upstream_port = _free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)], env=env)
    results: dict[str, Any] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
    }
    setups = ("anonymous", "key+budget (memory)", "key+budget (redis)")
    gateways: dict[str, tuple[subprocess.Popen[bytes], str, str | None]] = {}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    try:
        _wait_port(upstream_port)
        with tempfile.TemporaryDirectory() as name:
            for setup in setups:
                gateways[setup] = _start(setup, Path(name), upstream_port)
            # Rounds alternate between set-ups so that load from other programs on the
            # shared machine falls on all of them alike.
            for _ in range(args.rounds):
                for setup in setups:
                    _, url, key = gateways[setup]
                    run = asyncio.run(_drive(url, key, args.requests, args.concurrency))
                    assert run["status_200"] == run["sent"], (setup, run)
                    rates[setup].append(run["requests_per_s"])
                    print(setup, json.dumps(run), flush=True)
    finally:
        for process, _, _ in gateways.values():
            process.terminate()
            process.wait(30)
        upstream.terminate()
        upstream.wait(30)
    for setup in setups:
        results[setup] = {
            "median_requests_per_s": statistics.median(rates[setup]),
            "best_requests_per_s": max(rates[setup]),
            "rounds_requests_per_s": rates[setup],
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
