#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need, only when it is missing:
# node_modules when absent or installed from another package-lock.json (its hash is kept in
# node_modules/.deps-stamp), so a cached node_modules is reused as long as the lockfile is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.deps-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure-deps: installing npm dependencies (package-lock.json changed or node_modules missing)" >&2
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
