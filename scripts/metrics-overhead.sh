#!/usr/bin/env bash
# The cost of the Prometheus metrics: GetPartner throughput with metrics on (the default) and off
# (`--metrics-addr off`: no recorder, every recording a no-op), in alternating pairs, over gRPC
# (h2load, 8 connections x 4 streams) and REST (wrk, 8 connections). Each run is a fresh process on
# a demo database of the Postgres at 127.0.0.1:5432 (dropped afterwards).
#
#     cargo build --release && bash scripts/metrics-overhead.sh [BINARY] [PAIRS] [SECONDS]
#
# Needs h2load (apt-get install nghttp2-client) and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
PAIRS=${2:-3}
SECS=${3:-8}
for tool in h2load wrk; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install nghttp2-client wrk" >&2; exit 1; }
done
DB=partners_metrics_$$
TMP=$(mktemp -d)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn PARTNERS_RATE_LIMIT_PER_SECOND=0
eval "$("$BIN" seed-demo)"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GRPC=$(free_port)
HTTP=$(free_port)
METRICS=$(free_port)
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" || true; PID=; fi; }
cleanup() {
  stop
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  rm -rf "$TMP"
}
trap cleanup EXIT
start() {
  "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
    --metrics-addr "$1" --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && return; sleep 0.2; done
  cat "$TMP/serve.log" >&2
  exit 1
}
# GetPartnerRequest { id: partner_id } behind gRPC's 5-byte length prefix.
python3 scripts/get_partner_body.py "$partner_id" >"$TMP/get.bin"
grpc_rps() {
  h2load -D "$SECS" -c 8 -m 4 -d "$TMP/get.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "authorization: Bearer $user_key" "http://127.0.0.1:$GRPC/partners.v1.PartnerService/GetPartner" |
    sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p'
}
rest_rps() {
  wrk -t1 -c8 -d"${SECS}s" -H "Authorization: Bearer $user_key" \
    "http://127.0.0.1:$HTTP/api/v1/partners/$partner_id" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p'
}
run() { # $1: on|off, $2: grpc|rest
  if [ "$1" = on ]; then start "127.0.0.1:$METRICS"; else start off; fi
  "$2_rps"
  if [ "$1" = on ]; then
    curl -sf "http://127.0.0.1:$METRICS/metrics" >"$TMP/metrics.txt"
    grep -q '^grpc_server_handled_total' "$TMP/metrics.txt" ||
      { echo "metrics on but nothing recorded" >&2; exit 1; }
  fi
  stop
}
printf '%-6s %5s %12s %12s %8s\n' protocol pair "off req/s" "on req/s" "on/off"
for proto in grpc rest; do
  for pair in $(seq "$PAIRS"); do
    # Alternate which goes first, so drift of the machine does not favour one side.
    if [ $((pair % 2)) = 1 ]; then off=$(run off "$proto"); on=$(run on "$proto");
    else on=$(run on "$proto"); off=$(run off "$proto"); fi
    printf '%-6s %5s %12.0f %12.0f %8.3f\n' "$proto" "$pair" "$off" "$on" "$(python3 -c "print($on/$off)")"
  done
done
