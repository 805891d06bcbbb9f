#!/usr/bin/env bash
# Runs schemathesis with all checks against the REST gateway's /api/v1/openapi.json, on a freshly
# seeded server: user-key operations first, then the admin operations and the event feed with a
# service key.
# Exits non-zero on any failure. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v schemathesis >/dev/null 2>&1 || pip install -q schemathesis
cargo build -q --bin partners

db=partners_schemathesis
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
psql "postgres://postgres@127.0.0.1:5432/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
eval "$(./target/debug/partners seed-demo)"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port=$(port)
http_port=$(port)
PARTNERS_RATE_LIMIT_PER_SECOND=0 PARTNERS_METRICS_ADDR=off RUST_LOG=warn ./target/debug/partners serve \
  --grpc-addr "127.0.0.1:$grpc_port" --http-addr "127.0.0.1:$http_port" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

spec="http://127.0.0.1:$http_port/api/v1/openapi.json"
# Service keys only: the admin writes, the change events' feed and the webhooks.
admin='^(POST /api/v1/partners|POST /api/v1/partners/batch_(update|modify)|GET /api/v1/partners/export|PATCH /api/v1/partners/\{id\}|DELETE /api/v1/partners/\{id\}|POST /api/v1/partners/\{id\}/restore|PUT /api/v1/partners/by_external_id/\{external_id\}|GET /api/v1/partner_events|[A-Z]+ /api/v1/webhook_endpoints.*)$'
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
# One worker: Python 3.11's ast module keeps its recursion depth in state shared by threads
# (CPython gh-106905), and hypothesis parses lambdas while generating, so two workers can fail
# with "SystemError: AST constructor recursion depth mismatch", which is not a finding.
common=(--checks all --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" --seed "${SCHEMATHESIS_SEED:-20261121}" --generation-deterministic --workers 1)

echo "== schemathesis: user key, directory operations"
schemathesis run "$spec" "${common[@]}" -H "Authorization: Bearer $user_key" --exclude-name-regex "$admin"
echo "== schemathesis: service key, admin operations and the event feed"
schemathesis run "$spec" "${common[@]}" -H "Authorization: Bearer $service_key" --include-name-regex "$admin"
