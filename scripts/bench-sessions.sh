#!/usr/bin/env bash
# Session benchmarks of shoal in the shape of the Tomcat harness (shared/peers/tomcat/bench.sh),
# so the figures can stand beside Tomcat's (results.md):
#   (a) wrk -t2 -c32 --latency, one session per connection (lua/session.lua), against node1 of a
#       3-node cluster on 127.0.0.1, for /app/counter, /app/set 1 KiB and 10 KiB; modes
#       delta-sync, delta-async, backup (sync); median of REPEAT interleaved rounds.
#   (c) join: node4 launched while the cluster holds 10,000 x 1 KiB sessions (DeltaManager,
#       sync): launch -> first 200 on /app/stats, and -> all sessions present on node4.
#   (e) RSS (VmRSS) of the nodes holding 10,000 x 1 KiB sessions.
#
#   cargo build --release -p shoal && scripts/bench-sessions.sh
#   quick: DURATION=2 WARMUP=1 REPEAT=1 LOAD_SESSIONS=1000 JOIN_REPEAT=1 scripts/bench-sessions.sh
#   another binary (A/B): SHOAL_BIN=/path/to/shoal scripts/bench-sessions.sh
#   async memory only: MODES=delta-async VARIANTS=set10k REPEAT=1 JOIN=0 scripts/bench-sessions.sh
#
# Writes $OUT/metrics.tsv (mode, key, value), $OUT/summary.md, raw wrk output and node logs.
set -euo pipefail
# Worker threads per node: the 3 nodes share this machine's cores (as `shoal demo` does).
WORKERS="${WORKERS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TOMCAT="${TOMCAT:-$HERE/../shared/peers/tomcat}"
[ -d "$TOMCAT" ] || TOMCAT=/work/shared/peers/tomcat
LUA="$TOMCAT/lua/session.lua"
LOADER="$TOMCAT/tools/sessclient.py"
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-5}" REPEAT="${REPEAT:-3}"
THREADS="${THREADS:-2}" CONNS="${CONNS:-32}"
MODES="${MODES-delta-sync delta-async backup}"   # MODES= : join + RSS only
VARIANTS="${VARIANTS:-counter set1k set10k}" JOIN="${JOIN:-1}"   # JOIN=0: no join/RSS part
LOAD_SESSIONS="${LOAD_SESSIONS:-10000}" LOAD_SIZE="${LOAD_SIZE:-1024}" JOIN_REPEAT="${JOIN_REPEAT:-3}"
CH_BASE="${CH_BASE:-23100}" HTTP_BASE="${HTTP_BASE:-23180}"   # node i: channel CH_BASE+i, HTTP HTTP_BASE+i
OUT="${OUT:-$HERE/target/bench-sessions}"
RUN="$OUT/run"
METRICS="$OUT/metrics.tsv"
export SHOAL_CLUSTER_SECRET="${SHOAL_CLUSTER_SECRET:-bench-sessions-secret-0123456789}"

command -v wrk > /dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -f "$LUA" ] || { echo "$LUA not found (set TOMCAT=<path to peers/tomcat>)" >&2; exit 1; }
SRC_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SRC_BIN" ] || { echo "build first: cargo build --release -p shoal" >&2; exit 1; }
mkdir -p "$RUN"
: > "$METRICS"
# A private copy: other builds of target/release/shoal during the run do not change what is measured.
BIN="$OUT/shoal"
cp "$SRC_BIN" "$BIN"

