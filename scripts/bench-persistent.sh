#!/usr/bin/env bash
# Benchmarks of issue 10 (persistent manager and stores), in the shape of scripts/bench-sessions.sh
# and of the Tomcat harness (shared/peers/tomcat/bench.sh): wrk -t2 -c32 --latency, one session per
# connection (lua/session.lua), /app/counter on node1, medians of REPEAT interleaved rounds.
#
#   writebehind  DeltaManager sync, 3 nodes: no store vs write-behind to SQLite and to Redis
#                (target: the store variants >= 90% of the no-store req/s).
#   perrequest   manager = "persistent", mode = "per-request", 2 nodes, on each store (sqlite, file,
#                redis, postgres, mysql = MariaDB): req/s, p99, store round trips per request from
#                /metrics (shoal_store_loads_total + shoal_store_saves_total, before/after the run,
#                divided by wrk's request count) and, for the server stores, the server's own count
#                (PostgreSQL xact_commit, MariaDB Questions, Redis total_commands_processed).
#                In the same rounds: Tomcat's PersistentValve on a FileStore, 2 nodes
#                (PERSISTENT_VALVE=1 ./run-cluster.sh 2 persistent, a copy of the harness), same wrk
#                command -> shoal/Tomcat ratio (target >= 10x on SQLite and Redis).
#   memory       one node, sticky persistent on SQLite, max_active_sessions = 10000: 100,000 x 1 KiB
#                sessions created (tools/sessclient.py load), VmRSS after the load (target <= 40 MiB).
#
# Every cluster of a section runs for the whole section (idle between its runs), so the rounds
# interleave the variants without restarts. PostgreSQL, MariaDB and Redis are started here on
# 127.0.0.1 (data in a temp dir under $OUT, removed at the end), as server/store/src/testing/servers.rs
# does; their Debian packages come from scripts/prereqs.sh, Tomcat's from the harness' setup.sh.
#
#   cargo build --release -p shoal && scripts/bench-persistent.sh            # all sections
#   scripts/bench-persistent.sh perrequest                                  # one section
#   quick: DURATION=2 WARMUP=1 REPEAT=1 LOAD_SESSIONS=5000 MAX_ACTIVE=500 scripts/bench-persistent.sh
#   STORES="sqlite redis" TOMCAT_RUN=0 scripts/bench-persistent.sh perrequest
#
# Writes $OUT/metrics.tsv (variant, key, value), $OUT/summary.md, raw wrk output and node logs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TOMCAT="${TOMCAT:-$HERE/../shared/peers/tomcat}"
[ -d "$TOMCAT" ] || TOMCAT=/work/shared/peers/tomcat
LUA="$TOMCAT/lua/session.lua"
LOADER="$TOMCAT/tools/sessclient.py"
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-5}" REPEAT="${REPEAT:-3}"
THREADS="${THREADS:-2}" CONNS="${CONNS:-32}"
STORES="${STORES-sqlite file redis postgres mysql}"
WB_STORES="${WB_STORES-sqlite redis}"
TOMCAT_RUN="${TOMCAT_RUN:-1}" TOMCAT_WARMUP="${TOMCAT_WARMUP:-8}"
LOAD_SESSIONS="${LOAD_SESSIONS:-100000}" LOAD_SIZE="${LOAD_SIZE:-1024}" MAX_ACTIVE="${MAX_ACTIVE:-10000}"
RSS_LIMIT_KIB="${RSS_LIMIT_KIB:-40960}"
PERF="${PERF:-$(command -v perf > /dev/null && echo 1 || echo 0)}"   # server replies counted with perf
CH_BASE="${CH_BASE:-23400}" HTTP_BASE="${HTTP_BASE:-23500}" ADMIN_BASE="${ADMIN_BASE:-23600}"
PG_PORT="${PG_PORT:-23701}" MARIADB_PORT="${MARIADB_PORT:-23702}" REDIS_PORT="${REDIS_PORT:-23703}"
PW=shoal-bench-pw
OUT="${OUT:-$HERE/target/bench-persistent}"
RUN="$OUT/run"
METRICS="$OUT/metrics.tsv"
SECTIONS="${*:-writebehind perrequest memory}"
export SHOAL_CLUSTER_SECRET="${SHOAL_CLUSTER_SECRET:-bench-persistent-secret-0123456789}"
export SHOAL_ADMIN_TOKEN="${SHOAL_ADMIN_TOKEN:-bench-persistent-admin-token-0123456789}"

