#!/usr/bin/env bash
# Runs every fuzz target of tests/fuzz/ (cargo-fuzz, libFuzzer) for N seconds each, one after the
# other. A crash (a panic, an input slower than FUZZ_TIMEOUT seconds, more than 2 GiB) fails the
# script: every target still runs, then it exits 1; each crash is reported with the target, the
# crashing input's path under tests/fuzz/artifacts/<target>/ and the command to replay it.
# scripts/test.sh runs it with 45 s per target. docs/fuzzing.md has the targets and the figures.
#
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 3600 frame_decode   # stop after N executions
#   FUZZ_MAX_LEN=8192 (default 65536): the longest input tried
#   FUZZ_TIMEOUT=10 (default): seconds one input may take before it counts as a crash (a hang)
#
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. The fuzz crate has
# its own target dir (FUZZ_TARGET_DIR) so its instrumented build never touches the
# workspace's artifacts. The corpus grows in $FUZZ_TARGET_DIR/corpus/<target>, seeded from
# tests/fuzz/seeds/<target> (committed, small).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
# cargo-fuzz: scripts/fuzz.sh (libFuzzer targets in tests/fuzz/, run on the stable toolchain with
# RUSTC_BOOTSTRAP=1). Built once into ~/.cargo/bin; skipped when present.
if ! command -v cargo-fuzz >/dev/null; then
  echo "prereqs: installing cargo-fuzz (scripts/fuzz.sh)"
  cargo install --locked --quiet cargo-fuzz --version 0.13.2 \
    || { echo "prereqs: could not install cargo-fuzz; install it with 'cargo install cargo-fuzz'" >&2; exit 1; }
fi
secs="${1:-60}"
shift || true
root="$(pwd)"
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(frame_decode handshake session_message lean_request lean_chunked admin_json node_config)
fi
export RUSTC_BOOTSTRAP=1
# Release with debug assertions and overflow checks (an overflow in a parser is a finding);
# no sanitizer: the code under test is safe Rust, and ASan would halve the executions.
flags=(--fuzz-dir tests/fuzz -O -a -s none --target-dir "$target_dir")
runs=()
[ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
start=$(date +%s)
cargo fuzz build "${flags[@]}"
echo "fuzz: build took $(( $(date +%s) - start )) s"
status=0
for t in "${targets[@]}"; do
  corpus="$target_dir/corpus/$t"
  mkdir -p "$corpus" "tests/fuzz/artifacts/$t"
  log="$target_dir/$t.log"
  echo "fuzz: $t for ${secs} s"
  if ! cargo fuzz run "${flags[@]}" "$t" "$corpus" "tests/fuzz/seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 \
      -timeout="${FUZZ_TIMEOUT:-10}" -artifact_prefix="tests/fuzz/artifacts/$t/" "${runs[@]}" >"$log" 2>&1; then
    # libFuzzer names the file it wrote: "Test unit written to <path>".
    artifact=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/^Test unit written to //' || true)
    echo "fuzz: $t CRASHED: input ${artifact:-(none written; see the log)}; log $log" >&2
    echo "fuzz: replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $t ${artifact:-tests/fuzz/artifacts/$t/<file>}" >&2
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -5 >&2 || true
    status=1
    continue
  fi
  done_runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  speed=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  units=$(find "$corpus" -type f | wc -l)
  echo "fuzz: $t ok: $done_runs executions, $speed exec/s, corpus $units inputs"
done
exit $status
