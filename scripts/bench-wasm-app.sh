#!/usr/bin/env bash
# /app/counter served by the Wasm bench app vs the native bench app, on the same 3-node
# cluster (release build, DeltaManager, synchronous replication).
#
# The nodes serve two contexts: /native (the native bench app) and /wasm (the Wasm bench
# app, a valve plugin that answers every request of its context before the native app
# behind it). wrk runs against node1, one session per connection
# (/work/shared/peers/tomcat/lua/session.lua), alternating native and Wasm runs; prints
# each run and the medians.
#
#   scripts/bench-wasm-app.sh            # builds `shoal` in release first
#   SKIP_BUILD=1 RUNS=3 DURATION=10 scripts/bench-wasm-app.sh
#
# Env: SHOAL (binary, default target/release/shoal), RUNS (3), DURATION (s, 10),
# THREADS (2), CONNECTIONS (32), BASE_PORT (19100: receivers BASE..+2, HTTP BASE+10..+12),
# LUA (session script), HOLD (keep the cluster up at the end until enter is pressed).
set -euo pipefail
# Worker threads per node: the 3 nodes share this machine's cores (as `shoal demo` does).
WORKERS="${WORKERS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"
cd "$(dirname "$0")/.."

SHOAL=${SHOAL:-target/release/shoal}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
BASE_PORT=${BASE_PORT:-19100}
LUA=${LUA:-/work/shared/peers/tomcat/lua/session.lua}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -f "$LUA" ] || { echo "missing wrk script $LUA (set LUA=...)" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p shoal
fi
[ -x "$SHOAL" ] || { echo "no binary at $SHOAL (build it or set SHOAL=...)" >&2; exit 1; }

dir=$(mktemp -d /tmp/shoal-bench-wasm.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/node.toml" <<'EOF'
[http]
bind = "127.0.0.1"

[[http.contexts]]
path = "/native"
app = "bench"
[http.contexts.session]
manager = "delta"
replication = "sync"

[[http.contexts]]
path = "/wasm"
app = "bench"
[http.contexts.session]
manager = "delta"
replication = "sync"

[[plugin]]
name = "bench-app"
path = "example:bench-app"
contexts = ["/wasm"]
[plugin.config]
context = "/wasm"
EOF

members=()
for i in 0 1 2; do members+=(--member "127.0.0.1:$((BASE_PORT + i))"); done
export SHOAL_CLUSTER_SECRET="bench-wasm-app-secret-$$"
for i in 0 1 2; do
    "$SHOAL" node --worker-threads "$WORKERS" --config "$dir/node.toml" --name "node$((i + 1))" \
        --port $((BASE_PORT + i)) --http-port $((BASE_PORT + 10 + i)) "${members[@]}" \
        >"$dir/node$((i + 1)).log" 2>&1 &
    pids+=($!)
done

url() { echo "http://127.0.0.1:$((BASE_PORT + 10 + $1))$2"; }
# Ready: every node answers both apps, and node1 sees both others in its stats.
deadline=$((SECONDS + 60))
until [ "$(curl -s "$(url 0 /native/stats)" | grep -o 'members=[0-9]*')" = "members=2" ] &&
    curl -sf "$(url 1 /wasm/stats)" >/dev/null && curl -sf "$(url 2 /native/stats)" >/dev/null; do
    if [ $SECONDS -gt $deadline ]; then
        echo "cluster not ready in 60 s; logs in $dir:" >&2
        tail -5 "$dir"/node*.log >&2
        trap - EXIT
        exit 1
    fi
    sleep 0.5
done
# Both answer the same line; the Wasm app counts its requests (plugin.bench-app.requests).
wasm_line=$(curl -s "$(url 0 /wasm/counter)")
native_line=$(curl -s "$(url 0 /native/counter)")
echo "wasm:   $wasm_line"
echo "native: $native_line"
case "$wasm_line" in counter=1\ *) ;; *) echo "unexpected /wasm answer" >&2; exit 1 ;; esac

# CPU time (µs) a process has used so far: utime + stime from /proc/PID/stat.
cpu_us() {
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1e6 / hz}' "/proc/$1/stat"
}
# run path seconds -> "req/s cpu1 cpu2 cpu3" (CPU µs per request of each node process).
run() {
    local before=() after=() out reqs rps
    for p in "${pids[@]}"; do before+=("$(cpu_us "$p")"); done
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2s" -s "$LUA" "$(url 0 "$1")" -- $((CONNECTIONS / THREADS)))
    for p in "${pids[@]}"; do after+=("$(cpu_us "$p")"); done
    reqs=$(echo "$out" | sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p')
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    printf '%s' "$rps"
    for i in 0 1 2; do
        awk -v a="${after[$i]}" -v b="${before[$i]}" -v n="$reqs" 'BEGIN {printf " %.1f", (a - b) / n}'
    done
    echo
}
echo "warm-up..."
run /native/counter 3 >/dev/null
run /wasm/counter 3 >/dev/null

native=()
wasm=()
ncpu=()
wcpu=()
for r in $(seq 1 "$RUNS"); do
    n=$(run /native/counter "$DURATION")
    w=$(run /wasm/counter "$DURATION")
    native+=("${n%% *}")
    wasm+=("${w%% *}")
    ncpu+=("$(echo "$n" | awk '{print $2 + $3 + $4}')")
    wcpu+=("$(echo "$w" | awk '{print $2 + $3 + $4}')")
    echo "run $r: native $n | wasm $w   (req/s, then CPU µs/request on node1 node2 node3)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
mn=$(median "${native[@]}")
mw=$(median "${wasm[@]}")
echo "median: native $mn req/s, wasm $mw req/s, wasm/native $(awk -v w="$mw" -v n="$mn" 'BEGIN {printf "%.1f%%", 100 * w / n}')"
cn=$(median "${ncpu[@]}")
cw=$(median "${wcpu[@]}")
echo "median CPU µs/request, 3 nodes: native $cn, wasm $cw, native/wasm $(awk -v w="$cw" -v n="$cn" 'BEGIN {printf "%.1f%%", 100 * n / w}')"
if [ -n "${HOLD:-}" ]; then
    echo "HOLD: cluster kept running (pids ${pids[*]}); press enter to stop"
    read -r _
fi
