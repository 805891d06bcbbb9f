#!/usr/bin/env bash
# What webhook dispatch costs the directory's writers: partner renames at a steady rate (pgbench,
# RATE per second, each its own transaction and change-log row) against one release server, with
# no webhook endpoint and with one endpoint taking every event (delivered to a local nginx
# answering 204), in ABBA order; prints each run's write latency p50/p99 and the events delivered
# during it (the endpoint is made before an "on" run and deleted after it).
# A fresh demo database plus PARTNERS partners (dropped afterwards).
#
#     cargo build --release && bash scripts/webhook-write-cost.sh [BINARY] [RATE] [SECONDS]
#
# Needs nginx and pgbench (apt-get install nginx postgresql-contrib) and Postgres on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
RATE=${2:-50}
SECS=${3:-15}
PARTNERS=${PARTNERS:-500}
for tool in nginx pgbench; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install nginx postgresql-contrib" >&2; exit 1; }
done
TMP=$(mktemp -d)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RECEIVER=$(free_port)
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP;
  server { listen 127.0.0.1:$RECEIVER; location / { return 204; } }
}
EOF
nginx -c "$TMP/nginx.conf"
DB=partners_webhook_writes_$$
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" || true; PID=; fi; }
cleanup() {
  stop
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  nginx -c "$TMP/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
eval "$("$BIN" seed-demo)"
psql "$DATABASE_URL" -qc "INSERT INTO partners (name, categories, country_codes, status, active)
  SELECT 'Copy ' || g, ARRAY['pos'], ARRAY['DE'], 'available', true FROM generate_series(1, $PARTNERS) g"
max_id=$(psql "$DATABASE_URL" -qAtc "SELECT max(id) FROM partners")
cat >"$TMP/rename.sql" <<EOF
\set id random(1, $max_id)
UPDATE partners SET name = 'Renamed ' || :id || ' ' || random() WHERE id = :id AND deleted_at IS NULL;
EOF
GRPC=$(free_port)
HTTP=$(free_port)
PARTNERS_METRICS_ADDR=off PARTNERS_WEBHOOK_ALLOW_INSECURE_TARGETS=true \
  "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
  --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && break; sleep 0.2; done
endpoint=
create_endpoint() {
  endpoint=$(curl -sf -H "Authorization: Bearer $service_key" -H 'Content-Type: application/json' \
    -d "{\"data\": {\"type\": \"webhook_endpoints\", \"attributes\": {\"url\": \"http://127.0.0.1:$RECEIVER/hooks\"}}}" \
    "http://127.0.0.1:$HTTP/api/v1/webhook_endpoints" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
}
delete_endpoint() {
  if [ -n "$endpoint" ]; then
    curl -sf -X DELETE -H "Authorization: Bearer $service_key" \
      "http://127.0.0.1:$HTTP/api/v1/webhook_endpoints/$endpoint" >/dev/null
    endpoint=
  fi
}
delivered() { psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"; }
run() { # $1: off|on
  delete_endpoint
  if [ "$1" = on ]; then create_endpoint; fi
  local before
  before=$(delivered)
  (cd "$TMP" && rm -f pgbench_log.* && pgbench -n -c 2 -j 1 -R "$RATE" -T "$SECS" -l -f rename.sql "$DATABASE_URL" >/dev/null 2>&1)
  sleep 1
  local after
  after=$(delivered)
  cat "$TMP"/pgbench_log.* | awk '{print $3}' | sort -n | awk -v mode="$1" -v sent=$((after - before)) '
    { v[NR] = $1 } END {
      printf "%-4s %8d %10.2f %10.2f %10d\n", mode, NR, v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000, sent }'
}
printf '%-4s %8s %10s %10s %10s\n' dispatch writes "p50 ms" "p99 ms" delivered
for mode in off on on off; do run "$mode"; done
