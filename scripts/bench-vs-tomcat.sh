#!/usr/bin/env bash
# shoal beside Tomcat 10.1 in one run (issue #16): for every mode both clusters are up at the
# same time on 127.0.0.1 and measured in interleaved rounds (Tomcat then shoal in odd rounds,
# shoal then Tomcat in even ones), so both see the same machine, load and CPU type. Writes one
# table of ratios (shoal / Tomcat): req/s, p99, CPU µs per request summed over the cluster's
# processes (utime + stime from /proc/<pid>/stat around each round), and RSS with 10,000 x
# 1 KiB sessions.
#
#   wrk -t2 -c32 --latency, one session per connection (the harness' lua/session.lua), on node1;
#   modes: none (1 node each, no cluster), delta-async, delta-sync, backup (3 nodes each);
#   endpoints /app/counter and /app/set 1 KiB; REPEAT interleaved rounds of DURATION s, medians.
#   The Tomcat side is a copy of ../shared/peers/tomcat (setup.sh installs its Debian packages),
#   with its own SEND_OPTIONS per mode as in its bench.sh (8 async, 6 sync).
#
#   cargo build --release -p shoal && scripts/bench-vs-tomcat.sh
#   quick: DURATION=3 WARMUP=2 REPEAT=1 LOAD_SESSIONS=1000 scripts/bench-vs-tomcat.sh
#   one mode: MODES=delta-sync RSS=0 scripts/bench-vs-tomcat.sh
#
# Writes $OUT/metrics.tsv (side, mode, key, value), $OUT/summary.md, raw wrk output and logs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TOMCAT="${TOMCAT:-$HERE/../shared/peers/tomcat}"
[ -d "$TOMCAT" ] || TOMCAT=/work/shared/peers/tomcat
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-8}" REPEAT="${REPEAT:-3}"
THREADS="${THREADS:-2}" CONNS="${CONNS:-32}"
MODES="${MODES:-none delta-async delta-sync backup}"
VARIANTS="${VARIANTS:-counter set1k}"
RSS="${RSS:-1}" LOAD_SESSIONS="${LOAD_SESSIONS:-10000}" LOAD_SIZE="${LOAD_SIZE:-1024}"
# shoal's ports (Tomcat keeps the harness' 18081.. and 14001..).
CH_BASE="${CH_BASE:-23300}" HTTP_BASE="${HTTP_BASE:-23380}"
OUT="${OUT:-$HERE/target/bench-vs-tomcat}"
RUN="$OUT/run"
METRICS="$OUT/metrics.tsv"
CLK_TCK="$(getconf CLK_TCK)"
export SHOAL_CLUSTER_SECRET="${SHOAL_CLUSTER_SECRET:-bench-vs-tomcat-secret-0123456789}"

command -v wrk > /dev/null || { echo "wrk not found: apt-get install wrk (or run $TOMCAT/setup.sh)" >&2; exit 1; }
[ -d "$TOMCAT" ] || { echo "Tomcat harness not found at $TOMCAT (set TOMCAT=<path to peers/tomcat>)" >&2; exit 1; }
SRC_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SRC_BIN" ] || { echo "no shoal binary at $SRC_BIN: cargo build --release -p shoal (or set SHOAL_BIN)" >&2; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN"
: > "$METRICS"
BIN="$OUT/shoal" # a private copy: a build during the run does not change what is measured
cp "$SRC_BIN" "$BIN"
TC="$OUT/tomcat" # a copy of the harness: its run/ and results/ stay out of the shared folder
rm -rf "$TC"
cp -r "$TOMCAT" "$TC"
rm -rf "$TC/run" "$TC/results"
LUA="$TC/lua/session.lua"
LOADER="$TC/tools/sessclient.py"
export RUN_DIR="$TC/run"

declare -A PID
now_ms() { date +%s%3N; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
metric() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$METRICS"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2> /dev/null; }
# utime + stime of a process (all its threads), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2> /dev/null || echo 0; }
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(ticks "$p"))); done; echo "$s"; }

