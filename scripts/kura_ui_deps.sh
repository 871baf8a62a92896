#!/usr/bin/env bash
# Set up the Kura web UI check (tests/fixtures/kura_ui) in .cache/node/kura_ui: Kura's UI
# parsing code, our harness, and the pinned zod and tsx that `npm ci` installs from the npm
# registry, checking each tarball against the integrity hash in package-lock.json.
# Idempotent: npm runs again only when package-lock.json changes. Needs Node.js 18+.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! { command -v node && command -v npm; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Node.js and npm (Debian packages)" >&2
    apt-get install -y -q nodejs npm >&2 || { apt-get update -q >&2 && apt-get install -y -q nodejs npm >&2; }
  else
    echo "the Kura web UI check needs Node.js 18+ and npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || { echo "the Kura web UI check needs Node.js 18+, found $(node --version)" >&2; exit 1; }

src=tests/fixtures/kura_ui
dest=.cache/node/kura_ui
mkdir -p "$dest"
cp -R "$src/src" "$src/check.ts" "$src/tsconfig.json" "$src/package.json" "$src/package-lock.json" "$dest/"

stamp="$dest/node_modules/.installed-$(sha256sum "$src/package-lock.json" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== npm ci (zod, tsx) into $dest" >&2
  # --ignore-scripts: esbuild's install script only re-checks its platform binary.
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
fi
echo "$dest"
