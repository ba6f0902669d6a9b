"""Gateway overhead: direct-to-upstream vs through turnout vs through LiteLLM's proxy.

Everything runs on 127.0.0.1, each part in its own process:

* the upstream: ``python -m turnout.testing.upstream`` (answers at once, no I/O);
* turnout: ``turnout serve --workers 1`` (uvloop + httptools), admin-key auth, a SQLite ledger
  on disk, the ``cheapest`` policy on one candidate (the fast router);
* LiteLLM's proxy ``litellm[proxy]==1.108.7``, installed only in ``benchmarks/.venv-litellm``
  (created by this script on first use), master-key auth, one worker;
* the load generator: ``wrk`` (``apt-get install wrk``), one thread.

Per target and repetition: a concurrency-1 run (latency p50/p99) and a concurrency-64 run
(requests/s), non-streaming; medians over repetitions are reported. "Added latency" is the
target's p50/p99 minus the direct p50/p99 of the same repetition. Memory: turnout's RSS after
warm-up (the runs above plus 25,000 requests at concurrency 64), then after 50,000 more
requests at concurrency 64 (each read 2 s after the load stops, once the ledger's background
writer has drained its queue).

Usage::

    python benchmarks/gateway_overhead.py   # writes benchmarks/results/gateway_overhead.md
    python benchmarks/gateway_overhead.py --skip-litellm --reps 1 --duration-s 3   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "benchmarks" / ".venv-litellm"
LITELLM_PIN = "litellm[proxy]==1.108.7"
ADMIN_KEY = "sk-bench-admin-key-0123456789abcdef"
BODY = (
    '{"model":"auto","messages":[{"role":"user","content":'
    '"Say hello in one short sentence."}],"max_tokens":32}'
)


@dataclass
class Run:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout_s} s")


def write_lua(tmp: Path, auth: str | None) -> Path:
    body = BODY.replace("'", "\\'")
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = '{body}'",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if auth:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {auth}"')
    path = tmp / f"post_{'auth' if auth else 'open'}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk_count(url: str, script: Path, connections: int, requests: int) -> Run:
    """Run wrk in 5-second slices until at least ``requests`` requests were answered."""
    total, errors, slices = 0, 0, 0
    while total < requests:
        run = wrk(url, script, connections, 5)
        total += run.requests
        errors += run.errors
        slices += 1
    return Run(0.0, 0.0, 0.0, total, errors)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, script: Path, connections: int, duration_s: float) -> Run:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "--timeout",
            "10s",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"(\d+)", socket_errors.group(1)))
    return Run(_ms(pct["50"]), _ms(pct["99"]), rps, total, errors)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ensure_litellm() -> Path:
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        print(f"creating {LITELLM_VENV} with {LITELLM_PIN} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = LITELLM_VENV / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", LITELLM_PIN], check=True)
    return exe


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def turnout_config(tmp: Path, upstream_port: int) -> Path:
    path = tmp / "turnout.yaml"
    path.write_text(
        f"""deployments:
  bench:
    provider: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key_env: BENCH_UPSTREAM_KEY
    model: upstream-model
    catalog_model: gpt-4o-mini
routes:
  auto: {{candidates: [gpt-4o-mini], policy: cheapest}}
keys: {{required: true, admin_key_env: TURNOUT_ADMIN_KEY}}
storage: {{url: "sqlite:///{tmp}/ledger.db", counters_url: "memory://"}}
"""
    )
    return path


def litellm_config(tmp: Path, upstream_port: int) -> Path:
    path = tmp / "litellm.yaml"
    path.write_text(
        f"""model_list:
  - model_name: auto
    litellm_params:
      model: openai/upstream-model
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-bench-upstream
litellm_settings:
  telemetry: false
general_settings:
  master_key: {ADMIN_KEY}