# ---- the Tomcat side (the harness' own scripts and lib.sh functions, in subshells) ----
tc_lib() { (cd "$TC" && . ./lib.sh && "$@"); }
tc_pids() { local i; for ((i = 1; i <= $1; i++)); do tc_lib node_pid "$i"; done; }
tc_up() { # mode nodes
  local mode=$1 n=$2 mgr opts=8
  case $mode in none) mgr=none ;; delta-async) mgr=delta ;; delta-sync) mgr=delta opts=6 ;; backup) mgr=backup ;; esac
  log "tomcat $mode: SEND_OPTIONS=$opts ./run-cluster.sh $n $mgr"
  SEND_OPTIONS=$opts "$TC/run-cluster.sh" "$n" "$mgr" > "$OUT/tomcat-$mode-run-cluster.txt" 2>&1 ||
    { echo "tomcat $mode cluster did not start: $(tail -5 "$OUT/tomcat-$mode-run-cluster.txt")" >&2; return 1; }
}
tc_down() { "$TC/stop-cluster.sh" > /dev/null 2>&1 || true; }

# ---- the shoal side (as scripts/bench-sessions.sh starts it) ----
sh_port() { echo $((HTTP_BASE + $1)); }
sh_config() { # mode -> path
  local mode=$1 mgr=delta repl=sync f="$OUT/$1.toml"
  case $mode in delta-async) repl=async ;; backup) mgr=backup ;; esac
  printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "%s"\nreplication = "%s"\n' \
    "$mgr" "$repl" > "$f"
  echo "$f"
}
sh_start() { # i nodes config workers
  local i=$1 n=$2 members=() j
  for ((j = 1; j <= n; j++)); do members+=(--member "127.0.0.1:$((CH_BASE + j))"); done
  "$BIN" node --worker-threads "$4" --name "node$i" --port $((CH_BASE + i)) "${members[@]}" \
    --http-port "$(sh_port "$i")" --config "$3" > "$RUN/node$i.out" 2> "$RUN/node$i.log" &
  PID[$i]=$!
}
sh_wait() { # i key min timeout_s: until /app/stats says key >= min
  local deadline=$(( $(now_ms) + $4 * 1000 )) v
  while :; do
    v="$(curl -s --max-time 1 "http://127.0.0.1:$(sh_port "$1")/app/stats" | tr ' ' '\n' | sed -n "s/^$2=//p" || true)"
    [ -n "$v" ] && (( v >= $3 )) && return 0
    kill -0 "${PID[$1]}" 2> /dev/null || { echo "shoal node$1 exited (see $RUN/node$1.log)" >&2; return 1; }
    (( $(now_ms) < deadline )) || { echo "shoal node$1: $2=$v, wanted >= $3 within $4 s (see $RUN/node$1.log)" >&2; return 1; }
    sleep 0.02
  done
}
sh_up() { # mode nodes
  local mode=$1 n=$2 cfg i workers
  cfg="$(sh_config "$mode")"
  # One node gets every core (as the Tomcat JVM does); three share them.
  workers=$(( n == 1 ? $(nproc) : ($(nproc) / n > 0 ? $(nproc) / n : 1) ))
  log "shoal $mode: $n node(s), $workers worker thread(s) each"
  for ((i = 1; i <= n; i++)); do sh_start "$i" "$n" "$cfg" "$workers"; sh_wait "$i" activeSessions 0 20; done
  for ((i = 1; i <= n; i++)); do sh_wait "$i" members $((n - 1)) 20; done
}
sh_pids() { local i; for ((i = 1; i <= $1; i++)); do echo "${PID[$i]}"; done; }
sh_down() {
  local i
  for i in "${!PID[@]}"; do kill "${PID[$i]}" 2> /dev/null || true; done
  for i in "${!PID[@]}"; do wait "${PID[$i]}" 2> /dev/null || true; unset "PID[$i]"; done
}
cleanup() { sh_down; tc_down; }
trap cleanup EXIT

