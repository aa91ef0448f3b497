#!/usr/bin/env bash
# The five-minute path of plugins/README.md, followed literally on a 3-node `shoal demo`:
# `shoal plugin new valve hello` -> build -> test -> `shoal ctl plugins load`, the header seen
# on every node; then src/lib.rs changed, built again and loaded with --replace: the new header
# on every node, no restart, the session kept. Prints the tool time (new + build + test +
# load, from an empty directory), the figure plugins/README.md promises (target <= 60 s).
#
# SHOAL_BIN: the shoal binary (default: target/release/shoal if built, else target/debug/shoal).
# PLUGIN_PATH_PORT: first of 12 consecutive ports used (default 24100).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SHOAL_BIN:-}"
if [ -z "$bin" ]; then
  bin="$repo/target/debug/shoal"
  [ -x "$repo/target/release/shoal" ] && [ "$repo/target/release/shoal" -nt "$bin" ] && bin="$repo/target/release/shoal"
fi
[ -x "$bin" ] || { echo "plugin-path: no shoal binary at $bin (build it, or set SHOAL_BIN)" >&2; exit 1; }
# Absolute, so the symlink below resolves (CI passes SHOAL_BIN relative to the repository).
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
# `shoal` in the commands below is this binary, as for a user who installed it.
work="$(mktemp -d)"
mkdir -p "$work/bin" && ln -s "$bin" "$work/bin/shoal"
export PATH="$work/bin:$PATH"
port="${PLUGIN_PATH_PORT:-24100}"
base=$port http=$((port + 3)) admin=$((port + 6)) front=$((port + 9))
export SHOAL_ADMIN_TOKEN="plugin-path-$RANDOM-$RANDOM-token"
export SHOAL_ADMIN_URL="http://127.0.0.1:$admin"
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "plugin-path: FAILED: $*" >&2; exit 1; }

shoal demo --base-port "$base" --http-port "$http" --admin-port "$admin" \
  --balancer-port "$front" --for 600 >"$work/demo.log" 2>&1 &
demo_pid=$!
# Ready when every node's bench app answers (deadline 60 s).
for i in 0 1 2; do
  ok=""
  for _ in $(seq 600); do
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$((http + i))/app/stats"; then ok=1; break; fi
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.log" >&2; fail "shoal demo exited"; }
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$work/demo.log" >&2; fail "node$((i + 1)) did not answer within 60 s"; }
done

tool=0
# Runs a command of the README, adding its wall time to the tool time.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
step() {
  local t0 dt
  t0=$(ms)
  "$@" >"$work/step.out" 2>&1 || { cat "$work/step.out" >&2; fail "$*"; }
  dt=$(( $(ms) - t0 ))
  tool=$(( tool + dt ))
  printf '  %6s s  %s\n' "$(secs $dt)" "$*"
}
# x-hello on every node (in any case: the node writes X-Hello), and the session's counter going on (sessions kept).
every_node() {
  local want=$1 i h
  for i in 0 1 2; do
    h=$(curl -s -D - -o /dev/null -b "$work/jar" -c "$work/jar" "http://127.0.0.1:$((http + i))/app/counter" | tr -d '\r' | grep -i '^x-hello:' | sed 's/^x-hello:/x-hello:/I' || true)
    [ "$h" = "x-hello: $want from node$((i + 1))" ] || fail "node$((i + 1)) answered [$h], expected x-hello: $want from node$((i + 1))"
  done
}

cd "$work"
echo "plugin-path: the five-minute path of plugins/README.md on 3 nodes ($bin)"
step shoal plugin new valve hello
cd hello
step shoal plugin build
step shoal plugin test --request 'GET /app/counter'
grep -q 'response header x-hello: hello from node1' "$work/step.out" || { cat "$work/step.out"; fail "plugin test did not show the header"; }
step shoal ctl plugins load target/hello.component.wasm --name hello --world valve --attach app
grep -q '^warning' "$work/step.out" && { cat "$work/step.out"; fail "load warned"; }
every_node hello
first=$tool
counter_before=$(curl -s -b "$work/jar" -c "$work/jar" "http://127.0.0.1:$http/app/counter" | sed -n 's/^counter=\([0-9]*\).*/\1/p')
sed -i 's/"hello".into()/"hi".into()/' src/lib.rs
step shoal plugin build
step shoal ctl plugins load target/hello.component.wasm --name hello --world valve --attach app --replace
every_node hi
counter_after=$(curl -s -b "$work/jar" -c "$work/jar" "http://127.0.0.1:$((http + 1))/app/counter" | sed -n 's/^counter=\([0-9]*\).*/\1/p')
[ -n "$counter_before" ] && [ "$counter_after" -gt "$counter_before" ] || fail "the session's counter went from [$counter_before] to [$counter_after]: session lost?"
kill -0 "$demo_pid" || fail "the demo stopped"
shoal ctl plugins list | grep -E '^(NAME|hello)'
echo "plugin-path: OK. tool time from an empty directory to every node: $(secs $first) s (target <= 60 s); with the change and --replace: $(secs $tool) s"
