#!/usr/bin/env bash
# Builds docker/Dockerfile exactly as written and runs the built image against the simulator.
#
#   bash docker/verify.sh            (as root, from anywhere in a clone of the repository)
#
# 1. base image: Docker Hub may be out of reach, so docker.io/library/debian:trixie-slim is made with
#    debootstrap (minbase, trixie) and imported under that name, once: later runs reuse it.
# 2. build: podman (vfs storage, chroot isolation: no daemon, no overlay mounts, no user namespaces).
# 3. run: `podman run` when this machine allows containers; where it is refused (a sandbox without
#    cgroups or rlimits for crun), the image's filesystem is exported and its entrypoint run with
#    chroot as the image's user, with the image's environment and working directory. The output says
#    which. Against a simulator on 127.0.0.1: sync --once, webhooks list, mcp over stdio, then serve
#    (embedded redis-server) with /healthz, /readyz, /metrics, tools/list over HTTP with the bearer
#    token, the image's HEALTHCHECK command, and SIGTERM to a clean exit.
#
# Not part of `npm test` (minutes, root, podman). Settings: VERIFY_IMAGE (proxmox-inventory:dev),
# VERIFY_GUESTS (200), KEEP_TMP=1 keeps the temporary directory for a look afterwards.
set -uo pipefail

BASE_IMAGE=docker.io/library/debian:trixie-slim
IMAGE=${VERIFY_IMAGE:-proxmox-inventory:dev}
GUESTS=${VERIFY_GUESTS:-200}
PODMAN=(podman --storage-driver vfs)
REPO=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /var/tmp/proxmox-inventory-verify.XXXXXX)
chmod 755 "$TMP" # the image's user walks into rootfs/ below it
FAILED=0
SUMMARY=()
MOUNTS=()
PIDS=()

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
pass() {
  SUMMARY+=("PASS  $1 ($2)${3:+: $3}")
  say "PASS  $1 ($2)${3:+: $3}"
}
fail() {
  SUMMARY+=("FAIL  $1 ($2)${3:+: $3}")
  say "FAIL  $1 ($2)${3:+: $3}"
  FAILED=1
}

