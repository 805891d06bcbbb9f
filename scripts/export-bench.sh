#!/usr/bin/env bash
# The export's throughput and memory: for each size, grows one fresh database to that many
# partners (SQL with realistic field sizes, the change-log triggers off as the load tools' seed
# does), starts a fresh release server (the lists' copy off, so its memory is the export's and
# the process's own), exports every partner as NDJSON and as CSV with curl through
# GET /api/v1/partners/export (the gateway calls ExportPartners in process, so the gRPC stream is
# measured too), and prints rows, seconds, rows/s, the server's RSS before the exports, its
# largest RSS in the first quarter of each export (VmRSS of /proc/PID/status, sampled every
# 0.2 s) and its peak RSS after it (VmHWM): memory that grew with the rows exported would show as
# a peak well above the first quarter's. The database is dropped afterwards.
#
#     cargo build --release && bash scripts/export-bench.sh [BINARY] [SIZE...]
#
# Default sizes 100000 1000000 (seeding 1M takes about a minute). Needs curl, psql, Postgres on
# 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/partners}
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
DB=partners_export_bench_$$
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB RUST_LOG=warn
TMP=$(mktemp -d)
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; fi; }
cleanup() {
  stop
  psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
now() { date +%s.%N; }

eval "$("$BIN" seed-demo)"
have=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM partners")
printf '%-9s %-7s %9s %8s %9s %11s %16s %10s\n' size format rows seconds rows/s \
  "RSS before" "RSS 1st quarter" "peak RSS"
echo "(RSS in MiB)"
for size in "${SIZES[@]}"; do
  if [ "$size" -gt "$have" ]; then
    psql "$DATABASE_URL" -qc "SET session_replication_role = replica;
      INSERT INTO partners (name, description, email, website_url, categories, country_codes,
                            tags, status, active, external_id, metadata)
      SELECT 'Partner ' || g, repeat('Supplies kitchens and bars across the region. ', 3),
             'sales' || g || '@partner.example', 'https://partner' || g || '.example',
             CASE WHEN g % 3 = 0 THEN ARRAY['pos', 'payments'] ELSE ARRAY['accounting'] END,
             CASE WHEN g % 2 = 0 THEN ARRAY['DE', 'AT'] ELSE ARRAY['GB'] END, ARRAY['export'],
             'available', g % 5 <> 0, 'bench-' || g, jsonb_build_object('tier', g % 4, 'region', 'eu')
      FROM generate_series($have + 1, $size) g;
      SET session_replication_role = DEFAULT; SELECT partners_search_changed();" >/dev/null
    psql "$DATABASE_URL" -qc "VACUUM ANALYZE partners" >/dev/null
    have=$size
  fi
  live=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM partners WHERE deleted_at IS NULL")
  GRPC=$(free_port)
  HTTP=$(free_port)
  PARTNERS_METRICS_ADDR=off PARTNERS_SEARCH_INDEX_MAX_PARTNERS=0 PARTNERS_RATE_LIMIT_PER_SECOND=0 \
    "$BIN" serve --no-migrate --grpc-addr "127.0.0.1:$GRPC" --http-addr "127.0.0.1:$HTTP" \
    --shutdown-delay-ms 0 >"$TMP/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$HTTP/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  before=$(hwm_mib)
  for format in ndjson csv; do
    case $format in
      ndjson) accept=application/x-ndjson ;;
      csv) accept=text/csv ;;
    esac
    (while sleep 0.2; do rss_kib; done) >"$TMP/rss" 2>/dev/null &
    sampler=$!
    start=$(now)
    rows=$(curl -fsS -H "Authorization: Bearer $service_key" -H "Accept: $accept" \
      "http://127.0.0.1:$HTTP/api/v1/partners/export" | wc -l)
    secs=$(echo "$(now) - $start" | bc -l)
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    samples=$(wc -l <"$TMP/rss")
    early=$(head -n $(( (samples + 3) / 4 )) "$TMP/rss" | sort -n | tail -1)
    [ "$format" = csv ] && rows=$((rows - 1)) # the header line
    [ "$rows" -eq "$live" ] || { echo "exported $rows of $live partners" >&2; exit 1; }
    printf '%-9s %-7s %9d %8.2f %9.0f %11s %16.1f %10s\n' "$size" "$format" "$rows" "$secs" \
      "$(echo "$rows / $secs" | bc -l)" "$before" "$(echo "${early:-0} / 1024" | bc -l)" "$(hwm_mib)"
  done
  stop
done
