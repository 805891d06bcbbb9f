#!/usr/bin/env bash
# Three `partners serve` replicas on one Postgres behind HAProxy (Debian's `haproxy`): REST on
# one frontend, gRPC (h2c) on another, health checks on each replica's `/readyz`. The replicas
# start at the same moment (migrations run once, under the advisory lock). The balancer's
# configuration is scripts/replicas-haproxy.cfg.in, the same the test `replicas::` uses.
#
#   bash scripts/replicas.sh                 # until Ctrl-C
#   ROUNDS=2 bash scripts/replicas.sh        # then a rolling restart, twice, while you load it
#
# Settings (environment): DATABASE_URL (default postgres://postgres@127.0.0.1:5432/partners),
# PARTNERS_BIN (default: `cargo build --release`, then target/release/partners), REST_PORT (8080)
# and GRPC_PORT (50051) of HAProxy, replicas on 18081-18083 (REST), 50061-50063 (gRPC) and 9465-9467 (metrics),
# PARTNERS_SHUTDOWN_DELAY_MS (the service's default, 5000), CHECK_INTER_MS (500), ROUNDS (0).
# Logs and the generated haproxy.cfg go to a temporary directory, printed at the start.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v haproxy >/dev/null 2>&1 || { echo "haproxy is missing: apt-get install haproxy" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "curl is missing: apt-get install curl" >&2; exit 1; }

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/partners}
REST_PORT=${REST_PORT:-8080}
GRPC_PORT=${GRPC_PORT:-50051}
CHECK_INTER_MS=${CHECK_INTER_MS:-500}
ROUNDS=${ROUNDS:-0}
if [ -z "${PARTNERS_BIN:-}" ]; then
  cargo build --release -q
  PARTNERS_BIN=target/release/partners
fi

DIR=$(mktemp -d /tmp/partners-replicas.XXXXXX)
declare -a PIDS
HAPROXY_PID=

http_port() { echo $((18080 + $1)); }
grpc_port() { echo $((50060 + $1)); }
metrics_port() { echo $((9464 + $1)); }

start_replica() {
  "$PARTNERS_BIN" serve --grpc-addr "127.0.0.1:$(grpc_port "$1")" \
    --http-addr "127.0.0.1:$(http_port "$1")" --metrics-addr "127.0.0.1:$(metrics_port "$1")" \
    >>"$DIR/r$1.log" 2>&1 &
  PIDS[$1]=$!
}

wait_ready() {
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$(http_port "$1")/readyz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "replica $1 did not become ready; see $DIR/r$1.log" >&2
  return 1
}

stop_all() {
  for i in 1 2 3; do [ -n "${PIDS[$i]:-}" ] && kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  [ -n "$HAPROXY_PID" ] && kill -TERM "$HAPROXY_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

# All three at the same moment.
for i in 1 2 3; do start_replica "$i"; done
for i in 1 2 3; do wait_ready "$i"; done

sed -e "s#@DIR@#$DIR#; s/@CHECK_INTER_MS@/$CHECK_INTER_MS/; s/@REST_PORT@/$REST_PORT/" \
  -e "s/@GRPC_PORT@/$GRPC_PORT/" \
  -e "s/@R1_HTTP@/$(http_port 1)/g; s/@R2_HTTP@/$(http_port 2)/g; s/@R3_HTTP@/$(http_port 3)/g" \
  -e "s/@R1_GRPC@/$(grpc_port 1)/g; s/@R2_GRPC@/$(grpc_port 2)/g; s/@R3_GRPC@/$(grpc_port 3)/g" \
  scripts/replicas-haproxy.cfg.in >"$DIR/haproxy.cfg"
haproxy -db -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1 &
HAPROXY_PID=$!
# Two passed checks bring a replica in.
sleep "$(awk "BEGIN {print 3 * $CHECK_INTER_MS / 1000}")"

cat <<EOF
HAProxy: REST http://127.0.0.1:$REST_PORT  gRPC (h2c) 127.0.0.1:$GRPC_PORT
replicas: REST $(http_port 1) $(http_port 2) $(http_port 3), gRPC $(grpc_port 1) $(grpc_port 2) $(grpc_port 3)
pids: ${PIDS[1]} ${PIDS[2]} ${PIDS[3]} (kill -TERM one for a restart by hand), haproxy $HAPROXY_PID
logs and haproxy.cfg: $DIR
EOF

for round in $(seq 1 "$ROUNDS"); do
  for i in 1 2 3; do
    echo "round $round: restarting replica $i"
    kill -TERM "${PIDS[$i]}"
    wait "${PIDS[$i]}" || echo "replica $i exited with status $?" >&2
    start_replica "$i"
    wait_ready "$i"
    sleep "$(awk "BEGIN {print 3 * $CHECK_INTER_MS / 1000}")"
  done
done
[ "$ROUNDS" -gt 0 ] && echo "rolling restarts done"
echo "Ctrl-C stops the replicas and HAProxy"
wait "$HAPROXY_PID"
