#!/usr/bin/env bash
# Build and install llama-cpp-python's OpenAI-compatible server into the project venv.
# Idempotent: exits at once when llama_cpp.server already imports. PyPI ships 0.3.36 as source
# only; pip keeps the built wheel in its cache, so a second build on the same machine is instant.
# OpenMP off: with it on, the server sometimes fell under 1 token/s on 2 shared cores.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=.venv/bin/python

if "$PY" -c "import llama_cpp.server" 2>/dev/null; then
    echo "llama_cpp.server already installed"
    exit 0
fi

echo "building llama-cpp-python[server]==0.3.36 (several minutes on 2 cores)"
start=$(date +%s)
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF" \
    .venv/bin/pip install "llama-cpp-python[server]==0.3.36"
"$PY" -c "import llama_cpp.server"
echo "llama-cpp-python built and installed in $(( $(date +%s) - start )) s"