cleanup() {
  local pid m
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null; done
  for ((m = ${#MOUNTS[@]} - 1; m >= 0; m--)); do umount -l "${MOUNTS[m]}" 2> /dev/null; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# --- 0. host tools ---------------------------------------------------------------------------------

require_root_tools() {
  if [ "$(id -u)" -ne 0 ]; then
    say "verify.sh needs root (debootstrap, podman's vfs store, chroot); run it with sudo"
    exit 2
  fi
  local missing=()
  command -v podman > /dev/null || missing+=(podman)
  command -v debootstrap > /dev/null || missing+=(debootstrap)
  command -v curl > /dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null || {
      say "apt-get could not install ${missing[*]}; install them and run again"
      exit 2
    }
  fi
  local free_kb
  free_kb=$(df -Pk /var/lib/containers 2> /dev/null | awk 'NR == 2 { print $4 }')
  free_kb=${free_kb:-$(df -Pk /var | awk 'NR == 2 { print $4 }')}
  if [ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ]; then
    say "less than 6 GiB free for podman's vfs store (each layer is a full copy); free some space first"
    exit 2
  fi
}

# The first Debian mirror apt on this host uses, so debootstrap goes where apt already can.
debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }' | grep -v security | head -1)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{ print $2 }' | grep -v security | head -1)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# --- 1. base image ---------------------------------------------------------------------------------

# Slims the tree as Debian's official -slim images do: no manuals, docs or translations now or later.
slim_rootfs() {
  local root=$1
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" << 'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  # As in the official images: no .deb files or package caches left behind by apt.
  cat > "$root/etc/apt/apt.conf.d/docker-clean" << 'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2> /dev/null
  rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
  : > "$root/etc/resolv.conf"
}

ensure_base_image() {
  local t0
  t0=$(now)
  if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    pass "base image" "$(since "$t0")" "$BASE_IMAGE already in the vfs store (cached)"
    return
  fi
  local mirror root=$TMP/base
  mirror=$(debian_mirror)
  say "debootstrap --variant=minbase trixie from $mirror (a minute or two)"
  if ! debootstrap --variant=minbase trixie "$root" "$mirror" > "$TMP/debootstrap.log" 2>&1; then
    fail "base image" "$(since "$t0")" "debootstrap failed; last lines of its log:"
    tail -5 "$TMP/debootstrap.log" >&2
    exit 1
  fi
  slim_rootfs "$root"
  if tar -C "$root" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE_IMAGE" > /dev/null; then
    pass "base image" "$(since "$t0")" "debootstrap trixie minbase imported as $BASE_IMAGE"
  else
    fail "base image" "$(since "$t0")" "podman import failed"
    exit 1
  fi
  rm -rf "$root"
}

# --- 2. build --------------------------------------------------------------------------------------

build_image() {
  local t0 revision size
  t0=$(now)
  revision=$(git -C "$REPO" rev-parse HEAD 2> /dev/null || echo unknown)
  # A TLS-intercepting proxy's CA (hosts that need one set NODE_EXTRA_CA_CERTS) reaches npm ci as a
  # build secret: used for that step, never stored in a layer.
  local ca=()
  [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ] && ca=(--secret "id=build_ca,src=$NODE_EXTRA_CA_CERTS")
  # --format docker keeps HEALTHCHECK (the OCI image format has no field for it). --layers=false
  # commits each stage once: vfs copies the whole tree at every commit, a minute or more each.
  if "${PODMAN[@]}" build --pull=never --isolation chroot --format docker --layers=false --force-rm "${ca[@]}" \
    --build-arg "REVISION=$revision" --build-arg "VERSION=$(node -p "require('$REPO/package.json').version" 2> /dev/null || echo dev)" \
    -f "$REPO/docker/Dockerfile" -t "$IMAGE" "$REPO" > "$TMP/build.log" 2>&1; then
    size=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}' | awk '{ printf "%.0f MB", $1 / 1e6 }')
    pass "build" "$(since "$t0")" "$IMAGE, $size"
  else
    fail "build" "$(since "$t0")" "podman build failed; last lines:"
    tail -30 "$TMP/build.log" >&2
    exit 1
  fi
}

# --- 3. run ----------------------------------------------------------------------------------------

MODE=
ROOTFS=$TMP/rootfs
DATA=$TMP/data
SECRETS=$TMP/secrets
IMAGE_ENV=()
WORKDIR=/
USERSPEC=
ENTRYPOINT=()

inspect() { "${PODMAN[@]}" image inspect "$IMAGE" --format "$1"; }

read_image_config() {
  mapfile -t IMAGE_ENV < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | grep -v '^$')
  mapfile -t ENTRYPOINT < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | grep -v '^$')
  WORKDIR=$(inspect '{{.Config.WorkingDir}}')
  USERSPEC=$(inspect '{{.Config.User}}')
}

# `podman run` where containers may run; else the exported filesystem, entered with chroot.
choose_run_mode() {
  local t0 out
  t0=$(now)
  if out=$("${PODMAN[@]}" run --rm --network host "$IMAGE" help 2>&1) && grep -q 'sync --once' <<< "$out"; then
    MODE=podman
    pass "podman run" "$(since "$t0")" "containers run here; the steps below use podman run"
    return
  fi
  say "podman run was refused here: $(tail -1 <<< "$out")"
  MODE=chroot
  local cid
  cid=$("${PODMAN[@]}" create "$IMAGE") || {
    fail "export" "$(since "$t0")" "podman create failed"
    exit 1
  }
  mkdir -p "$ROOTFS"
  "${PODMAN[@]}" export "$cid" | tar -C "$ROOTFS" -x
  "${PODMAN[@]}" rm "$cid" > /dev/null
  mount_into_rootfs
  pass "podman run refused: chroot instead" "$(since "$t0")" \
    "image filesystem exported to a temp dir, entrypoint run with chroot --userspec=$USERSPEC"
}

mount_into_rootfs() {
  mkdir -p "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/data" "$ROOTFS/run/secrets"
  mount -t proc proc "$ROOTFS/proc" && MOUNTS+=("$ROOTFS/proc")
  mount --bind /dev "$ROOTFS/dev" && MOUNTS+=("$ROOTFS/dev")
  mount --bind "$DATA" "$ROOTFS/data" && MOUNTS+=("$ROOTFS/data")
  mount --bind "$SECRETS" "$ROOTFS/run/secrets" && MOUNTS+=("$ROOTFS/run/secrets")
}

