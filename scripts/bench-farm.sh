#!/usr/bin/env bash
# Farm deployer benchmark (issue 11): how long a 10 MiB artifact takes to be staged and active
# on 3 nodes, measured as the wall time of `PUT /api/v1/deployments/{name}` (it answers when the
# rollout has ended: active everywhere, or failed). Release build, loopback, 3 `shoal node`
# processes; median of $RUNS deploys, each a new version of the same name.
#
#   cargo build --release -p shoal && scripts/bench-farm.sh
#   SIZE_MIB=50 RUNS=3 scripts/bench-farm.sh
#   P99=1 SIZE_MIB=50 scripts/bench-farm.sh   # also: p99 of replicated /app/counter (wrk, as
#                                             # bench-persistent.sh) without and during deploys:
#                                             # WINDOWS=5 windows of one deploy each, then
#                                             # (BACK_TO_BACK=0 skips) 10 s of back-to-back deploys
#   RATE=0 ...                                # [farm] transfer_rate_mib_s (default: the node's)
#
# Anchor (shared/peers/tomcat/notes.md): Tomcat's FarmWarDeployer, the same 10 MiB dropped into
# its watch directory, served on the three nodes after 15.0, 17.1 and 16.9 s.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SIZE_MIB="${SIZE_MIB:-10}"
RUNS="${RUNS:-5}"
SRC_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SRC_BIN" ] || { echo "no $SRC_BIN: run cargo build --release -p shoal first" >&2; exit 2; }
OUT="$(mktemp -d /tmp/shoal-bench-farm.XXXXXX)"
BIN="$OUT/shoal"
cp "$SRC_BIN" "$BIN"
export SHOAL_ADMIN_TOKEN="bench-farm-token-0123456789abcdef"
BASE=$(( 30000 + RANDOM % 20000 ))
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

members=()
for i in 1 2 3; do members+=(--member "127.0.0.1:$((BASE + i))"); done
for i in 1 2 3; do
  mkdir -p "$OUT/node$i"
  printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "delta"\nreplication = "sync"\n\n[farm]\ndir = "%s"\nmax_upload_bytes = %d\n' \
    "$OUT/node$i/farm" $(( (SIZE_MIB + 1) << 20 )) > "$OUT/node$i/node.toml"
  [ -z "${RATE:-}" ] || echo "transfer_rate_mib_s = $RATE" >> "$OUT/node$i/node.toml"
  (cd "$OUT/node$i" && exec "$BIN" node --worker-threads 1 --name "node$i" --port "$((BASE + i))" "${members[@]}" \
    --http-port "$((BASE + 10 + i))" --admin-port "$((BASE + 20 + i))" --config "$OUT/node$i/node.toml" \
    > "$OUT/node$i/out" 2> "$OUT/node$i/log") &
  PIDS+=($!)
done
ready() { curl -sf -o /dev/null --max-time 1 -H "authorization: Bearer $SHOAL_ADMIN_TOKEN" "http://127.0.0.1:$1/api/v1/ready"; }
deadline=$(( $(date +%s) + 60 ))
for i in 1 2 3; do
  until ready $((BASE + 20 + i)); do
    (( $(date +%s) < deadline )) || { echo "node$i not ready after 60 s: $(tail -3 "$OUT/node$i/log")" >&2; exit 1; }
    sleep 0.2
  done
