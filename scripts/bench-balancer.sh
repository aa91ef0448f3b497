#!/usr/bin/env bash
# Balancer overhead with real shoal nodes: wrk req/s on /app/counter straight to node1 vs
# through `shoal balancer` in front of the 3 nodes (DeltaManager, sync, native bench app),
# one session per connection (the Tomcat harness' lua/session.lua), median of REPEAT
# interleaved rounds. Then the failover gap: tests/tests/balancer_failover.rs run GAP_RUNS
# times against this release binary (kill -9 node1 under 12 clients; prints the worst gap).
#
#   cargo build --release -p shoal && scripts/bench-balancer.sh
#
# CPU per request: while wrk runs against a front, `perf stat -e task-clock -p PID` counts
# that front's CPU time (and node1's in the direct rounds); divided by the requests wrk
# completed, it gives µs of CPU per proxied request, the figure that decides the ratio on a
# machine where proxy, nodes and wrk share the cores. Set BALANCER_B=/path/to/other/shoal
# to measure a second balancer binary in the same interleaved rounds (A/B), GAP_RUNS=0 to
# skip the failover part.
#
# Two more fronts isolate the hop: `shoal balancer` in front of node1 only (the nodes do
# exactly the work of the direct rounds) and HAProxy in `mode tcp` in front of node1 (a plain
# L4 relay, no HTTP parsing: the floor of any user-space proxy on this machine). node1's CPU
# is counted in those rounds too.
#
# Knobs for experiments: FRONT_NICE=-10 starts the fronts at that nice value,
# BAL_CONFIG=file.toml passes a balancer config (e.g. `threads = 2`), PERF_EXTRA=events adds
# perf events (e.g. context-switches,syscalls:sys_enter_epoll_wait) to the .perf files.
#
# Writes $OUT/summary.md and raw wrk output.
set -euo pipefail
# Worker threads per node: the 3 nodes share this machine's cores (as `shoal demo` does).
WORKERS="${WORKERS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TOMCAT="${TOMCAT:-/work/shared/peers/tomcat}"
LUA="$TOMCAT/lua/session.lua"
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-3}" REPEAT="${REPEAT:-3}"
THREADS="${THREADS:-2}" CONNS="${CONNS:-32}" GAP_RUNS="${GAP_RUNS:-3}"
CH_BASE="${CH_BASE:-23300}" HTTP_BASE="${HTTP_BASE:-23380}" FRONT="${FRONT:-23390}"
OUT="${OUT:-$HERE/target/bench-balancer}"
export SHOAL_CLUSTER_SECRET="bench-balancer-secret-0123456789"
command -v wrk > /dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -x "$HERE/target/release/shoal" ] || { echo "build first: cargo build --release -p shoal" >&2; exit 1; }
mkdir -p "$OUT"
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
BIN="$OUT/shoal"
cp "$HERE/target/release/shoal" "$BIN"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT

printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "delta"\nreplication = "sync"\n' > "$OUT/node.toml"
members=(); for j in 1 2 3; do members+=(--member "127.0.0.1:$((CH_BASE + j))"); done
backends=()
for i in 1 2 3; do
  "$BIN" node --worker-threads "$WORKERS" --name "node$i" --port $((CH_BASE + i)) "${members[@]}" --http-port $((HTTP_BASE + i)) \
    --config "$OUT/node.toml" > "$OUT/node$i.out" 2> "$OUT/node$i.log" &
  PIDS+=($!)
  backends+=(--backend "node$i=127.0.0.1:$((HTTP_BASE + i))")