command -v wrk > /dev/null || { echo "wrk not found: apt-get install wrk (scripts/prereqs.sh)" >&2; exit 1; }
[ -f "$LUA" ] || { echo "$LUA not found (set TOMCAT=<path to peers/tomcat>)" >&2; exit 1; }
SRC_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SRC_BIN" ] || { echo "build first: cargo build --release -p shoal" >&2; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN"
: > "$METRICS"
# A private copy: other builds of target/release/shoal during the run do not change what is measured.
BIN="$OUT/shoal"
cp "$SRC_BIN" "$BIN"

declare -A PID        # "<variant>:<i>" -> pid of a shoal node
declare -A SRV        # server kind -> pid (its own process group)
TOMCAT_UP=0
now_ms() { date +%s%3N; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
metric() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$METRICS"; }
get() { awk -F'\t' -v m="$1" -v k="$2" '$1 == m && $2 == k {print $3}' "$METRICS" | tail -1; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2> /dev/null; }
# VmRSS split: private memory (RssAnon) and mapped pages of the binary and libraries (RssFile).
rss_split() { awk '/^RssAnon:/{a=$2} /^RssFile:/{f=$2} END {printf "anon %.1f MiB + file %.1f MiB", a/1024, f/1024}' "/proc/$1/status" 2> /dev/null; }
wait_until() { # timeout_s what command...: polls the command until it succeeds or the deadline passes
  local deadline=$(( $(now_ms) + $1 * 1000 )) secs=$1 what=$2
  shift 2
  until "$@" > /dev/null 2>&1; do
    (( $(now_ms) < deadline )) || { echo "$what: not ready after $secs s" >&2; return 1; }
    sleep 0.05
  done
}

# ---- real store servers (loopback, data under $RUN/<kind>, own process group) ----------------
start_redis() {
  local d="$RUN/redis"
  mkdir -p "$d"
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --requirepass "$PW" --daemonize no --dir "$d" > "$d/server.log" 2>&1 &
  SRV[redis]=$!
  wait_until 30 "redis-server (see $d/server.log)" redis-cli -p "$REDIS_PORT" -a "$PW" --no-auth-warning ping
}

start_postgres() {
  local d="$RUN/postgres" bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)"
  [ -x "$bin/initdb" ] || { echo "postgres: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql; scripts/prereqs.sh)" >&2; return 1; }
  mkdir -p "$d"
  echo "$PW" > "$d/pw"
  local as=()
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$d"; as=(runuser -u postgres --); fi
  "${as[@]}" "$bin/initdb" -D "$d/data" -U shoal --auth=scram-sha-256 -E UTF8 --locale=C --no-sync \
    --pwfile="$d/pw" > "$d/initdb.log" 2>&1 || { echo "initdb failed: $(tail -5 "$d/initdb.log")" >&2; return 1; }
  setsid "${as[@]}" "$bin/postgres" -D "$d/data" -h 127.0.0.1 -p "$PG_PORT" -F -k "$d" \
    -c shared_buffers=32MB -c max_connections=50 > "$d/server.log" 2>&1 &
  SRV[postgres]=$!
  wait_until 60 "postgres (see $d/server.log)" pg_query "select 1"
}
pg_query() { PGPASSWORD=$PW psql -h 127.0.0.1 -p "$PG_PORT" -U shoal -d postgres -Atqc "$1"; }

