#!/usr/bin/env bash
# The database's own cost of the partner snapshot (migration 14) per partner write: pgbench, one
# client, each transaction one UPDATE of a partner's name (the change-log trigger, the deferred
# sequence at commit, the NOTIFY), with the trigger function of migration 13 (A: no snapshot) and
# of migration 14 (B: the snapshot) installed in turn, in ABBA rounds, each after a VACUUM of the
# written tables. Prints each run's average latency and tps, then the medians.
#
#   bash scripts/events-trigger-cost.sh [DATABASE_URL] [ROUNDS] [SECONDS]
#
# DATABASE_URL: a migrated database with partners 1..100, e.g. the one `loadgen events` leaves
# (postgres://postgres@127.0.0.1/partners_events_bench, the default). Restores migration 14's
# function at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:-postgres://postgres@127.0.0.1/partners_events_bench}
rounds=${2:-4}
secs=${3:-5}
migration=migrations/2026-12-06-000014_partner_event_snapshots
tmp=$(mktemp -d)
trap 'psql -q "$db" -f "$tmp/B.sql" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
function_of() { # the CREATE OR REPLACE FUNCTION partner_changes_from_partners statement of $1
  awk '/CREATE OR REPLACE FUNCTION partner_changes_from_partners/{on=1} on{print} on&&/^    \$\$;/{exit}' "$1"
}
function_of "$migration/down.sql" > "$tmp/A.sql"
function_of "$migration/up.sql" > "$tmp/B.sql"
max=$(psql -qtA "$db" -c "SELECT max(id) FROM partners")
cat > "$tmp/update.sql" <<SQL
\set id random(1, $max)
UPDATE partners SET name = 'Trigger cost ' || random()::text WHERE id = :id;
SQL
declare -A lat tps
for round in $(seq 1 "$rounds"); do
  if (( round % 2 )); then order="A B"; else order="B A"; fi
  for v in $order; do
    psql -q "$db" -f "$tmp/$v.sql"
    psql -q "$db" -c "VACUUM partners, partner_changes, partner_search_state, partner_list_groups"
    out=$(pgbench -n -c 1 -T "$secs" -f "$tmp/update.sql" "$db" 2>/dev/null)
    l=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
    t=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
    lat[$v]="${lat[$v]:-} $l"; tps[$v]="${tps[$v]:-} $t"
    echo "round $round $v: latency $l ms, $t tps"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for v in A B; do
  echo "$v ($([[ $v == A ]] && echo 'no snapshot, migration 13' || echo 'snapshot, migration 14')): median latency $(median <<<"${lat[$v]}") ms, median $(median <<<"${tps[$v]}") tps"
done
