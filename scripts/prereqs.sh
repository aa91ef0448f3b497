# Sourced by scripts/*.sh: installs what shoal's build and tests need on a fresh machine.
# Idempotent and quiet when everything is present.
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "prereqs: adding rustup target wasm32-unknown-unknown (plugins are built from source)"
  rustup target add wasm32-unknown-unknown || {
    echo "prereqs: could not add wasm32-unknown-unknown; install it with 'rustup target add wasm32-unknown-unknown'" >&2
    return 1
  }
fi
# haproxy (server/balancer/tests/haproxy.rs runs deploy/haproxy/haproxy.cfg) and wrk (the
# balancer bench). Installed only when root with apt-get; otherwise those tests fail saying so.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  command -v haproxy >/dev/null || { echo "prereqs: installing haproxy"; apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
  command -v wrk >/dev/null || { echo "prereqs: installing wrk"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  # Debian's Chromium for the admin UI test (scripts/ui-test.sh drives it with playwright-core).
  [ -x /usr/bin/chromium ] || { echo "prereqs: installing chromium"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  # Real database servers for shoal-store's tests (server/store/tests/servers.rs starts
  # each on loopback in a temp dir; a missing one fails those tests, it is never skipped).
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "prereqs: installing postgresql"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
  command -v mariadbd >/dev/null || { echo "prereqs: installing mariadb-server"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null; }
  command -v redis-server >/dev/null || { echo "prereqs: installing redis-server"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
  # nftables: the fault tests cut links between nodes in network namespaces (tests/src/netns.rs).
  command -v nft >/dev/null || { echo "prereqs: installing nftables"; apt-get update -qq && apt-get install -y -qq nftables >/dev/null; }
  # python3-venv for schemathesis (scripts/schemathesis.sh).
  python3 -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; }
fi
# componentize-py: verifies the Python route of plugins (server/plugin-host/tests/python.rs).
# Without it that test fails, saying how to install it.
if command -v python3 >/dev/null && ! command -v componentize-py >/dev/null; then
  echo "prereqs: installing componentize-py (Python plugins)"
  python3 -m pip install --quiet componentize-py==0.25.1 >/dev/null 2>&1 \
    || echo "prereqs: could not install componentize-py; the Python plugin test will fail" >&2
fi