start_mariadb() {
  local d="$RUN/mariadb" user=--skip-name-resolve
  [ "$(id -u)" = 0 ] && user=--user=root
  mkdir -p "$d"
  mariadb-install-db --no-defaults --datadir="$d/data" --auth-root-authentication-method=normal \
    --skip-test-db "$user" > "$d/install.log" 2>&1 || { echo "mariadb-install-db failed: $(tail -5 "$d/install.log")" >&2; return 1; }
  setsid mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysqld.sock" --pid-file="$d/mysqld.pid" \
    --port="$MARIADB_PORT" --bind-address=127.0.0.1 "$user" --skip-log-bin --innodb-buffer-pool-size=32M \
    --innodb-flush-log-at-trx-commit=2 --max-allowed-packet=64M > "$d/server.log" 2>&1 &
  SRV[mysql]=$!
  wait_until 90 "mariadbd (see $d/server.log)" mariadb --no-defaults --socket="$d/mysqld.sock" -uroot -e "select 1"
  mariadb --no-defaults --socket="$d/mysqld.sock" -uroot -e "CREATE DATABASE IF NOT EXISTS shoal;
    CREATE USER IF NOT EXISTS 'shoal'@'%' IDENTIFIED BY '$PW'; CREATE USER IF NOT EXISTS 'shoal'@'localhost' IDENTIFIED BY '$PW';
    GRANT ALL ON shoal.* TO 'shoal'@'%'; GRANT ALL ON shoal.* TO 'shoal'@'localhost';"
}
mariadb_status() { mariadb --no-defaults --socket="$RUN/mariadb/mysqld.sock" -uroot -N -e "SHOW GLOBAL STATUS LIKE '$1'" | awk '{print $2}'; }

start_server() { # kind: postgres | mysql | redis started once; sqlite | file need none
  [[ "$1" =~ ^(postgres|mysql|redis)$ ]] || return 0
  [ -n "${SRV[$1]:-}" ] && return 0
  log "starting $1 on 127.0.0.1"
  case $1 in
    postgres) start_postgres ;;
    mysql) start_mariadb ;;
    redis) start_redis ;;
  esac
}

# Store ops as the server counts them (a command or statement each), for the round-trip check.
server_ops() { # kind -> count
  case $1 in
    postgres) pg_query "select xact_commit + xact_rollback from pg_stat_database where datname = 'postgres'" ;;
    mysql) mariadb_status Questions ;;
    # The commands shoal sends at top level (HMGET: load, EVALSHA/EVAL: a compare-and-set
    # script, PING): the commands the scripts run inside count in commandstats too.
    redis) redis-cli -p "$REDIS_PORT" -a "$PW" --no-auth-warning info commandstats | tr -d '\r' |
      awk -F'[:=,]' '$1 ~ /^cmdstat_(hmget|evalsha|eval|ping)$/ {s += $3} END {print s + 0}' ;;
    *) echo "" ;;
  esac
}
# What one server_ops call adds to the count itself (its own statement or command).
server_ops_self() { case $1 in postgres | mysql) echo 1 ;; *) echo 0 ;; esac; }

# Round trips as the server sees them: the replies it sends (one send per answered message:
# a statement, a command, or a driver's ping, which the counters above do not see), counted
# with perf on the server's processes while wrk runs. PostgreSQL: sendto of the client
# backends; MariaDB: sendto of mariadbd; Redis: write of redis-server (no persistence here).
server_pids() { # kind -> comma-separated pids
  case $1 in
    postgres) pg_query "select string_agg(pid::text, ',') from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()" ;;
    mysql | redis) echo "${SRV[$1]}" ;;
  esac
}
perf_start() { # kind file -> pid of perf (empty: not counted)
  local pids ev=syscalls:sys_enter_sendto
  [[ "$1" =~ ^(postgres|mysql|redis)$ ]] && [ "$PERF" = 1 ] || return 0
  [ "$1" = redis ] && ev=syscalls:sys_enter_write
  pids="$(server_pids "$1")"
  [ -n "$pids" ] || return 0
  perf stat -x, -e "$ev" -p "$pids" -o "$2" > /dev/null 2>&1 &
  echo $!
}
perf_stop() { # perf-pid file -> count
  [ -n "$1" ] || return 0
  kill -INT "$1" 2> /dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2> /dev/null || break; sleep 0.05; done
  awk -F, '/sys_enter/ {print $1}' "$2" | head -1
}

store_toml() { # kind variant -> the [..session.store] table
  case $1 in
    sqlite) printf 'kind = "sqlite"\npath = "%s"\n' "$RUN/$2/sessions.db" ;;
    file) printf 'kind = "file"\ndirectory = "%s"\n' "$RUN/$2/store" ;; # shared by the nodes (flock per id)
    redis) printf 'kind = "redis"\nurl = "redis://:%s@127.0.0.1:%s/0"\nkey_prefix = "%s"\n' "$PW" "$REDIS_PORT" "$2" ;;
    postgres) printf 'kind = "postgres"\nconnection_url = "postgres://shoal@127.0.0.1:%s/postgres"\nconnection_password = "%s"\nsession_table = "%s"\n' \
      "$PG_PORT" "$PW" "${2//-/_}" ;;
    mysql) printf 'kind = "mysql"\nconnection_url = "mysql://shoal@127.0.0.1:%s/shoal"\nconnection_password = "%s"\nsession_table = "%s"\n' \
      "$MARIADB_PORT" "$PW" "${2//-/_}" ;;
  esac
}