path_of() { case $1 in counter) echo /app/counter ;; set1k) echo "/app/set?key=data&size=1024" ;; esac; }
warm() { # port
  local v
  for v in $VARIANTS; do
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "http://127.0.0.1:$1$(path_of "$v")" -- $((CONNS / THREADS)) > /dev/null 2>&1 || true
  done
}

round() { # side mode variant round port pids...
  local side=$1 mode=$2 v=$3 r=$4 port=$5 f line k t0 t1 reqs
  shift 5
  f="$OUT/wrk-$side-$mode-$v-$r.txt"
  t0="$(sum_ticks "$@")"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$LUA" \
    "http://127.0.0.1:$port$(path_of "$v")" -- $((CONNS / THREADS)) > "$f" 2>&1 || true
  t1="$(sum_ticks "$@")"
  line="$(grep '^RESULT' "$f" || true)"
  [ -n "$line" ] || { echo "$side $mode $v r$r: no wrk result (see $f)" >&2; return 1; }
  for k in rps p50_ms p99_ms err_status; do
    metric "$side" "$mode" "$v.r$r.$k" "$(tr ' ' '\n' <<< "$line" | sed -n "s/^$k=//p")"
  done
  reqs="$(tr ' ' '\n' <<< "$line" | sed -n 's/^requests=//p')"
  [ -n "$reqs" ] || reqs="$(awk -v r="$(tr ' ' '\n' <<< "$line" | sed -n 's/^rps=//p')" -v d="$DURATION" 'BEGIN {printf "%d", r * d}')"
  metric "$side" "$mode" "$v.r$r.cpu_us_per_req" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')"
  log "$side $mode $v r$r: $(tr ' ' '\n' <<< "$line" | grep -E '^(rps|p99_ms|err_status)=' | tr '\n' ' ')cpu_us/req=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')"
}

mode_run() { # mode
  local mode=$1 n=3 r v tp sp
  [ "$mode" = none ] && n=1
  tc_up "$mode" "$n"
  sh_up "$mode" "$n"
  log "$mode: warm-up ${WARMUP}s per endpoint on each side"
  warm 18081
  warm "$(sh_port 1)"
  tp="$(tc_pids "$n" | tr '\n' ' ')"
  sp="$(sh_pids "$n" | tr '\n' ' ')"
  for ((r = 1; r <= REPEAT; r++)); do
    for v in $VARIANTS; do
      # shellcheck disable=SC2086 # pid lists
      if (( r % 2 )); then
        round tomcat "$mode" "$v" "$r" 18081 $tp; round shoal "$mode" "$v" "$r" "$(sh_port 1)" $sp
      else
        round shoal "$mode" "$v" "$r" "$(sh_port 1)" $sp; round tomcat "$mode" "$v" "$r" 18081 $tp
      fi
    done
  done
  cp "$RUN/node1.log" "$OUT/shoal-$mode-node1.log" 2> /dev/null || true
  sh_down
  tc_down
}

rss_run() { # 10,000 x 1 KiB sessions on node1 of a delta-sync cluster of 3, each side
  local r p
  tc_up delta-sync 3
  sh_up delta-sync 3
  log "rss: $LOAD_SESSIONS x $LOAD_SIZE B sessions on each side"
  r="$(python3 "$LOADER" load --port 18081 --sessions "$LOAD_SESSIONS" --size "$LOAD_SIZE")"
  metric tomcat rss load "$r"
  r="$(python3 "$LOADER" load --port "$(sh_port 1)" --sessions "$LOAD_SESSIONS" --size "$LOAD_SIZE")"
  metric shoal rss load "$r"
  sh_wait 2 activeSessions "$LOAD_SESSIONS" 60
  sh_wait 3 activeSessions "$LOAD_SESSIONS" 60
  for r in 1 2 3; do
    p="$(tc_lib node_pid "$r")"
    metric tomcat rss "node${r}_rss_kib" "$(rss_kib "$p")"
    metric shoal rss "node${r}_rss_kib" "$(rss_kib "${PID[$r]}")"
  done
  sh_down
  tc_down
}

