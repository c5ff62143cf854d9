#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need, only when it is missing:
# node_modules when absent or older than package-lock.json (so a cached node_modules is reused).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.deps-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure-deps: installing npm dependencies (package-lock.json changed or node_modules missing)" >&2
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