# ---- shoal clusters -----------------------------------------------------------------------------
# Variant k (0, 1, ...) of a section uses ports BASE + 10 k + i for its node i.
port() { echo $(($1 + 10 * $2 + $3)); } # base k i

start_cluster() { # variant k nodes config-template ($NODE replaced per node)
  local v=$1 k=$2 n=$3 tpl=$4 i j members=() workers
  workers=$(( $(nproc) / n > 0 ? $(nproc) / n : 1 ))
  for ((j = 1; j <= n; j++)); do members+=(--member "127.0.0.1:$(port "$CH_BASE" "$k" "$j")"); done
  mkdir -p "$RUN/$v"
  for ((i = 1; i <= n; i++)); do
    sed "s/\${NODE}/$i/g" "$tpl" > "$RUN/$v/node$i.toml"
    (cd "$RUN/$v" && exec "$BIN" node --worker-threads "$workers" --name "node$i" --port "$(port "$CH_BASE" "$k" "$i")" \
      "${members[@]}" --http-port "$(port "$HTTP_BASE" "$k" "$i")" --admin-port "$(port "$ADMIN_BASE" "$k" "$i")" \
      --config "$RUN/$v/node$i.toml" > "$RUN/$v/node$i.out" 2> "$RUN/$v/node$i.log") &
    PID[$v:$i]=$!
    wait_until 30 "$v node$i (see $RUN/$v/node$i.log)" node_serving "${PID[$v:$i]}" "$(port "$HTTP_BASE" "$k" "$i")" ||
      { tail -3 "$RUN/$v/node$i.log" >&2; return 1; }
    kill -0 "${PID[$v:$i]}" 2> /dev/null || { echo "$v node$i exited: $(head -3 "$RUN/$v/node$i.log")" >&2; return 1; }
  done
  if ((n > 1)); then
    for ((i = 1; i <= n; i++)); do
      wait_until 30 "$v node$i members" members_are "$(port "$HTTP_BASE" "$k" "$i")" $((n - 1))
    done
  fi
}
node_serving() { # pid http-port: an exited node stops the wait at once (its log says why)
  kill -0 "$1" 2> /dev/null || return 0
  curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$2/app/stats"
}
members_are() { curl -s --max-time 1 "http://127.0.0.1:$1/app/stats" | tr ' ' '\n' | grep -qx "members=$2"; }

stop_variant() { # variant
  local key p
  for key in "${!PID[@]}"; do
    [[ "$key" == "$1:"* ]] || continue
    p=${PID[$key]}
    kill "$p" 2> /dev/null || true
    wait "$p" 2> /dev/null || true
    unset "PID[$key]"
  done
}

cleanup() {
  local key p
  for key in "${!PID[@]}"; do kill "${PID[$key]}" 2> /dev/null || true; done
  for key in "${!PID[@]}"; do wait "${PID[$key]}" 2> /dev/null || true; done
  if [ "$TOMCAT_UP" = 1 ]; then RUN_DIR="$OUT/tomcat/run" "$OUT/tomcat/stop-cluster.sh" > /dev/null 2>&1 || true; fi
  for key in "${!SRV[@]}"; do
    p=${SRV[$key]}
    kill -TERM -- "-$p" 2> /dev/null || true
  done
  for key in "${!SRV[@]}"; do
    p=${SRV[$key]}
    for _ in $(seq 100); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2> /dev/null || true
    wait "$p" 2> /dev/null || true
  done
  rm -rf "$RUN/postgres/data" "$RUN/mariadb/data"
}
trap cleanup EXIT

store_counter() { # admin-port name -> sum over contexts of shoal_store_<name>_total
  curl -s --max-time 5 -H "Authorization: Bearer $SHOAL_ADMIN_TOKEN" "http://127.0.0.1:$1/metrics" | awk -v n="shoal_store_$2_total" '$1 ~ "^" n "[{ ]" || $1 == n {s += $NF} END {print s + 0}'
}

