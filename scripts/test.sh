#!/usr/bin/env bash
# The whole test run on a fresh or warm machine: set-up, linters, then every test.
# The tests start the services they need (Kafka broker, LLM server) and stop them after.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/bootstrap.sh
echo "== lint: ruff, mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== tests"
.venv/bin/pytest -q -p no:cacheprovider --durations=10 "$@"
echo "== test command took $(( $(date +%s) - start ))s"