done
# All three must see each other before a rollout counts them.
until [ "$(curl -s -H "authorization: Bearer $SHOAL_ADMIN_TOKEN" "http://127.0.0.1:$((BASE + 21))/api/v1/cluster/members" | grep -o '"name"' | wc -l)" -ge 3 ]; do
  (( $(date +%s) < deadline )) || { echo "members did not meet within 60 s" >&2; exit 1; }
  sleep 0.2
done
log "3 nodes ready; artifact ${SIZE_MIB} MiB; $RUNS deploys"
head -c $(( SIZE_MIB << 20 )) /dev/urandom > "$OUT/artifact.bin"
times=()
for ((r = 1; r <= RUNS; r++)); do
  # A new version each run (a different byte at the end: new content, full transfer).
  printf '%08d' "$r" | dd of="$OUT/artifact.bin" bs=1 seek=$(( (SIZE_MIB << 20) - 8 )) conv=notrunc status=none
  t0=$(date +%s%N)
  code=$(curl -s -o "$OUT/put-$r.json" -w '%{http_code}' -X PUT -H "authorization: Bearer $SHOAL_ADMIN_TOKEN" \
    -H 'content-type: application/octet-stream' --data-binary @"$OUT/artifact.bin" \
    "http://127.0.0.1:$((BASE + 21))/api/v1/deployments/big.bin?kind=file&version=r$r")
  t1=$(date +%s%N)
  [[ "$code" == 2* ]] || { echo "deploy $r answered $code: $(head -c 400 "$OUT/put-$r.json")" >&2; exit 1; }
  ms=$(( (t1 - t0) / 1000000 ))
  times+=("$ms")
  # Active on every node with this content.
  for i in 1 2 3; do cmp -s "$OUT/artifact.bin" "$OUT/node$i/farm/files/big.bin" || { echo "node$i holds other bytes after deploy $r" >&2; exit 1; }; done
  log "deploy $r: ${ms} ms (upload + transfer to 2 peers + verify + two-phase activation), bytes identical on 3 nodes"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ) git=$(git -C "$HERE" rev-parse --short HEAD 2> /dev/null || echo ?) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
echo "farm deploy of ${SIZE_MIB} MiB, active on 3 nodes: median ${median} ms over $RUNS runs (${times[*]} ms); Tomcat FarmWarDeployer anchor: 15.0-17.1 s"