# ---- load generator -----------------------------------------------------------------------------
WRK_CMD="wrk -t$THREADS -c$CONNS -d${DURATION}s --timeout 5s --latency -s lua/session.lua http://127.0.0.1:<node1>/app/counter -- $((CONNS / THREADS))"
warmup() { # http-port seconds
  wrk -t"$THREADS" -c"$CONNS" -d"$2s" -s "$LUA" "http://127.0.0.1:$1/app/counter" -- $((CONNS / THREADS)) > /dev/null 2>&1 || true
}
wrk_run() { # variant http-port round -> metrics <variant> r<round>.<key>
  local v=$1 p=$2 r=$3 f line k
  f="$OUT/wrk-$v-$r.txt"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$LUA" \
    "http://127.0.0.1:$p/app/counter" -- $((CONNS / THREADS)) > "$f" 2>&1 || true
  line="$(grep '^RESULT' "$f" || true)"
  [ -n "$line" ] || { metric "$v" "r$r.error" "no wrk result ($f)"; return; }
  for k in requests rps p50_ms p99_ms err_status err_timeout err_connect err_read; do
    metric "$v" "r$r.$k" "$(tr ' ' '\n' <<< "$line" | sed -n "s/^$k=//p")"
  done
  log "$v r$r: $(tr ' ' '\n' <<< "$line" | grep -E '^(rps|p99_ms|err_status)=' | tr '\n' ' ')"
}
median() { # variant key -> "median min max" over the rounds
  awk -F'\t' -v m="$1" -v re="^r[0-9]+[.]$2\$" '$1 == m && $2 ~ re {print $3}' "$METRICS" | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR]; else printf "0 0 0"}'
}
med1() { # variant key -> the median, or - without data
  awk -F'\t' -v m="$1" -v re="^r[0-9]+[.]$2\$" '$1 == m && $2 ~ re {print $3}' "$METRICS" | sort -g |
    awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "-"}'
}
total() { awk -F'\t' -v m="$1" -v re="^r[0-9]+[.]$2\$" '$1 == m && $2 ~ re {s += $3} END {print s + 0}' "$METRICS"; }