# Under chroot tini is not PID 1: as a subreaper it still reaps what node's children leave, as it
# would in a container.
CHROOT_ENV=(HOME=/data TINI_SUBREAPER=1)

# The image's entrypoint with ARGS, as the image's user, with the image's environment plus RUN_ENV.
in_image() {
  if [ "$MODE" = podman ]; then
    local e flags=()
    for e in "${RUN_ENV[@]}"; do flags+=(-e "$e"); done
    "${PODMAN[@]}" run --rm -i --network host -v "$DATA:/data" -v "$SECRETS:/run/secrets:ro" "${flags[@]}" "$IMAGE" "$@"
  else
    (exec_chroot "${ENTRYPOINT[@]}" "$@")
  fi
}

# Replaces this shell with COMMAND run inside the exported image as its user, from its WORKDIR, so
# a background job's $! is the command's own pid (a signal sent to it reaches tini).
exec_chroot() {
  exec env -i "${IMAGE_ENV[@]}" "${CHROOT_ENV[@]}" "${RUN_ENV[@]}" \
    chroot --userspec="$USERSPEC" "$ROOTFS" /bin/sh -c 'cd "$0" && exec "$@"' "$WORKDIR" "$@"
}

# The image's HEALTHCHECK command, run where the daemon runs.
run_healthcheck() {
  local cmd=()
  mapfile -t cmd < <(inspect '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' | grep -v '^$')
  [ "${cmd[0]:-}" = CMD ] || return 1
  if [ "$MODE" = podman ]; then
    "${PODMAN[@]}" exec inventory-verify "${cmd[@]:1}"
  else
    (exec_chroot "${cmd[@]:1}")
  fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_simulator() {
  local t0
  t0=$(now)
  if [ ! -x "$REPO/node_modules/.bin/tsx" ]; then
    say "installing the repository's npm dependencies for the simulator (npm ci)"
    (cd "$REPO" && npm ci --no-audit --no-fund > "$TMP/npm-ci.log" 2>&1) || {
      fail "simulator" "$(since "$t0")" "npm ci failed (see $TMP/npm-ci.log with KEEP_TMP=1)"
      exit 1
    }
  fi
  (cd "$REPO" && exec node_modules/.bin/tsx src/cli.ts sim --port 0 --guests "$GUESTS" --write-env "$TMP/sim.env") \
    > "$TMP/sim.log" 2>&1 &
  PIDS+=($!)
  local i
  for i in $(seq 1 120); do
    [ -s "$TMP/sim.env" ] && break
    sleep 0.5
  done
  if [ ! -s "$TMP/sim.env" ]; then
    fail "simulator" "$(since "$t0")" "no sim.env after 60 s; its output:"
    cat "$TMP/sim.log" >&2
    exit 1
  fi
  local url token_id secret fingerprint
  url=$(sed -n 's/^PVE_URL=//p' "$TMP/sim.env")
  token_id=$(sed -n 's/^PVE_TOKEN_ID=//p' "$TMP/sim.env")
  secret=$(sed -n 's/^PVE_TOKEN_SECRET=//p' "$TMP/sim.env")
  fingerprint=$(sed -n 's/^PVE_FINGERPRINT=//p' "$TMP/sim.env")
  # Secrets as files, read through *_FILE as compose secrets are; readable by the image's user only.
  printf '%s\n' "$secret" > "$SECRETS/pve_token_secret"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRETS/mcp_bearer_token"
  chown "$USERSPEC" "$SECRETS"/* && chmod 400 "$SECRETS"/*
  RUN_ENV=(PVE_URL="$url" PVE_TOKEN_ID="$token_id" PVE_FINGERPRINT="$fingerprint"
    PVE_TOKEN_SECRET_FILE=/run/secrets/pve_token_secret PVE_CLUSTER_NAME=sim LOG_LEVEL=warn)
  pass "simulator" "$(since "$t0")" "$GUESTS guests at $url on the host (TLS, pinned fingerprint)"
}

step_sync_once() {
  local t0 out
  t0=$(now)
  if out=$(in_image sync --once 2>&1); then
    pass "sync --once" "$(since "$t0")" "$(tail -1 <<< "$out")"
  else
    fail "sync --once" "$(since "$t0")" "exit $?: $(tail -3 <<< "$out")"
  fi
}

step_webhooks_list() {
  local t0 out
  t0=$(now)
  if out=$(in_image webhooks list 2>&1); then
    pass "webhooks list" "$(since "$t0")" "$(grep -v '^\[WARN' <<< "$out" | head -1)"
  else
    fail "webhooks list" "$(since "$t0")" "exit $?: $(tail -3 <<< "$out")"
  fi
}

step_mcp_stdio() {
  local t0 out
  t0=$(now)
  out=$({
    printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"verify.sh","version":"1"}}}'
    printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    printf '%s\n' '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"inventory_overview","arguments":{}}}'
    sleep 3 # then end of input, which ends the stdio server
  } | in_image mcp 2> "$TMP/mcp.err")
  if grep -q '"id":2' <<< "$out" && grep -q "$GUESTS" <<< "$out" && ! grep -q '"isError":true' <<< "$out"; then
    pass "mcp (stdio)" "$(since "$t0")" "initialize, then inventory_overview answered from the inventory"
  else
    fail "mcp (stdio)" "$(since "$t0")" "no inventory_overview answer: $(head -c 300 <<< "$out") $(tail -2 "$TMP/mcp.err")"
  fi
}

SERVE_PID=
PORT=
TOKEN=

start_serve() {
  local t0
  t0=$(now)
  PORT=$(free_port)
  TOKEN=$(cat "$SECRETS/mcp_bearer_token")
  # 0.0.0.0 as in compose.yaml, so serve must refuse to start without the token it is given here.
  RUN_ENV+=(MCP_HTTP_HOST=0.0.0.0 MCP_HTTP_PORT="$PORT" MCP_BEARER_TOKEN_FILE=/run/secrets/mcp_bearer_token
    ACTIONS=power SYNC_INTERVAL_SECONDS=5 LOG_LEVEL=info)
  if [ "$MODE" = podman ]; then
    local e flags=()
    for e in "${RUN_ENV[@]}"; do flags+=(-e "$e"); done
    "${PODMAN[@]}" run --rm --name inventory-verify --network host -v "$DATA:/data" -v "$SECRETS:/run/secrets:ro" \
      "${flags[@]}" "$IMAGE" > "$TMP/serve.log" 2>&1 &
  else
    (exec_chroot "${ENTRYPOINT[@]}" serve) > "$TMP/serve.log" 2>&1 &
  fi
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  local i
  for i in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" > /dev/null 2>&1 && break
    kill -0 "$SERVE_PID" 2> /dev/null || break
    sleep 0.5
  done
  if curl -fsS "http://127.0.0.1:$PORT/healthz" > "$TMP/healthz" 2>&1; then
    pass "serve: /healthz" "$(since "$t0")" "$(cat "$TMP/healthz") on 0.0.0.0:$PORT"
  else
    fail "serve: /healthz" "$(since "$t0")" "not answering; serve's log:"
    tail -20 "$TMP/serve.log" >&2
    return 1
  fi
}

http_code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }

step_readyz() {
  local t0 code i
  t0=$(now)
  for i in $(seq 1 40); do
    code=$(http_code -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/readyz")
    [ "$code" = 200 ] && break
    sleep 0.5
  done
  if [ "$code" = 200 ]; then pass "serve: /readyz" "$(since "$t0")" "200 $(head -c 120 "$TMP/body")"; else fail "serve: /readyz" "$(since "$t0")" "$code $(head -c 300 "$TMP/body")"; fi
}

step_metrics() {
  local t0 code anonymous series
  t0=$(now)
  anonymous=$(http_code "http://127.0.0.1:$PORT/metrics")
  code=$(http_code -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics")
  series=$(grep -c '^proxmox_inventory_' "$TMP/body")
  if [ "$anonymous" = 401 ] && [ "$code" = 200 ] && grep -q '^proxmox_inventory_sync_cycles_total{cluster="sim",outcome="ok"}' "$TMP/body"; then
    pass "serve: /metrics" "$(since "$t0")" "401 without the token, 200 with it; $series proxmox_inventory_ samples, sync cycles ok counted"
  else
    fail "serve: /metrics" "$(since "$t0")" "without token $anonymous (want 401), with token $code (want 200 and sync_cycles_total ok)"
  fi
}

step_tools_list() {
  local t0 code anonymous tools
  t0=$(now)
  local body='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
  local headers=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
  anonymous=$(http_code "${headers[@]}" -d "$body" "http://127.0.0.1:$PORT/mcp")
  code=$(http_code "${headers[@]}" -H "Authorization: Bearer $TOKEN" -d "$body" "http://127.0.0.1:$PORT/mcp")
  tools=$(grep -o '"name":"[a-z_]*"' "$TMP/body" | grep -c . || true)
  if [ "$anonymous" = 401 ] && [ "$code" = 200 ] && grep -q '"list_guests"' "$TMP/body" && grep -q '"guest_power"' "$TMP/body"; then
    pass "serve: MCP tools/list over HTTP" "$(since "$t0")" "401 without the token; with it $tools tools, guest_power included (ACTIONS=power)"
  elif [ "$anonymous" = 401 ] && [ "$code" = 200 ] && grep -q '"list_guests"' "$TMP/body"; then
    pass "serve: MCP tools/list over HTTP" "$(since "$t0")" "401 without the token; with it $tools tools"
  else
    fail "serve: MCP tools/list over HTTP" "$(since "$t0")" "without token $anonymous (want 401), with token $code: $(head -c 200 "$TMP/body")"
  fi
}

REDIS_PID=

step_embedded_redis() {
  local t0
  t0=$(now)
  REDIS_PID=$(cat "$DATA/redis/redis.pid" 2> /dev/null)
  if [ -S "$DATA/redis/redis.sock" ] && [ -n "$REDIS_PID" ] && grep -q 'embedded redis-server started' "$TMP/serve.log"; then
    pass "serve: embedded redis-server" "$(since "$t0")" "socket /data/redis/redis.sock, started by serve (REDIS_URL unset, ACTIONS=power)"
  else
    fail "serve: embedded redis-server" "$(since "$t0")" "no socket in /data/redis or no start in the log"
  fi
}

step_healthcheck() {
  local t0
  t0=$(now)
  if run_healthcheck > "$TMP/hc.log" 2>&1; then
    pass "HEALTHCHECK command" "$(since "$t0")" "exit 0"
  else
    fail "HEALTHCHECK command" "$(since "$t0")" "$(tail -2 "$TMP/hc.log")"
  fi
}

step_sigterm() {
  local t0 status i
  t0=$(now)
  if [ "$MODE" = podman ]; then "${PODMAN[@]}" kill --signal TERM inventory-verify > /dev/null; else kill -TERM "$SERVE_PID"; fi
  for i in $(seq 1 30); do
    kill -0 "$SERVE_PID" 2> /dev/null || break
    sleep 0.5
  done
  if kill -0 "$SERVE_PID" 2> /dev/null; then
    fail "SIGTERM" "$(since "$t0")" "serve still running 15 s after SIGTERM"
    return
  fi
  wait "$SERVE_PID"
  status=$?
  local leftovers=""
  [ -e "$DATA/serve.lock" ] && leftovers+=" serve.lock"
  [ "$MODE" = chroot ] && [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2> /dev/null && leftovers+=" redis-server"
  if [ "$status" = 0 ] && [ -z "$leftovers" ]; then
    pass "SIGTERM" "$(since "$t0")" "exit 0 through tini; serve.lock removed, redis-server stopped"
  else
    fail "SIGTERM" "$(since "$t0")" "exit $status; left behind:${leftovers:- nothing}"
  fi
}

main() {
  local t_all
  t_all=$(now)
  require_root_tools
  ensure_base_image
  build_image
  mkdir -p "$DATA" "$SECRETS"
  read_image_config
  chown "$USERSPEC" "$DATA" && chmod 700 "$DATA"
  choose_run_mode
  start_simulator
  step_sync_once
  step_webhooks_list
  step_mcp_stdio
  if start_serve; then
    step_readyz
    step_metrics
    step_tools_list
    step_embedded_redis
    step_healthcheck
    step_sigterm
  fi
  say ""
  say "=== docker/verify.sh summary ($(since "$t_all") in all; run mode: $MODE) ==="
  printf '%s\n' "${SUMMARY[@]}" >&2
  [ "$MODE" = chroot ] && say "note: podman run was refused on this machine; the image's filesystem ran under chroot as uid ${USERSPEC%%:*}"
  if [ "$FAILED" = 0 ]; then say "verify: PASS"; else say "verify: FAIL"; fi
  return "$FAILED"
}

main "$@"
