#!/usr/bin/env bash
# The main job on a fresh or warm machine: set-up, then the whole system on the embedded
# default: the local Kafka broker, `kura-stream serve`, a real sample of conversations
# replayed into it, a recompute, and the resulting cluster tree and status.
# Extra arguments go to `kura-stream demo` (e.g. --n 500 --llm --keep, or --names llm: offline
# summaries and names at once, LLM names in the background).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
keep=
for arg in "$@"; do if [ "$arg" = --keep ]; then keep=1; fi; done
[ -n "$keep" ] || exec .venv/bin/kura-stream demo "$@"
.venv/bin/kura-stream demo "$@"
# The kept service also serves the live web map at / on its HTTP port (KURA_SERVICE_PORT).
echo "web map: $(.venv/bin/python -c 'from kura_stream.settings import Settings
s = Settings().service
print(f"http://{s.host}:{s.port}/")')"
