#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need, only when it is missing:
# - node_modules when absent or installed from another package-lock.json (its hash is kept in
#   node_modules/.deps-stamp), so a cached node_modules is reused as long as the lockfile is unchanged;
# - Debian's redis-server, which serve starts privately when REDIS_URL is unset and the tests start
#   for themselves. Only the binary is wanted: the system service is never started here.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.deps-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure-deps: installing npm dependencies (package-lock.json changed or node_modules missing)" >&2
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

if ! command -v redis-server > /dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: redis-server is not installed; run: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
  echo "ensure-deps: installing redis-server (apt-get)" >&2
  # A fresh image has no package lists; an install that fails on stale lists gets one more try after an update.
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(ls -A /var/lib/apt/lists 2> /dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$')" ]; then
    apt-get update -qq
  fi
  # policy-rc.d exit 101 keeps the package's post-install from starting the system service.
  policy=/usr/sbin/policy-rc.d
  had_policy=0
  [ -e "$policy" ] && had_policy=1
  if [ "$had_policy" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq redis-server > /dev/null || { apt-get update -qq && apt-get install -y -qq redis-server > /dev/null; }
  command -v redis-server > /dev/null 2>&1 || {
    echo "ensure-deps: apt-get did not install redis-server; install it, or set REDIS_URL to an existing Redis" >&2
    exit 1
  }
fi
