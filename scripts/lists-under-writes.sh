#!/usr/bin/env bash
# The REST lists of the issue that filed "lists under writes", driven by wrk (a lean driver of its
# own, independent of the load generator): each list quiet, then while an admin client renames
# random partners through the REST API at RATE writes/s; p50/p99 and requests/s, and the ratios.
# With CLICKS=N, the background is N click events/s instead (REST `POST
# /api/v1/partners/{id}/click_event` from h2load: 50 connections opened 20 ms apart, each at N/50
# calls/s, over 400 partners skewed as in the load generator's click scenario); with also
# CLICK_BATCH=M, the same events arrive M a call (`POST /api/v1/partner_click_events/batch`, N/M
# calls/s from one connection), as from a collector that buffers clicks.
#
#   bash scripts/lists-under-writes.sh BINARY [RATE] [SECONDS]
#
# BINARY is a `partners` build (e.g. target/release/partners). Runs on the load generator's data
# (DATABASE_URL, default partners_bench: `cargo run -p loadgen --release -- seed` first), with
# PARTNERS_* settings from the environment (e.g. PARTNERS_SEARCH_INDEX_MAX_PARTNERS=0 for SQL
# alone). Needs wrk (Debian: wrk) and Postgres on 127.0.0.1:5432.
set -euo pipefail
bin=${1:?usage: $0 BINARY [RATE] [SECONDS]}
rate=${2:-20}
secs=${3:-10}
. "$(dirname "$0")/wrk-server.sh"

# Renames random live partners at a fixed rate (open loop) until killed; prints writes and errors.
cat >"$work/writer.py" <<'EOF'
import json, random, signal, sys, time, urllib.request
base, key, rate, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")
done = errors = 0
def stop(*_):
    print(f"writes={done} errors={errors}", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
start = time.monotonic()
while True:
    pid = random.choice(ids)
    body = json.dumps({"data": {"type": "partner", "id": pid,
        "attributes": {"name": f"Renamed {random.choice(['Harbor', 'Supply', 'Atlas'])} {random.randrange(10**6)}"}}}).encode()
    req = urllib.request.Request(f"{base}/api/v1/partners/{pid}", data=body, method="PATCH",
        headers={"authorization": f"Bearer {key}", "content-type": "application/vnd.api+json"})
    try:
        urllib.request.urlopen(req, timeout=5).read(); done += 1
    except Exception:
        errors += 1
    time.sleep(max(0.0, start + (done + errors) / rate - time.monotonic()))
EOF
ids=$(psql "$DATABASE_URL" -Atc "SELECT string_agg(id::text, ',') FROM (SELECT id FROM partners WHERE deleted_at IS NULL ORDER BY random() LIMIT 2000) s")
clicks=${CLICKS:-}
what=writes
if [ -n "$clicks" ]; then
  command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 1; }
  rate=$clicks what=clicks
  click_batch=${CLICK_BATCH:-1}
  psql "$DATABASE_URL" -Atc "SELECT id FROM (
      (SELECT id FROM partners WHERE deleted_at IS NULL AND id <= (SELECT max(id) / 100 FROM partners) ORDER BY random() LIMIT 80)
      UNION ALL (SELECT id FROM partners WHERE deleted_at IS NULL ORDER BY random() LIMIT 320)) s ORDER BY random()" >"$work/click-ids"
  if [ "$click_batch" -gt 1 ]; then
    what="clicks (batches of $click_batch)"
    python3 - "$click_batch" "$work/click-ids" >"$work/click.json" <<'EOF'
import json, sys
n, ids = int(sys.argv[1]), open(sys.argv[2]).read().split()
print(json.dumps({"data": [{"type": "partner_click_events", "attributes": {"event_type": "website"},
    "relationships": {"partner": {"data": {"type": "partner", "id": ids[i % len(ids)]}}}} for i in range(n)]}))
EOF
    echo "http://127.0.0.1:$http/api/v1/partner_click_events/batch" >"$work/click-uris"
    click_args=(-c 1 --rps $((clicks / click_batch)) -n $((clicks / click_batch * (secs + 6))))
  else
    printf '{"data":{"type":"partner_click_events","attributes":{"event_type":"website"}}}' >"$work/click.json"
    sed "s|.*|http://127.0.0.1:$http/api/v1/partners/&/click_event|" "$work/click-ids" >"$work/click-uris"
    click_args=(-c 50 --rps $((clicks / 50)) -r 1 --rate-period 20ms -n $((clicks * (secs + 6))))
  fi
fi
background() { # the writes or the clicks, until killed; prints what it sent
  if [ -z "$clicks" ]; then
    exec python3 "$work/writer.py" "http://127.0.0.1:$http" "$service_key" "$rate" "$ids"
  fi
  h2load --h1 -m 1 -t 1 "${click_args[@]}" \
    -d "$work/click.json" -H "authorization: Bearer $user_key" -H "content-type: application/vnd.api+json" \
    -i "$work/click-uris" >"$work/h2load" 2>&1 &
  local h=$!
  trap 'kill -INT $h 2>/dev/null; wait $h; echo "clicks: $(grep -E "^status codes" "$work/h2load")"; exit 0' TERM
  wait $h
}

printf '%-8s | %-22s | %-22s | %-13s | %s\n' list "quiet p50/p99, req/s" "${rate} ${what}/s p50/p99, req/s" "p99 ratio" "throughput ratio"
for row in "browse|/api/v1/partners?filter%5Bcategories%5D%5B%5D=accounting" \
           "search|/api/v1/partners?filter%5Bcategories%5D%5B%5D=pos&filter%5Bcategories%5D%5B%5D=payments&filter%5Bcountry_codes%5D%5B%5D=DE&search=harbor&include=users,partner_integrations"; do
  name=${row%%|*}; path=${row#*|}
  read -r qp50 qp99 qrps < <(measure "$name" "$path")
  background >"$work/writes" &
  writer=$!
  read -r wp50 wp99 wrps < <(measure "$name" "$path")
  kill -TERM $writer; wait $writer || true
  python3 - "$name" "$(ms "$qp50")" "$(ms "$qp99")" "$qrps" "$(ms "$wp50")" "$(ms "$wp99")" "$wrps" "$(cat "$work/writes")" <<'EOF'
import sys
n, qp50, qp99, qrps, wp50, wp99, wrps, writes = sys.argv[1], *map(float, sys.argv[2:8]), sys.argv[8]
print(f"{n:<8} | {qp50:6.2f}/{qp99:6.2f} ms {qrps:7.0f}/s | {wp50:6.2f}/{wp99:6.2f} ms {wrps:7.0f}/s | {wp99/qp99:6.2f}x      | {wrps/qrps:.2f}x  ({writes})")
EOF
done
kill -TERM $pid; wait $pid || true
grep -E "search index loaded|lists since start" "$work/server.log" | sed 's/^.*Z *//'