done
RUST_LOG=warn ${FRONT_NICE:+nice -n "$FRONT_NICE"} "$BIN" balancer ${BAL_CONFIG:+--config "$BAL_CONFIG"} --listen "127.0.0.1:$FRONT" "${backends[@]}" > "$OUT/balancer.out" 2>&1 &
PIDS+=($!); BAL_PID=$!; NODE1_PID=${PIDS[0]}
# The hop alone: a second balancer in front of node1 only, so the nodes do exactly the work
# of the direct rounds (every session on node1, replicated to node2/node3) and the
# difference is the proxy. The 3-node rounds also move work between nodes (new sessions
# spread, each node replicating its third with less batching).
FRONT_1=$((FRONT + 3))
RUST_LOG=warn ${FRONT_NICE:+nice -n "$FRONT_NICE"} "$BIN" balancer ${BAL_CONFIG:+--config "$BAL_CONFIG"} --listen "127.0.0.1:$FRONT_1" --backend "node1=127.0.0.1:$((HTTP_BASE + 1))" > "$OUT/balancer1.out" 2>&1 &
PIDS+=($!); BAL1_PID=$!
FRONT_B=""
if [ -n "${BALANCER_B:-}" ]; then   # a second balancer binary, for A/B rounds
  FRONT_B=$((FRONT + 2))
  RUST_LOG=warn "$BALANCER_B" balancer --listen "127.0.0.1:$FRONT_B" "${backends[@]}" > "$OUT/balancer_b.out" 2>&1 &
  PIDS+=($!); BAL_B_PID=$!
fi
HAPROXY=""; HAP_TCP=""
if command -v haproxy > /dev/null; then   # reference: the same measurement through HAProxy
  HAPROXY=$((FRONT + 1))
  sed -e "s/127.0.0.1:18080/127.0.0.1:$HAPROXY/" -e "s/127.0.0.1:18081/127.0.0.1:$((HTTP_BASE + 1))/" \
    -e "s/127.0.0.1:18082/127.0.0.1:$((HTTP_BASE + 2))/" -e "s/127.0.0.1:18083/127.0.0.1:$((HTTP_BASE + 3))/" \
    "$HERE/deploy/haproxy/haproxy.cfg" | grep -v "log stderr" > "$OUT/haproxy.cfg"
  ${FRONT_NICE:+nice -n "$FRONT_NICE"} haproxy -db -f "$OUT/haproxy.cfg" > "$OUT/haproxy.out" 2>&1 &
  PIDS+=($!); HAP_PID=$!
  # The floor of any user-space proxy: HAProxy as a plain TCP relay in front of node1 (no
  # HTTP parsing, one read and one write per direction, in optimized C).
  HAP_TCP=$((FRONT + 4))
  printf 'global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\nfrontend relay\n    bind 127.0.0.1:%s\n    default_backend node1\nbackend node1\n    server node1 127.0.0.1:%s\n' \
    "$HAP_TCP" "$((HTTP_BASE + 1))" > "$OUT/haproxy-tcp.cfg"
  ${FRONT_NICE:+nice -n "$FRONT_NICE"} haproxy -db -f "$OUT/haproxy-tcp.cfg" > "$OUT/haproxy-tcp.out" 2>&1 &
  PIDS+=($!); HAP_TCP_PID=$!
fi
for url in "127.0.0.1:$((HTTP_BASE + 1))" "127.0.0.1:$((HTTP_BASE + 2))" "127.0.0.1:$((HTTP_BASE + 3))" "127.0.0.1:$FRONT" "127.0.0.1:$FRONT_1" ${HAP_TCP:+"127.0.0.1:$HAP_TCP"} ${FRONT_B:+"127.0.0.1:$FRONT_B"}; do
  for _ in $(seq 200); do curl -sf -o /dev/null --max-time 1 "http://$url/app/stats" && break; sleep 0.05; done
done
sleep 1 # membership settles (sync replication waits for every member)

