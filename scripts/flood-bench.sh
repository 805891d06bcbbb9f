#!/usr/bin/env bash
# A valid caller's GetPartner (REST) while 64 connections flood the service with API keys, made
# up or valid: the valid caller's latency under a flood of made-up keys, as a ratio to the same
# flood made of valid keys. Both sides are driven by wrk (one thread each) on this machine.
#
#   cargo build --release && bash scripts/flood-bench.sh [BINARY] [SECONDS]
#
# Rows: a flood of one valid key; made-up keys (a new well-formed prefix per request) with the
# per-address failure limit on (default) and off (PARTNERS_AUTH_FAILURES_PER_SECOND=0: only the
# stored-prefix set keeps them from the database). Needs wrk (apt-get install wrk) and Postgres
# on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
SECS=${2:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release" >&2; exit 1; }

DB=partners_flood_bench
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
WORK=$(mktemp -d)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

SEED=$("$BIN" seed-demo)
USER_KEY=$(sed -n 's/^user_key=//p' <<<"$SEED")
SERVICE_KEY=$(sed -n 's/^service_key=//p' <<<"$SEED")
ID=$(psql "$DATABASE_URL" -qAtc "SELECT min(id) FROM partners WHERE deleted_at IS NULL")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GRPC=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/api/v1/partners/$ID"

# 20,000 made-up keys (each prefix new to the service), built once so the driver's own CPU per
# request stays that of a fixed header; wrk cycles through them.
cat >"$WORK/made_up.lua" <<'EOF'
local hex = "0123456789abcdef"
local function random_hex(n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, 16)
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end
local requests, i = {}, 0
init = function()
  math.randomseed(os.time())
  for j = 1, 20000 do
    requests[j] = wrk.format(nil, nil,
      { ["Authorization"] = "Bearer pk_" .. random_hex(12) .. "_" .. random_hex(32) })
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
EOF

start() {
  env "$@" RUST_LOG=warn "$BIN" serve --no-migrate --grpc-addr "127.0.0.1:$GRPC" \
    --http-addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "server did not start" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

stop() {
  kill -TERM "$SERVER"
  wait "$SERVER" 2>/dev/null || true
}

# Prints "flood_rps caller_rps caller_p50_ms caller_p99_ms" for one flood.
row() {
  local flood=("$@")
  wrk -t1 -c64 -d"${SECS}s" "${flood[@]}" "$URL" >"$WORK/flood.txt" 2>&1 &
  local flooding=$!
  sleep 1
  wrk -t1 -c4 -d"$((SECS - 2))s" --latency -H "Authorization: Bearer $USER_KEY" "$URL" \
    >"$WORK/caller.txt" 2>&1
  wait "$flooding"
  python3 - "$WORK/flood.txt" "$WORK/caller.txt" <<'EOF'
import re, sys
def rps(text):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(text, pct):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
flood, caller = open(sys.argv[1]).read(), open(sys.argv[2]).read()
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", caller)
assert non2xx is None, "the valid caller got errors: " + caller
print(f"{rps(flood):.0f} {rps(caller):.0f} {ms(caller, 50):.2f} {ms(caller, 99):.2f}")
EOF
}

printf '%-44s %10s %10s %9s %9s %8s\n' "flood (64 connections, wrk)" "flood/s" "caller/s" "p50 ms" "p99 ms" "p99 x"
start
read -r f c p50 p99 < <(row -H "Authorization: Bearer $SERVICE_KEY")
BASE=$p99
printf '%-44s %10s %10s %9s %9s %8s\n' "one valid key" "$f" "$c" "$p50" "$p99" "1.00"
read -r f c p50 p99 < <(row -s "$WORK/made_up.lua")
printf '%-44s %10s %10s %9s %9s %8.2f\n' "made-up keys, failure limit per address on" "$f" "$c" "$p50" "$p99" "$(python3 -c "print($p99/$BASE)")"
stop
start PARTNERS_AUTH_FAILURES_PER_SECOND=0
read -r f c p50 p99 < <(row -s "$WORK/made_up.lua")
printf '%-44s %10s %10s %9s %9s %8.2f\n' "made-up keys, failure limit off" "$f" "$c" "$p50" "$p99" "$(python3 -c "print($p99/$BASE)")"
stop
