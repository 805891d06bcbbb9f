#!/usr/bin/env bash
# A normal gRPC caller's GetPartner latency measured with h2load (1 connection, 1 stream, 10 s)
# before, during and after an HTTP/2 rapid-reset burst (scripts/rapid_reset.py) on the same port.
# Starts BINARY (default target/release/partners) on a fresh database of the Postgres at
# 127.0.0.1:5432 (dropped afterwards). Needs h2load: apt-get install nghttp2-client.
#
#     cargo build --release && bash scripts/rapid-reset-h2load.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
DB=partners_h2load_$$
TMP=$(mktemp -d)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn PARTNERS_RATE_LIMIT_PER_SECOND=0
eval "$("$BIN" seed-demo)"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GRPC=$(free_port)
HTTP=$(free_port)
"$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" >"$TMP/serve.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" || true
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  rm -rf "$TMP"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && break; sleep 0.2; done
# One gRPC message: GetPartnerRequest { id: partner_id } behind the 5-byte length prefix.
python3 scripts/get_partner_body.py "$partner_id" >"$TMP/get.bin"
caller() {
  h2load -D 10 -c 1 -m 1 -d "$TMP/get.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "authorization: Bearer $user_key" "http://127.0.0.1:$GRPC/partners.v1.PartnerService/GetPartner" |
    grep -E "finished in|requests:|time for request"
}
echo "== a normal caller alone"
caller
echo "== the same caller during a rapid-reset burst"
python3 scripts/rapid_reset.py 127.0.0.1 "$GRPC" "$service_key" 11 100 &
ATTACKER=$!
sleep 0.5
caller
wait "$ATTACKER"
echo "== the same caller after the burst"
caller
