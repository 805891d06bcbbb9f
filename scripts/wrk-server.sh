# Sourced by the wrk scripts (lists-under-writes.sh, deep-pages.sh): starts `$bin serve` on the
# load generator's data (DATABASE_URL, default partners_bench) with PARTNERS_* settings from the
# environment, waits for it to be ready and for the lists' copy to load (unless it is off), and
# defines `measure NAME PATH` (wrk, 8 connections, 2 s warm-up then $secs s: "p50 p99 req/s";
# any non-2xx answer stops the script) and `ms VALUE` (wrk's latency in ms). Sets $work, $http,
# $user_key (a key of the data's first user) and $service_key; stops the server on exit.
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1/partners_bench}
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc=$(port); http=$(port)
user=$(psql "$DATABASE_URL" -Atc "SELECT uuid FROM users ORDER BY id LIMIT 1")
service_key=$("$bin" keys create --service wrk-scripts 2>/dev/null | tail -1)
user_key=$("$bin" keys create --user "$user" 2>/dev/null | tail -1)
RUST_LOG=${RUST_LOG:-warn,partners::serving=info} PARTNERS_METRICS_ADDR=off "$bin" serve --no-migrate \
  --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" 2>"$work/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -fs "127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "${PARTNERS_SEARCH_INDEX_MAX_PARTNERS:-1}" != 0 ]; then # the copy's first load
  for _ in $(seq 1 300); do grep -q "search index loaded" "$work/server.log" && break; sleep 0.2; done
fi

measure() { # name path -> "p50 p99 rps" (after a 2 s warm-up)
  wrk -t2 -c8 -d2s -H "authorization: Bearer $user_key" "http://127.0.0.1:$http$2" >/dev/null 2>&1
  wrk -t2 -c8 -d"${secs}s" --latency -H "authorization: Bearer $user_key" "http://127.0.0.1:$http$2" >"$work/wrk" 2>&1
  local p50 p99 rps non2xx
  p50=$(awk '/^ +50%/{print $2}' "$work/wrk"); p99=$(awk '/^ +99%/{print $2}' "$work/wrk")
  rps=$(awk '/^Requests\/sec/{print $2}' "$work/wrk")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$work/wrk"); [ -z "$non2xx" ] || { echo "$1: $non2xx non-2xx answers" >&2; exit 1; }
  echo "$p50 $p99 $rps"
}
ms() { python3 -c "import sys; v=sys.argv[1]; print(float(v[:-2]) if v.endswith('ms') else float(v[:-1])*1000 if v.endswith('s') else float(v[:-2])/1000)" "$1"; }
