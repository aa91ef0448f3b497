#!/usr/bin/env bash
# Fuzzes the admin API against its own OpenAPI document with schemathesis (PyPI): every
# operation, all checks (no 5xx, responses match the schema, auth enforced, invalid input
# rejected). Serves the in-memory fake cluster (shoal-admin's dev-server example) on a
# loopback port, installs schemathesis into a venv under target/, exits non-zero on any
# failure. Usage: scripts/schemathesis.sh [--max-examples N] [extra schemathesis args]
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${SHOAL_ST_PORT:-19391}"
TOKEN="st-admin-token-0123456789"
VENV=target/schemathesis/venv
MAX_EXAMPLES=30
if [[ "${1:-}" == "--max-examples" ]]; then MAX_EXAMPLES="$2"; shift 2; fi

# A venv whose interpreter path went stale (the target dir was moved or copied) cannot run:
# make it again.
if [[ -e "$VENV" ]] && ! "$VENV/bin/schemathesis" --version > /dev/null 2>&1; then
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    python3 -m venv "$VENV" || { echo "schemathesis.sh: python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
    "$VENV/bin/pip" install --quiet "schemathesis>=4.32,<5" \
        || { echo "schemathesis.sh: pip could not install schemathesis from PyPI" >&2; exit 1; }
fi

cargo build --quiet -p shoal-admin --example dev-server
target/debug/examples/dev-server --port "$PORT" --admin-token "$TOKEN" --quiet \
    > target/schemathesis/dev-server.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT

SPEC="http://127.0.0.1:$PORT/api/openapi.json"
for _ in $(seq 1 100); do
    curl -fsS "$SPEC" -o /dev/null 2>/dev/null && break
    sleep 0.1
done
curl -fsS "$SPEC" -o /dev/null || { echo "schemathesis.sh: dev-server did not start, see target/schemathesis/dev-server.log" >&2; exit 1; }

# /api/v1/events is an endless SSE stream: a fuzzer would only time out on it; the router
# tests cover it.
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$SPEC" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --exclude-path /api/v1/events \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 5 \
    --seed 1 \
    --report junit --report-dir target/schemathesis \
    "$@"
