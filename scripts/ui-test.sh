#!/usr/bin/env bash
# Headless-Chromium test of the admin UI against the dev server (in-memory fake cluster),
# or with SHOAL_UI_CLUSTER=1 against three real in-process nodes (shoal-node's admin_cluster
# example), or against any node at SHOAL_UI_URL (token in SHOAL_UI_TOKEN).
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

URL="${SHOAL_UI_URL:-}"
SHOTS="${SHOAL_UI_SHOTS:-target/ui-screenshots}"
TOKEN="${SHOAL_UI_TOKEN:-$TOKEN}"
if [[ -n "$URL" ]]; then
    echo "ui-test.sh: testing the node at $URL"
elif [[ "${SHOAL_UI_CLUSTER:-}" == "1" ]]; then
    # Real nodes compile what they load and deploy only Wasm components: give them real ones.
    COMPONENTS=plugins/target/components
    export SHOAL_UI_COMPONENT="$COMPONENTS/checksum-interceptor.component.wasm"
    export SHOAL_UI_ARTIFACT="$COMPONENTS/url-filter.component.wasm"
    cargo build --quiet -p shoal-node --example admin_cluster
    # stdin stays open (the example stops at EOF); its first line names node1's admin URL.
    rm -f "$PREFIX/cluster.log"
    mkfifo "$PREFIX/cluster.stdin" 2>/dev/null || true
    target/debug/examples/admin_cluster --admin-token "$TOKEN" < "$PREFIX/cluster.stdin" > "$PREFIX/cluster.log" 2>&1 &
    SERVER=$!
    exec 3> "$PREFIX/cluster.stdin"
    trap 'exec 3>&-; kill "$SERVER" 2>/dev/null || true' EXIT
    for _ in $(seq 1 300); do
        URL=$(sed -n 's/^admin: \(http:[^ ]*\).*/\1/p' "$PREFIX/cluster.log")
        [[ -n "$URL" ]] && break
        kill -0 "$SERVER" 2>/dev/null || { cat "$PREFIX/cluster.log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$URL" ]] || { echo "ui-test.sh: the cluster did not start in 30 s" >&2; exit 1; }
    echo "ui-test.sh: testing a real 3-node cluster at $URL"
    SHOTS="${SHOAL_UI_SHOTS:-target/ui-screenshots/real-cluster}"
else
    cargo build --quiet -p shoal-admin --example dev-server
    target/debug/examples/dev-server --port "$PORT" --admin-token "$TOKEN" > "$PREFIX/dev-server.log" 2>&1 &
    SERVER=$!
    trap 'kill "$SERVER" 2>/dev/null || true' EXIT
    URL="http://127.0.0.1:$PORT"
    for _ in $(seq 1 100); do
        curl -fsS "$URL/api/v1/health" -o /dev/null 2>/dev/null && break
        sleep 0.1
    done
fi

PW_PREFIX="$PWD/$PREFIX" SHOAL_UI_URL="$URL" SHOAL_UI_TOKEN="$TOKEN" \
SHOAL_UI_SHOTS="$SHOTS" CHROMIUM="$CHROMIUM" \
    node admin-ui/tests/ui.spec.mjs
