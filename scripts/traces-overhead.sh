#!/usr/bin/env bash
# The cost of the OpenTelemetry traces: GetPartner throughput with traces off (no
# OTEL_EXPORTER_OTLP_ENDPOINT, the default) and on (every call sampled and exported over OTLP/gRPC
# to scripts/otlp_sink.py), in alternating pairs, over gRPC (h2load, 8 connections x 4 streams)
# and REST (wrk, 8 connections). Each run is a fresh process on a demo database of the Postgres at
# 127.0.0.1:5432 (dropped afterwards); metrics off in both.
#
#     cargo build --release && bash scripts/traces-overhead.sh [BINARY] [PAIRS] [SECONDS]
#
# SAMPLER and SAMPLER_ARG set the sampler of the "on" runs (default always_on; e.g.
# SAMPLER=traceidratio SAMPLER_ARG=0.1 samples one call in ten).
#
# Needs h2load and wrk (apt-get install nghttp2-client wrk), and the PyPI packages grpcio and
# opentelemetry-proto for the sink.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
PAIRS=${2:-3}
SECS=${3:-8}
for tool in h2load wrk; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install nghttp2-client wrk" >&2; exit 1; }
done
python3 -c 'import grpc, opentelemetry.proto' 2>/dev/null ||
  { echo "pip install grpcio opentelemetry-proto" >&2; exit 1; }
DB=partners_traces_$$
TMP=$(mktemp -d)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn PARTNERS_RATE_LIMIT_PER_SECOND=0
eval "$("$BIN" seed-demo)"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GRPC=$(free_port)
HTTP=$(free_port)
SINK=$(free_port)
python3 scripts/otlp_sink.py "$SINK" >"$TMP/sink.out" &
SINK_PID=$!
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" || true; PID=; fi; }
cleanup() {
  stop
  kill "$SINK_PID" 2>/dev/null || true
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  rm -rf "$TMP"
}
trap cleanup EXIT
start() { # $1: on|off
  if [ "$1" = on ]; then
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK" OTEL_TRACES_SAMPLER="${SAMPLER:-always_on}" \
      OTEL_TRACES_SAMPLER_ARG="${SAMPLER_ARG:-1.0}" \
      "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
      --metrics-addr off --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
  else
    "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
      --metrics-addr off --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
  fi
  PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && return; sleep 0.2; done
  cat "$TMP/serve.log" >&2
  exit 1
}
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
  start "$1"
  "$2_rps"
  stop
}
printf '%-6s %5s %12s %12s %8s\n' protocol pair "off req/s" "on req/s" "on/off"
for proto in grpc rest; do
  for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then off=$(run off "$proto"); on=$(run on "$proto");
    else on=$(run on "$proto"); off=$(run off "$proto"); fi
    printf '%-6s %5s %12.0f %12.0f %8.3f\n' "$proto" "$pair" "$off" "$on" "$(python3 -c "print($on/$off)")"
  done
done
kill "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
spans=$(tail -n 1 "$TMP/sink.out")
echo "spans received by the sink: $spans"
[ "${spans:-0}" -gt 0 ] || { echo "traces on but no span exported" >&2; exit 1; }
