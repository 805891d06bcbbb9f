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
. "$(dirname "$0")/wrk-server.sh"
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
