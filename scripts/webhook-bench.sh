#!/usr/bin/env bash
# Webhook delivery throughput: how many events per second one `partners serve` delivers to a local
# receiver (nginx answering 204, so the receiver is not the limit), and the server's CPU per event.
# The demo data plus PARTNERS more partners (copies); the events are made in bulk by SQL (each
# `UPDATE partners SET name = ...` logs one change per partner), ROUNDS statements in a row; the
# clock runs from the first commit until every delivery is `delivered`. Each run is a fresh
# database (dropped afterwards).
#
#     cargo build --release && bash scripts/webhook-bench.sh [BINARY] [ROUNDS] [RUNS] [PARTNERS]
#
# Needs nginx (apt-get install nginx) and Postgres on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
ROUNDS=${2:-100}
RUNS=${3:-3}
PARTNERS=${4:-500}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install nginx" >&2; exit 1; }
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
PID=
DB=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" || true; PID=; fi; }
cleanup() {
  stop
  [ -n "$DB" ] && psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  nginx -c "$TMP/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
printf '%-4s %8s %10s %12s %14s\n' run events seconds "events/s" "CPU µs/event"
for run in $(seq "$RUNS"); do
  DB=partners_webhooks_$$_$run
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn
  eval "$("$BIN" seed-demo)"
  psql "$DATABASE_URL" -qc "INSERT INTO partners (name, categories, country_codes, status, active)
    SELECT 'Copy ' || g, ARRAY['pos'], ARRAY['DE'], 'available', true FROM generate_series(1, $PARTNERS) g"
  GRPC=$(free_port)
  HTTP=$(free_port)
  PARTNERS_METRICS_ADDR=off PARTNERS_WEBHOOK_ALLOW_INSECURE_TARGETS=true \
    "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
    --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf -H "Authorization: Bearer $service_key" -H 'Content-Type: application/json' \
    -d "{\"data\": {\"type\": \"webhook_endpoints\", \"attributes\": {\"url\": \"http://127.0.0.1:$RECEIVER/hooks\"}}}" \
    "http://127.0.0.1:$HTTP/api/v1/webhook_endpoints" >/dev/null
  partners=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM partners WHERE deleted_at IS NULL")
  events=$((partners * ROUNDS))
  ticks_before=$(cpu_ticks "$PID")
  start=$(date +%s.%N)
  for round in $(seq "$ROUNDS"); do
    echo "UPDATE partners SET name = regexp_replace(name, ' #[0-9]+$', '') || ' #$round' WHERE deleted_at IS NULL;"
  done | psql "$DATABASE_URL" -q >/dev/null
  while [ "$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")" -lt "$events" ]; do
    sleep 0.05
  done
  end=$(date +%s.%N)
  ticks=$(($(cpu_ticks "$PID") - ticks_before))
  hz=$(getconf CLK_TCK)
  python3 - "$run" "$events" "$start" "$end" "$ticks" "$hz" <<'EOF'
import sys
run, events, start, end, ticks, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
secs = end - start
print(f"{run:<4} {events:>8} {secs:>10.2f} {events / secs:>12.0f} {ticks / hz / events * 1e6:>14.0f}")
EOF
  stop
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  DB=
done
