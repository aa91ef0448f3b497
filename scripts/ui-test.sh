#!/usr/bin/env bash
# Headless-Chromium test of the admin UI against the dev server (in-memory fake cluster).
# Needs Debian's chromium (apt-get install chromium) and playwright-core from npm (installed
# here into target/ui-test). Screenshots go to target/ui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${SHOAL_UI_PORT:-19395}"
TOKEN="ui-admin-token-0123456789"
PREFIX=target/ui-test
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "${CI:-}" == "true" || "$(id -u)" == "0" ]]; then
        apt-get install -y -qq chromium >/dev/null || true
    fi
fi
if [[ ! -x "$CHROMIUM" ]]; then
    echo "ui-test.sh: SKIPPED: no Chromium at $CHROMIUM (apt-get install chromium)" >&2
    exit 0
fi
if [[ ! -d "$PREFIX/node_modules/playwright-core" ]]; then
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-audit --no-fund --silent playwright-core@1.65.1 \
        || { echo "ui-test.sh: npm could not install playwright-core" >&2; exit 1; }
fi

cargo build --quiet -p shoal-admin --example dev-server
target/debug/examples/dev-server --port "$PORT" --admin-token "$TOKEN" > "$PREFIX/dev-server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/api/v1/health" -o /dev/null 2>/dev/null && break
    sleep 0.1
done

PW_PREFIX="$PWD/$PREFIX" SHOAL_UI_URL="http://127.0.0.1:$PORT" SHOAL_UI_TOKEN="$TOKEN" \
SHOAL_UI_SHOTS=target/ui-screenshots CHROMIUM="$CHROMIUM" \
    node admin-ui/tests/ui.spec.mjs
