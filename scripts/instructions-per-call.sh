#!/usr/bin/env bash
# Instructions the server executes per call, counted by valgrind's callgrind (repeatable whatever
# else the machine does): the server runs under callgrind on a demo database while h2load sends the
# same call N1 and then N2 times, one at a time; the difference of the totals over N2 - N1.
#
#   bash scripts/instructions-per-call.sh BINARY [get|health|click] [N1 N2]
#
# BINARY is a `partners` build (e.g. target/release/partners, or another commit's, for a pair).
# Needs valgrind and h2load (Debian: valgrind, nghttp2-client) and Postgres on 127.0.0.1:5432.
set -euo pipefail
bin=${1:?usage: $0 BINARY [get|health|click] [N1 N2]}
call=${2:-get}
n1=${3:-100}
n2=${4:-600}
for tool in valgrind h2load; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install valgrind nghttp2-client" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1/partners_instructions}
eval "$("$bin" seed-demo 2>/dev/null)"
case $call in
  # gRPC frames: a zero flag byte, the length, then the message (field 1 = partner id 1, field 2 =
  # website).
  get) path=/partners.v1.PartnerService/GetPartner; printf '\x00\x00\x00\x00\x02\x08\x01' > "$work/body" ;;
  click) path=/partners.v1.PartnerService/CreatePartnerClickEvent; printf '\x00\x00\x00\x00\x04\x08\x01\x10\x01' > "$work/body" ;;
  health) path=/grpc.health.v1.Health/Check; printf '\x00\x00\x00\x00\x00' > "$work/body" ;;
  *) echo "unknown call $call" >&2; exit 2 ;;
esac
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
total() {
  local n=$1 grpc http pid
  grpc=$(port); http=$(port)
  RUST_LOG=info valgrind --tool=callgrind --callgrind-out-file="$work/out.$n" "$bin" serve --no-migrate \
    --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 600); do curl -fs "127.0.0.1:$http/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  h2load -n "$n" -c 1 -m 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "authorization: Bearer $user_key" -d "$work/body" "http://127.0.0.1:$grpc$path" >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
  grep -m1 '^summary:' "$work/out.$n" | awk '{print $2}'
}
a=$(total "$n1"); b=$(total "$n2")
echo "$path: $(( (b - a) / (n2 - n1) )) instructions per call ($bin; N=$n1: $a, N=$n2: $b)"