if [ "${P99:-0}" = 1 ]; then
  command -v wrk > /dev/null || { echo "wrk not found: apt-get install wrk (scripts/prereqs.sh)" >&2; exit 1; }
  LUA="$HERE/../shared/peers/tomcat/lua/session.lua"
  [ -f "$LUA" ] || LUA="$(cd "$HERE/.." && pwd)/shared/peers/tomcat/lua/session.lua"
  [ -f "$LUA" ] || { echo "no session.lua (shared/peers/tomcat/lua)" >&2; exit 1; }
  url="http://127.0.0.1:$((BASE + 11))/app/counter"
  p99() { awk '/ 99%/ {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$1"; }
  rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
  med() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
  deploy_one() { # $1 = version label; prints the PUT's wall time in ms
    # New content each time (the label's hash in the last 8 bytes): a full transfer.
    printf '%s' "$1" | sha256sum | head -c 8 | dd of="$OUT/artifact.bin" bs=1 seek=$(( (SIZE_MIB << 20) - 8 )) conv=notrunc status=none
    local t0 t1 code
    t0=$(date +%s%N)
    code=$(curl -s -o "$OUT/put-$1.json" -w '%{http_code}' -X PUT -H "authorization: Bearer $SHOAL_ADMIN_TOKEN" \
      -H 'content-type: application/octet-stream' --data-binary @"$OUT/artifact.bin" \
      "http://127.0.0.1:$((BASE + 21))/api/v1/deployments/big.bin?kind=file&version=$1")
    t1=$(date +%s%N)
    [[ "$code" == 2* ]] || { echo "deploy $1 answered $code: $(head -c 400 "$OUT/put-$1.json")" >&2; return 1; }
    echo $(( (t1 - t0) / 1000000 ))
  }
  wrk -t2 -c32 -d5s --latency -s "$LUA" "$url" > /dev/null 2>&1 # warm-up
  # The window: one wrk run of WINDOW_S seconds (wrk counts whole seconds) that starts with
  # ONE deploy (the PUT is sent as wrk starts). WINDOW_S = the deploy's median time measured
  # above without load, rounded down (at least 1 s): under load a deploy takes longer, so
  # every request measured is issued while the deploy (upload, transfer to 2 peers, verify,
  # activation) is in flight; windows where the deploy ended first are counted ("short").
  # Each window has a quiet twin of the same length run just before it; WINDOWS pairs,
  # medians reported.
  WINDOWS="${WINDOWS:-5}"
  WINDOW_S=$(( median / 1000 ))
  ((WINDOW_S >= 1)) || WINDOW_S=1
  for ((w = 1; w <= WINDOWS; w++)); do
    wrk -t2 -c32 -d${WINDOW_S}s --latency -s "$LUA" "$url" > "$OUT/wrk-quiet-$w.txt" 2>&1
    wrk -t2 -c32 -d${WINDOW_S}s --latency -s "$LUA" "$url" > "$OUT/wrk-deploy-$w.txt" 2>&1 &
    wp=$!
    dms=$(deploy_one "w$w")
    wait "$wp"
    log "window $w (${WINDOW_S} s): quiet p99 $(p99 "$OUT/wrk-quiet-$w.txt") ms ($(rps "$OUT/wrk-quiet-$w.txt") req/s); one ${SIZE_MIB} MiB deploy (${dms} ms) p99 $(p99 "$OUT/wrk-deploy-$w.txt") ms ($(rps "$OUT/wrk-deploy-$w.txt") req/s)"
    echo "$(p99 "$OUT/wrk-quiet-$w.txt") $(p99 "$OUT/wrk-deploy-$w.txt") $dms" >> "$OUT/window.txt"
  done
  q=$(awk '{print $1}' "$OUT/window.txt" | med)
  d=$(awk '{print $2}' "$OUT/window.txt" | med)
  dd_ms=$(awk '{print $3}' "$OUT/window.txt" | med)
  short=$(awk -v w="$WINDOW_S" '$3 < w * 1000 {n++} END {print n + 0}' "$OUT/window.txt")
  echo "replicated /app/counter (delta sync, 3 nodes, wrk -t2 -c32 on node1), median of $WINDOWS windows of ${WINDOW_S} s: p99 ${q} ms without a deploy, ${d} ms during one ${SIZE_MIB} MiB deploy (deploy median ${dd_ms} ms, $short of $WINDOWS windows short; ratio $(awk -v a="$d" -v b="$q" 'BEGIN {printf "%.2f", a / b}'); target <= 2)"

  if [ "${BACK_TO_BACK:-1}" = 1 ]; then
    # Deploys back to back for 10 s (each a new version: a full transfer to 2 peers).
    for round in 1 2 3; do
      wrk -t2 -c32 -d10s --latency -s "$LUA" "$url" > "$OUT/wrk-quiet10-$round.txt" 2>&1
      wrk -t2 -c32 -d10s --latency -s "$LUA" "$url" > "$OUT/wrk-b2b-$round.txt" 2>&1 &
      wp=$!
      n=0
      while kill -0 "$wp" 2> /dev/null && ((n < 20)); do
        n=$((n + 1))
        deploy_one "b$round-$n" > /dev/null
      done
      wait "$wp"
      log "back to back $round: quiet p99 $(p99 "$OUT/wrk-quiet10-$round.txt") ms ($(rps "$OUT/wrk-quiet10-$round.txt") req/s); during $n deploys of ${SIZE_MIB} MiB p99 $(p99 "$OUT/wrk-b2b-$round.txt") ms ($(rps "$OUT/wrk-b2b-$round.txt") req/s)"
      echo "$(p99 "$OUT/wrk-quiet10-$round.txt") $(p99 "$OUT/wrk-b2b-$round.txt") $n" >> "$OUT/b2b.txt"
    done
    q=$(awk '{print $1}' "$OUT/b2b.txt" | med)
    d=$(awk '{print $2}' "$OUT/b2b.txt" | med)
    echo "back to back, wrk -d10s, median of 3: p99 ${q} ms without a deploy, ${d} ms while ${SIZE_MIB} MiB deploys run back to back ($(awk '{print $3}' "$OUT/b2b.txt" | tr '\n' ' ')per run; ratio $(awk -v a="$d" -v b="$q" 'BEGIN {printf "%.2f", a / b}'))"
  fi
fi