declare -A PID
now_ms() { date +%s%3N; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
metric() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$METRICS"; }
http_port() { echo $((HTTP_BASE + $1)); }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }
stat_field() { # node key
  curl -s --max-time 2 "http://127.0.0.1:$(http_port "$1")/app/stats" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

write_config() { # mode -> path
  local mode=$1 mgr=${1%%-*} repl=sync f="$OUT/$1.toml"
  [[ "$mode" == *-async ]] && repl=async
  printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "%s"\nreplication = "%s"\n' \
    "$mgr" "$repl" > "$f"
  echo "$f"
}

start_node() { # i config
  local i=$1 cfg=$2 members=() j
  for j in 1 2 3 4; do members+=(--member "127.0.0.1:$((CH_BASE + j))"); done
  "$BIN" node --worker-threads "$WORKERS" --name "node$i" --port $((CH_BASE + i)) "${members[@]}" --http-port "$(http_port "$i")" \
    --config "$cfg" > "$RUN/node$i.out" 2> "$RUN/node$i.log" &
  PID[$i]=$!
}

wait_http() { # i timeout_s
  local deadline=$(( $(now_ms) + $2 * 1000 ))
  until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$(http_port "$1")/app/stats"; do
    (( $(now_ms) < deadline )) || { echo "node$1 not serving after $2 s (see $RUN/node$1.log)" >&2; return 1; }
    sleep 0.01
  done
}

wait_stat() { # i key min timeout_s
  local deadline=$(( $(now_ms) + $4 * 1000 )) v
  while :; do
    v="$(stat_field "$1" "$2")"
    [ -n "$v" ] && (( v >= $3 )) && return 0
    (( $(now_ms) < deadline )) || { echo "node$1: $2=$v, wanted >= $3 within $4 s" >&2; return 1; }
    sleep 0.02
  done
}

wait_members_back() { # i timeout_s: until node i counts 2 members again (node4 gone)
  local deadline=$(( $(now_ms) + $2 * 1000 ))
  until [ "$(stat_field "$1" members)" = 2 ]; do
    (( $(now_ms) < deadline )) || { echo "node$1 still sees node4 after $2 s" >&2; return 1; }
    sleep 0.02
  done
}

stop_node() { # i (SIGTERM: leaves the cluster)
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill "$p" 2> /dev/null || true
  wait "$p" 2> /dev/null || true
  unset "PID[$1]"
}
stop_all() { local i; for i in "${!PID[@]}"; do stop_node "$i"; done; }
trap stop_all EXIT

cluster_up() { # config: nodes start one after another, like the Tomcat harness
  local i
  for i in 1 2 3; do start_node "$i" "$1"; wait_http "$i" 20; done
  for i in 1 2 3; do wait_stat "$i" members 2 20; done
}

wrk_run() { # mode variant path round
  local mode=$1 variant=$2 path=$3 r=$4 f line k
  f="$OUT/wrk-$mode-$variant-$r.txt"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$LUA" \
    "http://127.0.0.1:$(http_port 1)$path" -- $((CONNS / THREADS)) > "$f" 2>&1 || true
  line="$(grep '^RESULT' "$f" || true)"
  [ -n "$line" ] || { metric "$mode" "$variant.r$r.error" "no wrk result ($f)"; return; }
  for k in rps p50_ms p99_ms err_status err_timeout err_connect err_read; do
    metric "$mode" "$variant.r$r.$k" "$(tr ' ' '\n' <<< "$line" | sed -n "s/^$k=//p")"
  done
  metric "$mode" "$variant.r$r.node1_rss_kib" "$(rss_kib "${PID[1]}")"
  log "$mode $variant r$r: $(tr ' ' '\n' <<< "$line" | grep -E '^(rps|p50_ms|p99_ms|err_status)=' | tr '\n' ' ')node1 RSS $(( $(rss_kib "${PID[1]}") / 1024 )) MiB"
}

median() { # mode variant key -> "median min max"
  awk -F'\t' -v m="$1" -v re="^$2[.]r[0-9]+[.]$3\$" '$1 == m && $2 ~ re {print $3}' "$METRICS" | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR]}'
}

