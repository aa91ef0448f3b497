#!/usr/bin/env bash
# Read-your-writes benchmark (issue 13): a 3-node cluster on 127.0.0.1 in async mode, loaded by
# scripts/ryw-load.rs (CONNS sessions, one request in flight each, keep-alive to every node):
#   plain-sticky   read_your_writes = false, each request to its session's node (the baseline)
#   tokens-sticky  version tokens on, each request to its session's node
#   tokens-random  version tokens on, each request to a random node
# for /app/counter and /app/set 1 KiB; median of REPEAT interleaved rounds. The catch-up
# histogram (requests whose node was behind their token) is read from /app/stats.
#
#   cargo build --release -p shoal && scripts/bench-ryw.sh
#   quick: DURATION=3 WARMUP=1 REPEAT=1 scripts/bench-ryw.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORKERS="${WORKERS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-3}" REPEAT="${REPEAT:-3}" CONNS="${CONNS:-32}"
MODES="${MODES:-plain-sticky tokens-sticky tokens-random}"
CH_BASE="${CH_BASE:-23300}" HTTP_BASE="${HTTP_BASE:-23380}"
OUT="${OUT:-$HERE/target/bench-ryw}"
SRC_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SRC_BIN" ] || { echo "build first: cargo build --release -p shoal" >&2; exit 1; }
mkdir -p "$OUT"
BIN="$OUT/shoal"; cp "$SRC_BIN" "$BIN"
LOAD="$OUT/ryw-load"
rustc -O --edition 2021 "$HERE/scripts/ryw-load.rs" -o "$LOAD"
export SHOAL_CLUSTER_SECRET="${SHOAL_CLUSTER_SECRET:-bench-ryw-secret-0123456789}"
RESULTS="$OUT/results.tsv"; : > "$RESULTS"
declare -A PID
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
http_port() { echo $((HTTP_BASE + $1)); }
stat_field() { curl -s --max-time 2 "http://127.0.0.1:$(http_port "$1")/app/stats" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

start_cluster() { # read_your_writes
  local cfg="$OUT/ryw-$1.toml" i j members=()
  printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "delta"\nreplication = "async"\nread_your_writes = %s\n' "$1" > "$cfg"
  for j in 1 2 3; do members+=(--member "127.0.0.1:$((CH_BASE + j))"); done
  for i in 1 2 3; do
    "$BIN" node --worker-threads "$WORKERS" --name "node$i" --port $((CH_BASE + i)) "${members[@]}" \
      --http-port "$(http_port "$i")" --config "$cfg" > "$OUT/node$i.out" 2> "$OUT/node$i.log" &
    PID[$i]=$!
  done
  for i in 1 2 3; do
    for _ in $(seq 1 500); do [ "$(stat_field "$i" members)" = 2 ] && break; sleep 0.02; done
  done
}
stop_cluster() { local i; for i in "${!PID[@]}"; do kill "${PID[$i]}" 2> /dev/null || true; wait "${PID[$i]}" 2> /dev/null || true; unset "PID[$i]"; done; }
trap stop_cluster EXIT

NODES="node1=127.0.0.1:$(http_port 1),node2=127.0.0.1:$(http_port 2),node3=127.0.0.1:$(http_port 3)"
for ((r = 1; r <= REPEAT; r++)); do
  for mode in $MODES; do
    ryw=true; [ "${mode%%-*}" = plain ] && ryw=false
    routing=${mode##*-}
    for variant in counter set1k; do
      path=/app/counter; [ "$variant" = set1k ] && path="/app/set?key=data&size=1024"
      start_cluster "$ryw"
      line="$("$LOAD" "$NODES" "$routing" "$path" "$CONNS" "$DURATION" "$WARMUP")"
      waits=0; fetches=0; hist=""
      for i in 1 2 3; do
        waits=$((waits + $(stat_field "$i" rywWaits))); fetches=$((fetches + $(stat_field "$i" rywFetches)))
        hist="$hist node$i:$(stat_field "$i" rywWaitMs)"
      done
      stop_cluster
      log "r$r $mode $variant: $line waits=$waits fetches=$fetches"
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$variant" "$line waits=$waits fetches=$fetches" "$hist" >> "$RESULTS"
    done
  done
done
log "raw results: $RESULTS"