PERF=""; command -v perf > /dev/null && PERF=1
run_wrk() { # label url round pid-to-measure
  local perfs=()
  if [ -n "$PERF" ]; then
    perf stat -x, -e task-clock${PERF_EXTRA:+,$PERF_EXTRA} -p "$4" -o "$OUT/$1.$3.perf" -- sleep "$DURATION" 2> /dev/null &
    perfs+=($!)
    if [ "$4" != "$NODE1_PID" ]; then # node1 too: what the hop costs the node behind it
      perf stat -x, -e task-clock${PERF_EXTRA:+,$PERF_EXTRA} -p "$NODE1_PID" -o "$OUT/$1.$3.node1.perf" -- sleep "$DURATION" 2> /dev/null &
      perfs+=($!)
    fi
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$LUA" "http://$2/app/counter" -- $((CONNS / THREADS)) \
    > "$OUT/$1.$3.txt" 2>&1
  for p in "${perfs[@]}"; do wait "$p" 2> /dev/null || true; done
  awk '/Requests\/sec/{print $2}' "$OUT/$1.$3.txt"
}
cpu_per_req() { # label round [suffix] -> µs of the measured process' CPU per completed request
  [ -f "$OUT/$1.$2${3:-}.perf" ] || { echo "-"; return; }
  local ms req
  ms=$(awk -F, '/task-clock/{print $1}' "$OUT/$1.$2${3:-}.perf")
  req=$(awk '/requests in/{print $1}' "$OUT/$1.$2.txt")
  awk -v ms="$ms" -v r="$req" 'BEGIN{ if (r > 0 && ms > 0) printf "%.1f", ms * 1000 / r; else print "-" }'
}
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "http://127.0.0.1:$FRONT/app/counter" -- $((CONNS / THREADS)) > /dev/null 2>&1
direct=(); one=(); cpu_one=(); cpu_one_n1=(); tcp=(); cpu_tcp=(); cpu_tcp_n1=(); front=(); hap=(); frontb=(); cpu_node=(); cpu_bal=(); cpu_hap=(); cpu_b=()
for r in $(seq "$REPEAT"); do
  direct+=("$(run_wrk direct "127.0.0.1:$((HTTP_BASE + 1))" "$r" "$NODE1_PID")"); cpu_node+=("$(cpu_per_req direct "$r")")
  one+=("$(run_wrk balancer1 "127.0.0.1:$FRONT_1" "$r" "$BAL1_PID")"); cpu_one+=("$(cpu_per_req balancer1 "$r")")
  cpu_one_n1+=("$(cpu_per_req balancer1 "$r" .node1)")
  if [ -n "$HAPROXY" ]; then
    tcp+=("$(run_wrk haproxy_tcp "127.0.0.1:$HAP_TCP" "$r" "$HAP_TCP_PID")"); cpu_tcp+=("$(cpu_per_req haproxy_tcp "$r")")
    cpu_tcp_n1+=("$(cpu_per_req haproxy_tcp "$r" .node1)")
  fi
  front+=("$(run_wrk balancer "127.0.0.1:$FRONT" "$r" "$BAL_PID")"); cpu_bal+=("$(cpu_per_req balancer "$r")")
  if [ -n "$FRONT_B" ]; then
    frontb+=("$(run_wrk balancer_b "127.0.0.1:$FRONT_B" "$r" "$BAL_B_PID")"); cpu_b+=("$(cpu_per_req balancer_b "$r")")
  fi
  if [ -n "$HAPROXY" ]; then
    hap+=("$(run_wrk haproxy "127.0.0.1:$HAPROXY" "$r" "$HAP_PID")"); cpu_hap+=("$(cpu_per_req haproxy "$r")")
  fi
  echo "round $r: direct ${direct[-1]} req/s (node1 ${cpu_node[-1]} µs/req), balancer -> node1 ${one[-1]} req/s (${cpu_one[-1]} µs/req, node1 ${cpu_one_n1[-1]}), tcp relay -> node1 ${tcp[-1]:-} req/s (${cpu_tcp[-1]:-} µs/req, node1 ${cpu_tcp_n1[-1]:-}), balancer ${front[-1]} req/s (${cpu_bal[-1]} µs/req)${FRONT_B:+, balancer B ${frontb[-1]:-} req/s (${cpu_b[-1]:-} µs/req)}, haproxy ${hap[-1]:-} req/s (${cpu_hap[-1]:-} µs/req)" >&2