throughput() { # mode
  local mode=$1 cfg r
  cfg="$(write_config "$mode")"
  log "$mode: cluster of 3, warm-up, $REPEAT rounds x 3 endpoints x ${DURATION}s"
  cluster_up "$cfg"
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "http://127.0.0.1:$(http_port 1)/app/counter" -- $((CONNS / THREADS)) > /dev/null 2>&1 || true
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "http://127.0.0.1:$(http_port 1)/app/set?key=data&size=1024" -- $((CONNS / THREADS)) > /dev/null 2>&1 || true
  for ((r = 1; r <= REPEAT; r++)); do
    for v in $VARIANTS; do
      case $v in
        counter) wrk_run "$mode" counter "/app/counter" "$r" ;;
        set1k) wrk_run "$mode" set1k "/app/set?key=data&size=1024" "$r" ;;
        set10k) wrk_run "$mode" set10k "/app/set?key=data&size=10240" "$r" ;;
      esac
    done
  done
  for r in 1 2 3; do metric "$mode" "node${r}_rss_kib_after_wrk" "$(rss_kib "${PID[$r]}")"; done
  sleep 3 # what stays resident once queued replication has drained
  for r in 1 2 3; do metric "$mode" "node${r}_rss_kib_after_wrk_3s" "$(rss_kib "${PID[$r]}")"; done
  log "$mode: node1 RSS after the runs $(( $(get "$mode" node1_rss_kib_after_wrk) / 1024 )) MiB, 3 s later $(( $(get "$mode" node1_rss_kib_after_wrk_3s) / 1024 )) MiB"
  for r in 1 2 3; do cp "$RUN/node$r.log" "$OUT/$mode-node$r.log"; done
  stop_all
}

join_and_rss() { # mode (delta-sync): 10,000 x 1 KiB sessions, RSS, node4 joins JOIN_REPEAT times
  local mode=$1 cfg k launch ready full r first
  cfg="$(write_config "$mode")"
  log "$mode: cluster of 3, $LOAD_SESSIONS x $LOAD_SIZE B sessions, RSS, node4 joins x$JOIN_REPEAT"
  cluster_up "$cfg"
  for r in 1 2 3; do metric "$mode" "node${r}_rss_kib_idle" "$(rss_kib "${PID[$r]}")"; done
  r="$(python3 "$LOADER" load --port "$(http_port 1)" --sessions "$LOAD_SESSIONS" --size "$LOAD_SIZE")"
  metric "$mode" "load" "$r"
  for r in 2 3; do wait_stat "$r" activeSessions "$LOAD_SESSIONS" 60; done
  for r in 1 2 3; do
    metric "$mode" "node${r}_active_sessions" "$(stat_field "$r" activeSessions)"
    metric "$mode" "node${r}_rss_kib_loaded" "$(rss_kib "${PID[$r]}")"
  done
  for ((k = 1; k <= JOIN_REPEAT; k++)); do
    launch=$(now_ms)
    start_node 4 "$cfg"
    first=""
    until first="$(curl -sf --max-time 1 "http://127.0.0.1:$(http_port 4)/app/stats")"; do
      (( $(now_ms) < launch + 30000 )) || { echo "node4 not serving after 30 s" >&2; return 1; }
      sleep 0.01
    done
    ready=$(now_ms)
    # What the first answer said: a node serving before its state transfer shows fewer sessions.
    metric "$mode" "join$k.sessions_at_first_200" "$(tr ' ' '\n' <<< "$first" | sed -n 's/^activeSessions=//p')"
    wait_stat 4 activeSessions "$LOAD_SESSIONS" 30
    full=$(now_ms)
    metric "$mode" "join$k.http_ready_ms" $((ready - launch))
    metric "$mode" "join$k.all_sessions_ms" $((full - launch))
    metric "$mode" "join$k.node4_active_sessions" "$(stat_field 4 activeSessions)"
    metric "$mode" "join$k.node4_rss_kib" "$(rss_kib "${PID[4]}")"
    log "$mode join$k: first 200 after $((ready - launch)) ms ($(get "$mode" "join$k.sessions_at_first_200") sessions), all $LOAD_SESSIONS sessions after $((full - launch)) ms"
    stop_node 4
    for r in 1 2 3; do wait_members_back "$r" 20; done
  done
  for r in 1 2 3; do cp "$RUN/node$r.log" "$OUT/$mode-join-node$r.log"; done
  stop_all
}