"""
    )
    return path


def measure(
    targets: dict[str, tuple[str, Path]], args: argparse.Namespace
) -> dict[str, list[tuple[Run, Run]]]:
    """Interleave the targets within each repetition so that they share the machine's noise."""
    for url, lua in targets.values():
        wrk(url, lua, 16, 2)  # warm-up
    results: dict[str, list[tuple[Run, Run]]] = {name: [] for name in targets}
    for rep in range(args.reps):
        latency = {name: wrk(url, lua, 1, args.duration_s) for name, (url, lua) in targets.items()}
        for name, (url, lua) in targets.items():
            throughput = wrk(url, lua, 64, args.duration_s)
            lat = latency[name]
            print(
                f"{name:8s} rep {rep + 1}: c=1 p50 {lat.p50_ms:.3f} ms p99 {lat.p99_ms:.3f} ms"
                f" ({lat.rps:.0f} req/s); c=64 {throughput.rps:.0f} req/s"
                f" errors {lat.errors + throughput.errors}",
                flush=True,
            )
            results[name].append((lat, throughput))
    return results


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:  # noqa: C901 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=8.0)
    parser.add_argument("--memory-requests", type=int, default=50_000)
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gateway_overhead.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed as the load generator: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    env = {
        **os.environ,
        "BENCH_UPSTREAM_KEY": "sk-bench-upstream",
        "TURNOUT_ADMIN_KEY": ADMIN_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "PYTHONPATH": str(ROOT / "src"),
    }
    procs: list[subprocess.Popen[bytes]] = []
    load_before = loadavg()
    try:
        up_port, tn_port, ll_port = free_port(), free_port(), free_port()
        up = start(
            [sys.executable, "-m", "turnout.testing.upstream", "--port", str(up_port)],
            env,
            tmp / "upstream.log",
        )
        procs.append(up)
        tn = start(
            [
                sys.executable,
                "-m",
                "turnout",
                "serve",
                "--config",
                str(turnout_config(tmp, up_port)),
                "--port",
                str(tn_port),
                "--workers",
                "1",
            ],
            env,
            tmp / "turnout.log",
        )
        procs.append(tn)
        wait_http(f"http://127.0.0.1:{up_port}/v1/models", 20)
        wait_http(f"http://127.0.0.1:{tn_port}/healthz", 30)
        targets = {
            "direct": (f"http://127.0.0.1:{up_port}/v1/chat/completions", None),
            "turnout": (f"http://127.0.0.1:{tn_port}/v1/chat/completions", ADMIN_KEY),
        }
        if not args.skip_litellm:
            exe = ensure_litellm()
            ll = start(
                [
                    str(exe),
                    "--config",
                    str(litellm_config(tmp, up_port)),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ll_port),
                    "--num_workers",
                    "1",
                ],
                env,
                tmp / "litellm.log",
            )
            procs.append(ll)
            wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", 120)
            targets["litellm"] = (f"http://127.0.0.1:{ll_port}/v1/chat/completions", ADMIN_KEY)
        results = measure(
            {name: (url, write_lua(tmp, auth)) for name, (url, auth) in targets.items()}, args
        )
        # Memory: turnout's RSS after the runs above plus a sustained warm-up of the same shape
        # as the measured run (so the baseline includes the allocator's high-water mark of
        # a sustained c=64 load, e.g. the ledger queue), then after N more requests.
        url, auth = targets["turnout"]
        wrk_count(url, write_lua(tmp, auth), 64, args.memory_requests // 2)
        time.sleep(2)  # let the ledger writer drain its queue before reading RSS
        rss_warm = rss_mib(tn.pid)
        mem_run = wrk_count(url, write_lua(tmp, auth), 64, args.memory_requests)
        time.sleep(2)
        rss_after = rss_mib(tn.pid)
    finally:
        for proc in reversed(procs):
            stop(proc)
    load_after = loadavg()
    write_report(args, results, rss_warm, rss_after, mem_run, load_before, load_after)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def write_report(
    args: argparse.Namespace,
    results: dict[str, list[tuple[Run, Run]]],
    rss_warm: float,
    rss_after: float,
    mem_run: Run,
    load_before: str,
    load_after: str,
) -> None:
    direct = results["direct"]
    rows = []
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        p50 = _median([lat.p50_ms for lat, _ in runs])
        p99 = _median([lat.p99_ms for lat, _ in runs])
        added50 = _median(
            [lat.p50_ms - d.p50_ms for (lat, _), (d, _) in zip(runs, direct, strict=True)]
        )
        added99 = _median(
            [lat.p99_ms - d.p99_ms for (lat, _), (d, _) in zip(runs, direct, strict=True)]
        )
        rps = _median([tp.rps for _, tp in runs])
        errors = sum(lat.errors + tp.errors for lat, tp in runs)
        summary[name] = {"added50": added50, "added99": added99, "rps": rps}
        added = "—" if name == "direct" else f"{added50:.3f} / {added99:.3f}"
        rows.append(f"| {name} | {p50:.3f} / {p99:.3f} | {added} | {rps:,.0f} | {errors} |")
    growth = 100 * (rss_after - rss_warm) / rss_warm
    lines = [
        "# Gateway overhead",
        "",
        "Command: `python benchmarks/gateway_overhead.py"
        + (" --skip-litellm" if args.skip_litellm else "")
        + f" --reps {args.reps} --duration-s {args.duration_s:g}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; the machine was shared with other jobs "
        f"(load average {load_before} before, {load_after} after), so tail latencies are noisy.",
        "Setup: every process on 127.0.0.1; upstream = `turnout.testing.upstream` (answers at "
        "once); turnout = `turnout serve --workers 1` (uvloop, httptools, aiohttp upstream "
        "client, admin-key auth, SQLite ledger on disk, cheapest policy); LiteLLM = "
        f"`{LITELLM_PIN}` in its own venv, master-key auth, `--num_workers 1`; load = `wrk -t1`, "
        f"non-streaming POST /v1/chat/completions. Medians of {args.reps} repetitions of "
        f"{args.duration_s:g} s each.",
        "",
        "| target | latency p50 / p99 at c=1 (ms) | added p50 / p99 vs direct (ms) "
        "| requests/s at c=64 | non-2xx + socket errors |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Goals (issue 3): added p50 <= 1 ms and p99 <= 5 ms at c=1; >= 1,500 requests/s at c=64; "
        "memory growth < 10% over 50,000 requests after warm-up.",
        "",
        f"- turnout added latency at c=1: p50 {summary['turnout']['added50']:.3f} ms "
        f"({'meets' if summary['turnout']['added50'] <= 1 else 'misses'} the 1 ms goal); p99 "
        f"{summary['turnout']['added99']:+.3f} ms (median over repetitions of turnout's p99 minus "
        f"direct's p99 in the same repetition; "
        f"{'within' if summary['turnout']['added99'] <= 5 else 'above'} the 5 ms goal; at this "
        "load the direct path's own p99 is several ms, so the tails mostly measure the other jobs "
        "on the machine).",
        f"- turnout throughput: {summary['turnout']['rps']:,.0f} requests/s "
        f"({'meets' if summary['turnout']['rps'] >= 1500 else 'misses'} the 1,500 goal).",
        f"- turnout memory: RSS {rss_warm:.1f} MiB warm, {rss_after:.1f} MiB after "
        f"{mem_run.requests:,} more requests at c=64 ({growth:+.1f}%; "
        f"{'meets' if growth < 10 else 'misses'} the < 10% goal; {mem_run.errors} errors).",
    ]
    if "litellm" in summary:
        ll, tn = summary["litellm"], summary["turnout"]
        lines.append(
            f"- against LiteLLM's proxy on the same machine: {tn['rps'] / ll['rps']:.1f}x the "
            f"throughput; added p50 {ll['added50']:.3f} ms vs {tn['added50']:.3f} ms "
            f"({ll['added50'] / max(tn['added50'], 1e-9):.1f}x less for turnout)."
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
