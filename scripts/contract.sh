#!/usr/bin/env bash
# The API contract, checked by tools we did not write, against a live `orch serve`:
#  1. openapi-spec-validator accepts GET /openapi.json;
#  2. schemathesis runs every documented operation, authenticated as admin, with all its checks
#     (server errors, status codes, content types, response schemas and headers, schema-valid
#     data accepted, schema-violating data refused, ...).
# Usage: scripts/contract.sh [path to a built orch]   (scripts/test.sh runs it after swift test)
# The server runs on a temporary SQLite file, or on CONTRACT_DATABASE_URL when set (scripts/test.sh
# runs the check on both backends). At the end the server is stopped with SIGTERM and must exit 0.
# ST_EXAMPLES (default 50) sets the examples per operation, ST_SEED the seed (default fixed, so
# that CI is reproducible; any value explores other inputs), ST_CODECS the string alphabets run
# one after another (default "ascii utf-8": ASCII first, then any Unicode).
set -euo pipefail
cd "$(dirname "$0")/.."
orch=${1:-.build/debug/orch}
examples=${ST_EXAMPLES:-50}
seed=${ST_SEED:-20261127}
codecs=${ST_CODECS:-ascii utf-8}
secret="contract-webhook-secret"

work=$(mktemp -d)
trap '[ -n "${server:-}" ] && kill -9 "$server" 2>/dev/null; rm -rf "$work"' EXIT
ORCH_PORT=0 ORCH_DATABASE_URL="${CONTRACT_DATABASE_URL:-sqlite://$work/contract.sqlite}" ORCH_ADMIN_PASSWORD=contract-admin-password \
  ORCH_RATE_LIMITS="admin=0,operator=0,viewer=0,system=0,anonymous=0" ORCH_WEBHOOK_SECRETS="$secret" \
  ORCH_LOG_LEVEL=error ORCH_BCRYPT_COST=10 ORCH_SSE_HEARTBEAT=1 "$orch" serve >"$work/stdout" 2>"$work/stderr" &
server=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^orch: listening on \(http[^ ]*\)$/\1/p' "$work/stdout" | head -1)
[ -n "$base" ] || { echo "contract: the server did not start"; cat "$work/stderr"; exit 1; }
echo "contract: server at $base"

token=$(python3 - "$base" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/auth/login", method="POST",
    data=json.dumps({"username": "admin", "password": "contract-admin-password"}).encode(),
    headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["access_token"])
PY
)

python3 - "$base" <<'PY'
import json, sys, urllib.request
from openapi_spec_validator import validate
document = json.load(urllib.request.urlopen(sys.argv[1] + "/openapi.json"))
validate(document)
print(f"contract: openapi-spec-validator accepts the document ({len(document['paths'])} paths)")
PY

export SCHEMATHESIS_HOOKS=scripts.contract.hooks ORCH_CONTRACT_WEBHOOK_SECRET="$secret"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
for codec in $codecs; do
  echo "contract: schemathesis with $codec strings"
  python3 -m schemathesis.cli --config-file scripts/contract/schemathesis.toml run "$base/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all --max-examples "$examples" --seed "$seed" \
    --generation-codec "$codec" --request-timeout 10 --workers 1 --no-color
done

# The server stops gracefully on SIGTERM, after all that, and says so with exit status 0.
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=""
[ "$status" -eq 0 ] || { echo "contract: the server exited with $status on SIGTERM"; tail -20 "$work/stderr"; exit 1; }
echo "contract: the server stopped on SIGTERM with status 0"