done
D=$(printf '%s\n' "${direct[@]}" | median); B=$(printf '%s\n' "${front[@]}" | median)
RATIO=$(awk -v b="$B" -v d="$D" 'BEGIN{printf "%.0f", 100 * b / d}')
O=$(printf '%s\n' "${one[@]}" | median); CO=$(printf '%s\n' "${cpu_one[@]}" | median)
CON1=$(printf '%s\n' "${cpu_one_n1[@]}" | median)
T=$(printf '%s\n' "${tcp[@]:-0}" | median); CT=$(printf '%s\n' "${cpu_tcp[@]:--}" | median)
CTN1=$(printf '%s\n' "${cpu_tcp_n1[@]:--}" | median)
TRATIO=$(awk -v b="$T" -v d="$D" 'BEGIN{printf "%.0f", 100 * b / d}')
ORATIO=$(awk -v b="$O" -v d="$D" 'BEGIN{printf "%.0f", 100 * b / d}')
H=$(printf '%s\n' "${hap[@]:-0}" | median)
HRATIO=$(awk -v b="$H" -v d="$D" 'BEGIN{printf "%.0f", 100 * b / d}')
BB=$(printf '%s\n' "${frontb[@]:-0}" | median)
BBRATIO=$(awk -v b="$BB" -v d="$D" 'BEGIN{printf "%.0f", 100 * b / d}')
CN=$(printf '%s\n' "${cpu_node[@]}" | median); CB=$(printf '%s\n' "${cpu_bal[@]}" | median)
CH=$(printf '%s\n' "${cpu_hap[@]:--}" | median); CBB=$(printf '%s\n' "${cpu_b[@]:--}" | median)
cleanup; PIDS=()

gaps=()
TEST_BIN=$(ls -t "$HERE"/target/debug/deps/balancer_failover-* 2> /dev/null | grep -v '\.d$' | head -1)
if [ -n "$TEST_BIN" ]; then
  for r in $(seq "$GAP_RUNS"); do
    g=$(SHOAL_BIN="$BIN" "$TEST_BIN" --nocapture 2>&1 | sed -n 's/.*worst failover gap \([^,]*\),.*/\1/p')
    gaps+=("${g:-failed}")
    echo "failover run $r: worst gap ${g:-failed}" >&2
  done
fi
{
  echo "| | req/s (median of $REPEAT) | share of direct | CPU µs/request of the measured process (median) |"
  echo "|---|---|---|---|"
  echo "| direct to node1 | $D | 100 % | node1: $CN |"
  echo "| through shoal balancer in front of node1 only (the hop alone) | $O | $ORATIO % | balancer: $CO; node1: $CON1 |"
  [ -n "$HAPROXY" ] && echo "| through HAProxy mode tcp in front of node1 only (L4 relay, the floor) | $T | $TRATIO % | haproxy: $CT; node1: $CTN1 |"
  echo "| through shoal balancer (3 nodes) | $B | $RATIO % | balancer: $CB |"
  [ -n "$FRONT_B" ] && echo "| through balancer B ($BALANCER_B) | $BB | $BBRATIO % | balancer B: $CBB |"
  [ -n "$HAPROXY" ] && echo "| through HAProxy (deploy/haproxy, 3 nodes) | $H | $HRATIO % | haproxy: $CH |"
  echo
  echo "rounds: direct ${direct[*]}; balancer -> node1 ${one[*]}; tcp relay -> node1 ${tcp[*]:-}; balancer ${front[*]}; ${FRONT_B:+balancer B ${frontb[*]}; }haproxy ${hap[*]:-}"
  echo "CPU µs/request per round: node1 ${cpu_node[*]}; balancer -> node1 ${cpu_one[*]} (node1 ${cpu_one_n1[*]}); tcp relay ${cpu_tcp[*]:-} (node1 ${cpu_tcp_n1[*]:-}); balancer ${cpu_bal[*]}; ${FRONT_B:+balancer B ${cpu_b[*]}; }haproxy ${cpu_hap[*]:-}"
  echo "load average before: $LOADAVG (nproc $(nproc)); worker threads per node: $WORKERS"
  echo "failover gap (worst per run, kill -9 node1, 12 clients): ${gaps[*]:-not measured (cargo test -p shoal-tests --test balancer_failover --no-run first)}"
} | tee "$OUT/summary.md"
