#!/usr/bin/env bash
# Deep pages by number (OFFSET) and by page token (keyset), driven by wrk (a lean driver of its
# own): the REST list's page 1, then page PAGE by number, then the same page reached by the token
# of page PAGE-1 (`links.next`); p50/p99, requests/s, and each row's ratio to page 1.
#
#   bash scripts/deep-pages.sh BINARY [PAGE] [SECONDS]
#
# BINARY is a `partners` build (e.g. target/release/partners). Runs on the load generator's data
# (DATABASE_URL, default partners_bench: `cargo run -p loadgen --release -- seed` first). Needs wrk
# (Debian: wrk) and Postgres on 127.0.0.1:5432.
set -euo pipefail
bin=${1:?usage: $0 BINARY [PAGE] [SECONDS]}
page=${2:-2000}
secs=${3:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1/partners_bench}
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc=$(port); http=$(port)
user=$(psql "$DATABASE_URL" -Atc "SELECT uuid FROM users ORDER BY id LIMIT 1")
user_key=$("$bin" keys create --user "$user" 2>/dev/null | tail -1)
RUST_LOG=${RUST_LOG:-warn,partners::serving=info} PARTNERS_METRICS_ADDR=off "$bin" serve --no-migrate \
  --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" 2>"$work/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -fs "127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 1 300); do grep -q "search index loaded" "$work/server.log" && break; sleep 0.2; done

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
next_of() { # path -> the path of its links.next
  curl -fsS -H "authorization: Bearer $user_key" "http://127.0.0.1:$http$1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["links"]["next"])'
}

printf '%-28s | %-8s | %-22s | %s\n' list page "p50/p99, req/s" "p99, req/s vs page 1"
for row in "default order (preferred first)|/api/v1/partners?per_page=25" \
           "by name|/api/v1/partners?per_page=25&sort=name" \
           "newest|/api/v1/partners?per_page=25&sort=-created_at"; do
  name=${row%%|*}; path=${row#*|}
  read -r bp50 bp99 brps < <(measure "$name page 1" "$path")
  read -r np50 np99 nrps < <(measure "$name page $page" "$path&page=$page")
  token_path=$(next_of "$path&page=$((page - 1))")
  read -r tp50 tp99 trps < <(measure "$name token" "$token_path")
  python3 - "$name" "$page" "$(ms "$bp50")" "$(ms "$bp99")" "$brps" "$(ms "$np50")" "$(ms "$np99")" "$nrps" "$(ms "$tp50")" "$(ms "$tp99")" "$trps" <<'PY'
import sys
n, page = sys.argv[1], sys.argv[2]
b50, b99, brps, n50, n99, nrps, t50, t99, trps = map(float, sys.argv[3:12])
print(f"{n:<28} | 1        | {b50:6.2f}/{b99:6.2f} ms {brps:6.0f}/s | 1")
print(f"{'':<28} | {page:<8} | {n50:6.2f}/{n99:6.2f} ms {nrps:6.0f}/s | {n99/b99:.2f}x, {nrps/brps:.2f}x")
print(f"{'':<28} | by token | {t50:6.2f}/{t99:6.2f} ms {trps:6.0f}/s | {t99/b99:.2f}x, {trps/brps:.2f}x")
PY
done