# ---- 1. write-behind behind DeltaManager sync -----------------------------------------------------
writebehind() {
  local variants=(delta-sync) k v s cfg r
  for s in $WB_STORES; do variants+=("delta-sync+$s"); done
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v=${variants[$k]}
    s=${v#delta-sync}
    s=${s#+}
    [ -z "$s" ] || start_server "$s"
    mkdir -p "$RUN/$v"
    cfg="$RUN/$v/template.toml"
    printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "delta"\nreplication = "sync"\n' > "$cfg"
    [ -z "$s" ] || printf '\n[http.contexts.session.store]\n%s' "$(store_toml "$s" "wb-$s")" >> "$cfg"
    log "writebehind: $v, 3 nodes"
    start_cluster "$v" "$k" 3 "$cfg"
    warmup "$(port "$HTTP_BASE" "$k" 1)" "$WARMUP"
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for ((k = 0; k < ${#variants[@]}; k++)); do
      wrk_run "${variants[$k]}" "$(port "$HTTP_BASE" "$k" 1)" "$r"
    done
  done
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v=${variants[$k]}
    metric "$v" "write_behind" "$(curl -s --max-time 2 -H "Authorization: Bearer $SHOAL_ADMIN_TOKEN" "http://127.0.0.1:$(port "$ADMIN_BASE" "$k" 1)/metrics" | grep -E '^shoal_write_behind' | tr '\n' ' ')"
    stop_variant "$v"
  done
  WB_VARIANTS="${variants[*]}"
}

# ---- 2 + 3. per-request mode on each store, Tomcat's PersistentValve in the same rounds ----------
tomcat_up() {
  local t="$OUT/tomcat"
  rm -rf "$t"
  cp -r "$TOMCAT" "$t"
  chmod -R u+w "$t"
  rm -rf "$t/run" "$t/results"
  log "tomcat: setup.sh (apt packages, webapp), PERSISTENT_VALVE=1 ./run-cluster.sh 2 persistent"
  "$t/setup.sh" > "$OUT/tomcat-setup.txt" 2>&1 || { echo "tomcat harness setup failed: $(tail -5 "$OUT/tomcat-setup.txt")" >&2; return 1; }
  TOMCAT_UP=1
  PERSISTENT_VALVE=1 RUN_DIR="$t/run" "$t/run-cluster.sh" 2 persistent > "$OUT/tomcat-run-cluster.txt" 2>&1 ||
    { echo "tomcat cluster did not start: $(tail -5 "$OUT/tomcat-run-cluster.txt")" >&2; return 1; }
  cp "$t/run/node1/conf/context.xml" "$OUT/tomcat-context-node1.xml"
  # The harness' JVM warm-up (bench.sh: one run on /app/counter and one on /app/set).
  warmup 18081 "$TOMCAT_WARMUP"
  wrk -t"$THREADS" -c"$CONNS" -d"${TOMCAT_WARMUP}s" -s "$LUA" "http://127.0.0.1:18081/app/set?key=data&size=1024" -- $((CONNS / THREADS)) > /dev/null 2>&1 || true
}

perrequest() {
  local variants=() k v s cfg r a1 l0 l1 s0 s1 o0 o1 req self pp replies
  for s in $STORES; do variants+=("per-request+$s"); done
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v=${variants[$k]}
    s=${v#per-request+}
    start_server "$s"
    mkdir -p "$RUN/$v"
    cfg="$RUN/$v/template.toml"
    printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "persistent"\n\n[http.contexts.session.persistent]\nmode = "per-request"\n\n[http.contexts.session.store]\n%s' \
      "$(store_toml "$s" "pr-$s")" > "$cfg"
    log "perrequest: $v, 2 nodes"
    start_cluster "$v" $((k + 3)) 2 "$cfg"
    warmup "$(port "$HTTP_BASE" $((k + 3)) 1)" "$WARMUP"
  done
  [ "$TOMCAT_RUN" = 0 ] || tomcat_up || TOMCAT_RUN=0
  for ((r = 1; r <= REPEAT; r++)); do
    [ "$TOMCAT_RUN" = 0 ] || wrk_run tomcat-persistent-valve 18081 "$r"
    for ((k = 0; k < ${#variants[@]}; k++)); do
      v=${variants[$k]}
      s=${v#per-request+}
      a1=$(port "$ADMIN_BASE" $((k + 3)) 1)
      l0=$(store_counter "$a1" loads) s0=$(store_counter "$a1" saves) o0=$(server_ops "$s")
      pp=$(perf_start "$s" "$OUT/perf-$v-$r.txt")
      wrk_run "$v" "$(port "$HTTP_BASE" $((k + 3)) 1)" "$r"
      replies=$(perf_stop "$pp" "$OUT/perf-$v-$r.txt")
      l1=$(store_counter "$a1" loads) s1=$(store_counter "$a1" saves) o1=$(server_ops "$s")
      req=$(get "$v" "r$r.requests")
      metric "$v" "r$r.loads" $((l1 - l0))
      metric "$v" "r$r.saves" $((s1 - s0))
      metric "$v" "r$r.conflicts" "$(store_counter "$a1" conflicts)"
      if [ -n "$o0" ] && [ -n "$o1" ]; then
        self=$(server_ops_self "$s")
        # Other traffic of the node in those seconds (its background pass: a sweep query a tick
        # at most) is counted too: an upper bound.
        metric "$v" "r$r.server_ops" $((o1 - o0 - self))
      fi
      if [ -n "$req" ] && ((req > 0)); then
        metric "$v" "r$r.loads_per_req" "$(awk -v a=$((l1 - l0)) -v n="$req" 'BEGIN {printf "%.3f", a / n}')"
        metric "$v" "r$r.saves_per_req" "$(awk -v a=$((s1 - s0)) -v n="$req" 'BEGIN {printf "%.3f", a / n}')"
        [ -z "$o0" ] || [ -z "$o1" ] || metric "$v" "r$r.server_ops_per_req" "$(awk -v a=$((o1 - o0 - self)) -v n="$req" 'BEGIN {printf "%.3f", a / n}')"
        [ -z "$replies" ] || metric "$v" "r$r.server_replies_per_req" "$(awk -v a="$replies" -v n="$req" 'BEGIN {printf "%.3f", a / n}')"
      fi
    done
  done
  for ((k = 0; k < ${#variants[@]}; k++)); do stop_variant "${variants[$k]}"; done
  if [ "$TOMCAT_UP" = 1 ]; then
    cp "$OUT/tomcat/run/node1/logs/catalina.out" "$OUT/tomcat-node1.log" 2> /dev/null || true
    RUN_DIR="$OUT/tomcat/run" "$OUT/tomcat/stop-cluster.sh" > /dev/null 2>&1 || true
    TOMCAT_UP=0
  fi
  PR_VARIANTS="${variants[*]}"
}

# ---- 4. memory: 100,000 x 1 KiB sessions, 10,000 in memory -------------------------------------
memory() {
  local v=memory k=9 cfg p rows
  mkdir -p "$RUN/$v"
  cfg="$RUN/$v/template.toml"
  printf '[http]\nbind = "127.0.0.1"\n\n[[http.contexts]]\npath = "/app"\n\n[http.contexts.session]\nmanager = "persistent"\n\n[http.contexts.session.persistent]\nmax_active_sessions = %s\n\n[http.contexts.session.store]\n%s' \
    "$MAX_ACTIVE" "$(store_toml sqlite "$v")" > "$cfg"
  log "memory: 1 node, sticky on SQLite, max_active_sessions = $MAX_ACTIVE, $LOAD_SESSIONS x $LOAD_SIZE B sessions"
  start_cluster "$v" "$k" 1 "$cfg"
  p=${PID[$v:1]}
  metric "$v" "rss_kib_idle" "$(rss_kib "$p")"
  metric "$v" "rss_split_idle" "$(rss_split "$p")"
  metric "$v" "load" "$(python3 "$LOADER" load --port "$(port "$HTTP_BASE" "$k" 1)" --sessions "$LOAD_SESSIONS" --size "$LOAD_SIZE")"
  metric "$v" "rss_kib_loaded" "$(rss_kib "$p")"
  metric "$v" "stats_after_load" "$(curl -s --max-time 2 "http://127.0.0.1:$(port "$HTTP_BASE" "$k" 1)/app/stats")"
  sleep 3 # the background pass (every process_expires_frequency ticks of 1 s) has run since
  metric "$v" "rss_kib_loaded_3s" "$(rss_kib "$p")"
  metric "$v" "rss_split_loaded_3s" "$(rss_split "$p")"
  metric "$v" "vmhwm_kib" "$(awk '/^VmHWM:/{print $2}' "/proc/$p/status")"
  rows="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from tomcat_sessions").fetchone()[0])' "$RUN/$v/sessions.db" 2>&1 || true)"
  metric "$v" "store_rows" "$rows"
  metric "$v" "metrics" "$(curl -s --max-time 2 -H "Authorization: Bearer $SHOAL_ADMIN_TOKEN" "http://127.0.0.1:$(port "$ADMIN_BASE" "$k" 1)/metrics" | grep -E '^shoal_(store_(loads|saves|errors)|sessions_active)' | tr '\n' ' ')"
  log "memory: RSS idle $(get "$v" rss_kib_idle) KiB, after the load $(get "$v" rss_kib_loaded) KiB, 3 s later $(get "$v" rss_kib_loaded_3s) KiB; rows in the store: $rows"
  stop_variant "$v"
}

# ---- summary -----------------------------------------------------------------------------------
summary() {
  local v rm rmin rmax p99 pmin pmax base tc
  if [[ " $SECTIONS " == *" writebehind "* ]]; then
    echo "### 1. Write-behind behind DeltaManager sync (3 nodes, wrk on node1, /app/counter)"
    echo
    echo "| variant | req/s median [min–max] | p99 ms median [min–max] | vs no store | non-2xx |"
    echo "|---|---:|---:|---:|---:|"
    read -r base _ _ <<< "$(median delta-sync rps)"
    for v in $WB_VARIANTS; do
      read -r rm rmin rmax <<< "$(median "$v" rps)"
      read -r p99 pmin pmax <<< "$(median "$v" p99_ms)"
      printf '| %s | %.0f [%.0f–%.0f] | %s [%s–%s] | %s | %s |\n' "$v" "$rm" "$rmin" "$rmax" "$p99" "$pmin" "$pmax" \
        "$(awk -v a="$rm" -v b="$base" 'BEGIN {if (b > 0) printf "%.0f%%", 100 * a / b; else print "-"}')" "$(total "$v" err_status)"
    done
    echo
  fi
  if [[ " $SECTIONS " == *" perrequest "* ]]; then
    echo "### 2./3. Per-request mode (PersistentValve), 2 nodes, wrk on node1, /app/counter"
    echo
    echo "| variant | req/s median [min–max] | p99 ms median [min–max] | loads/req | saves/req | server ops/req | server replies/req | vs Tomcat | non-2xx | conflicts |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    read -r tc _ _ <<< "$(median tomcat-persistent-valve rps)"
    for v in tomcat-persistent-valve $PR_VARIANTS; do
      [ "$v" != tomcat-persistent-valve ] || [ "$TOMCAT_RUN" != 0 ] || continue
      read -r rm rmin rmax <<< "$(median "$v" rps)"
      read -r p99 pmin pmax <<< "$(median "$v" p99_ms)"
      printf '| %s | %.0f [%.0f–%.0f] | %s [%s–%s] | %s | %s | %s | %s | %s | %s | %s |\n' "$v" "$rm" "$rmin" "$rmax" "$p99" "$pmin" "$pmax" \
        "$(med1 "$v" loads_per_req)" "$(med1 "$v" saves_per_req)" "$(med1 "$v" server_ops_per_req)" "$(med1 "$v" server_replies_per_req)" \
        "$(awk -v a="$rm" -v b="${tc:-0}" 'BEGIN {if (b > 0) printf "%.1fx", a / b; else print "-"}')" \
        "$(total "$v" err_status)" "$(awk -F'\t' -v m="$v" '$1 == m && $2 ~ /conflicts$/ {c = $3} END {print c + 0}' "$METRICS")"
    done
    [ "$TOMCAT_RUN" != 0 ] || echo "(Tomcat not measured: TOMCAT_RUN=0 or its harness failed, see above)"
    echo
    echo "loads/saves per request: shoal_store_loads_total / shoal_store_saves_total of node1's /metrics, delta over the run / wrk's requests (a new session costs 1 save and no load). server ops/req: PostgreSQL xact_commit + xact_rollback, MariaDB Questions, Redis calls of HMGET + EVALSHA + EVAL + PING (commandstats), delta / requests (a driver's ping is not a statement for the SQL servers). server replies/req: the server's reply syscalls (perf: sendto of the PostgreSQL client backends and of mariadbd, write of redis-server) / requests: every round trip, pings included."
    echo
  fi
  if [[ " $SECTIONS " == *" memory "* ]]; then
    echo "### 4. Memory: $LOAD_SESSIONS x $LOAD_SIZE B sessions, max_active_sessions = $MAX_ACTIVE (sticky, SQLite)"
    echo
    printf 'VmRSS idle %.1f MiB; after the load %.1f MiB; 3 s later %.1f MiB (VmHWM %.1f MiB); limit %.0f MiB; rows in the store: %s\n\n' \
      "$(awk '{print $1 / 1024}' <<< "$(get memory rss_kib_idle)")" "$(awk '{print $1 / 1024}' <<< "$(get memory rss_kib_loaded)")" \
      "$(awk '{print $1 / 1024}' <<< "$(get memory rss_kib_loaded_3s)")" "$(awk '{print $1 / 1024}' <<< "$(get memory vmhwm_kib)")" \
      "$(awk -v l="$RSS_LIMIT_KIB" 'BEGIN {print l / 1024}')" "$(get memory store_rows)"
    echo "VmRSS split: idle $(get memory rss_split_idle); loaded $(get memory rss_split_loaded_3s)"
    echo
    echo "load: $(get memory load)"
    echo "after the load: $(get memory stats_after_load)"
  fi
}

T0=$(now_ms)
{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ) git=$(git -C "$HERE" rev-parse --short HEAD 2> /dev/null || echo ?) sections: $SECTIONS"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}') cmd: $WRK_CMD; warm-up ${WARMUP} s (Tomcat ${TOMCAT_WARMUP} s x2 as bench.sh); median of $REPEAT interleaved rounds"
} > "$OUT/env.txt"
WB_VARIANTS="" PR_VARIANTS=""
for s in $SECTIONS; do
  case $s in
    writebehind) writebehind ;;
    perrequest) perrequest ;;
    memory) memory ;;
    *) echo "unknown section $s (writebehind | perrequest | memory)" >&2; exit 2 ;;
  esac
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); total $(( ($(now_ms) - T0) / 1000 )) s" >> "$OUT/env.txt"
{ cat "$OUT/env.txt"; echo; summary; } > "$OUT/summary.md"
cat "$OUT/summary.md"
