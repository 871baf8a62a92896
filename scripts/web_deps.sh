#!/usr/bin/env bash
# Set up the web map's library in .cache/web: the pinned d3 that `npm ci` installs from the npm
# registry (scripts/web/package.json), checking each tarball against the integrity hash in
# scripts/web/package-lock.json. `kura-stream serve` serves its dist/d3.min.js at
# /web/vendor/d3.min.js, so the page needs no CDN and no internet at run time.
# Idempotent: npm runs again only when package-lock.json changes. Needs Node.js 18+ and npm
# (only here, at set-up time; the running service needs neither).
# With --browser, also installs Debian's chromium, which the web map's browser test drives.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing $* (Debian packages)" >&2
    apt-get install -y -q "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$@" >&2; }
  else
    echo "the web map's set-up needs: apt-get install $*" >&2
    exit 1
  fi
}

if ! { command -v node && command -v npm; } >/dev/null; then
  apt_install nodejs npm
fi
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then
  # Only the browser test needs it: without root, say so and go on.
  (apt_install chromium) || echo "warning: no chromium; the web map's browser test will fail" >&2
fi

src=scripts/web
dest=.cache/web
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"

stamp="$dest/node_modules/.installed-$(sha256sum "$src/package-lock.json" | cut -c1-16)"
if [ ! -f "$stamp" ] || [ ! -f "$dest/node_modules/d3/dist/d3.min.js" ]; then
  echo "== npm ci (d3) into $dest" >&2
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
fi
echo "$dest/node_modules/d3/dist/d3.min.js"