median() { # side mode variant key -> median
  awk -F'\t' -v s="$1" -v m="$2" -v re="^$3[.]r[0-9]+[.]$4\$" '$1 == s && $2 == m && $3 ~ re {print $4}' "$METRICS" | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%s", v[int((NR + 1) / 2)]}'
}
get() { awk -F'\t' -v s="$1" -v m="$2" -v k="$3" '$1 == s && $2 == m && $3 == k {print $4}' "$METRICS" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "?"; else printf "%.2f", a / b}'; }

summary() {
  local mode v tr sr tp sp tc sc
  echo "| mode | endpoint | Tomcat req/s | shoal req/s | req/s shoal÷Tomcat | Tomcat p99 ms | shoal p99 ms | CPU µs/req Tomcat | CPU µs/req shoal | CPU shoal÷Tomcat |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for mode in $MODES; do
    for v in $VARIANTS; do
      tr="$(median tomcat "$mode" "$v" rps)" sr="$(median shoal "$mode" "$v" rps)"
      tp="$(median tomcat "$mode" "$v" p99_ms)" sp="$(median shoal "$mode" "$v" p99_ms)"
      tc="$(median tomcat "$mode" "$v" cpu_us_per_req)" sc="$(median shoal "$mode" "$v" cpu_us_per_req)"
      printf '| %s | %s | %.0f | %.0f | **%s** | %s | %s | %s | %s | %s |\n' "$mode" "$v" "${tr:-0}" "${sr:-0}" "$(ratio "$sr" "$tr")" \
        "$tp" "$sp" "$tc" "$sc" "$(ratio "$sc" "$tc")"
    done
  done
  echo
  echo "Derived (medians above): shoal delta-sync ÷ Tomcat delta-async counter $(ratio "$(median shoal delta-sync counter rps)" "$(median tomcat delta-async counter rps)");" \
    "shoal delta-sync ÷ shoal none counter $(ratio "$(median shoal delta-sync counter rps)" "$(median shoal none counter rps)")."
  [ "$RSS" != 0 ] || return 0
  echo
  echo "| node (delta-sync, $LOAD_SESSIONS x $LOAD_SIZE B sessions) | Tomcat RSS MiB | shoal RSS MiB | shoal÷Tomcat |"
  echo "|---|---:|---:|---:|"
  for r in 1 2 3; do
    tr="$(get tomcat rss "node${r}_rss_kib")" sr="$(get shoal rss "node${r}_rss_kib")"
    printf '| node%s | %.1f | %.1f | 1/%s |\n' "$r" "$(awk -v k="${tr:-0}" 'BEGIN {print k / 1024}')" "$(awk -v k="${sr:-0}" 'BEGIN {print k / 1024}')" "$(ratio "$tr" "$sr")"
  done
}

log "tomcat harness: setup.sh (Debian packages, webapp)"
"$TC/setup.sh" > "$OUT/tomcat-setup.txt" 2>&1 || { echo "tomcat harness setup failed: $(tail -5 "$OUT/tomcat-setup.txt")" >&2; exit 1; }
T0=$(now_ms)
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ) git=$(git -C "$HERE" rev-parse --short HEAD 2> /dev/null || echo ?) tomcat=$(tc_lib tomcat_version)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --timeout 5s --latency -s lua/session.lua http://127.0.0.1:<port><path> -- $((CONNS / THREADS)); $REPEAT interleaved rounds, medians; warm-up ${WARMUP}s per endpoint"
  echo "CPU µs/req: utime+stime of every node process of the side (/proc/<pid>/stat, CLK_TCK=$CLK_TCK) over a round ÷ its requests; wrk's own CPU not counted"
} > "$OUT/env.txt"
for mode in $MODES; do mode_run "$mode"; done
[ "$RSS" = 0 ] || rss_run
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); total $(( ($(now_ms) - T0) / 1000 )) s" >> "$OUT/env.txt"
{ cat "$OUT/env.txt"; echo; summary; } > "$OUT/summary.md"
cat "$OUT/summary.md"
