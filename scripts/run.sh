#!/usr/bin/env bash
# The main job on a fresh or warm machine: set-up, then the whole system on the embedded
# default: the local Kafka broker, `kura-stream serve`, a real sample of conversations
# replayed into it, a recompute, and the resulting cluster tree and status.
# Extra arguments go to `kura-stream demo` (e.g. --n 500 --llm --keep, or --names llm: offline
# summaries and names at once, LLM names in the background).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/kura-stream demo "$@"