get() { awk -F'\t' -v m="$1" -v k="$2" '$1 == m && $2 == k {print $3}' "$METRICS" | tail -1; }

summary() {
  local mode v s
  echo "| mode | endpoint | req/s median [min–max] | p50 ms | p99 ms median [min–max] | non-2xx |"
  echo "|---|---|---:|---:|---:|---:|"
  for mode in $MODES; do
    for v in $VARIANTS; do
      read -r rm rmin rmax <<< "$(median "$mode" "$v" rps)"
      read -r p50 _ _ <<< "$(median "$mode" "$v" p50_ms)"
      read -r p99 pmin pmax <<< "$(median "$mode" "$v" p99_ms)"
      s="$(awk -F'\t' -v m="$mode" -v re="^$v[.]r[0-9]+[.]err_status\$" '$1 == m && $2 ~ re {s += $3} END {print s + 0}' "$METRICS")"
      printf '| %s | %s | %.0f [%.0f–%.0f] | %s | %s [%s–%s] | %s |\n' "$mode" "$v" "$rm" "$rmin" "$rmax" "$p50" "$p99" "$pmin" "$pmax" "$s"
    done
  done
  echo
  for mode in $MODES; do
    printf 'node1 RSS after the %s runs: %.1f MiB, 3 s later %.1f MiB\n' "$mode" \
      "$(awk '{print $1 / 1024}' <<< "$(get "$mode" node1_rss_kib_after_wrk)")" "$(awk '{print $1 / 1024}' <<< "$(get "$mode" node1_rss_kib_after_wrk_3s)")"
  done
  [ "$JOIN" != 0 ] || return 0
  echo
  echo "| join run | first 200 on /app/stats (ms) | all sessions on node4 (ms) | node4 sessions | node4 RSS MiB |"
  echo "|---:|---:|---:|---:|---:|"
  for ((k = 1; k <= JOIN_REPEAT; k++)); do
    printf '| %s | %s | %s | %s | %.1f |\n' "$k" "$(get delta-sync "join$k.http_ready_ms")" "$(get delta-sync "join$k.all_sessions_ms")" \
      "$(get delta-sync "join$k.node4_active_sessions")" "$(awk '{print $1 / 1024}' <<< "$(get delta-sync "join$k.node4_rss_kib")")"
  done
  echo
  echo "| node | RSS idle MiB | RSS with $LOAD_SESSIONS x $LOAD_SIZE B MiB | sessions |"
  echo "|---|---:|---:|---:|"
  for r in 1 2 3; do
    printf '| node%s | %.1f | %.1f | %s |\n' "$r" "$(awk '{print $1 / 1024}' <<< "$(get delta-sync "node${r}_rss_kib_idle")")" \
      "$(awk '{print $1 / 1024}' <<< "$(get delta-sync "node${r}_rss_kib_loaded")")" "$(get delta-sync "node${r}_active_sessions")"
  done
  echo
  echo "load: $(get delta-sync load)"
}

T0=$(now_ms)
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ) git=$(git -C "$HERE" rev-parse --short HEAD 2> /dev/null || echo ?)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg); worker threads per node: $WORKERS"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}') cmd: wrk -t$THREADS -c$CONNS -d${DURATION}s --timeout 5s --latency -s lua/session.lua http://127.0.0.1:$(http_port 1)<path> -- $((CONNS / THREADS))"
} > "$OUT/env.txt"
for mode in $MODES; do throughput "$mode"; done
[ "$JOIN" = 0 ] || join_and_rss delta-sync
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); total $(( ($(now_ms) - T0) / 1000 )) s" >> "$OUT/env.txt"
{ cat "$OUT/env.txt"; echo; summary; } > "$OUT/summary.md"
cat "$OUT/summary.md"
