#!/usr/bin/env bash
# The test command of the README. Installs what a fresh machine lacks, builds once, runs
# every test of the workspace (unit, deterministic simulation, multi-process on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
export CARGO_TERM_COLOR=never
# A one-shot build gains nothing from incremental state (GBs on disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --workspace --all-targets
status=0
# The README's first command (`cargo run --release -p shoal -- demo`) must serve the Wasm app,
# not fall back to the native one (e.g. a missing wasm32 target, a stale build-script result).
# The components come from the same build script in both profiles, so the binary the build
# above made checks it (no second build of wasmtime with other features).
"${CARGO_TARGET_DIR:-target}/debug/shoal" demo --check || status=1
mkdir -p target
cargo test --workspace --no-fail-fast 2>&1 | tee target/cargo-test.log || status=1
# The admin API fuzzed against its own OpenAPI document (schemathesis, PyPI), and the admin
# UI driven in headless Chromium against three real nodes (screenshots: target/ui-screenshots).
scripts/schemathesis.sh || status=1
SHOAL_UI_CLUSTER=1 scripts/ui-test.sh || status=1
# The five-minute plugin path of plugins/README.md, literally, on a 3-node demo.
SHOAL_BIN="${CARGO_TARGET_DIR:-target}/debug/shoal" scripts/plugin-path.sh || status=1
# A short run of every fuzz target of tests/fuzz/ (libFuzzer; FUZZ_SECS each, default 45): a
# crash fails the suite, naming the target and the crashing input under tests/fuzz/artifacts/.
# Its instrumented build has its own target dir (<target>/fuzz) and no wasmtime or sqlx
# (docs/fuzzing.md has the build time and the long runs' figures).
scripts/fuzz.sh "${FUZZ_SECS:-45}" || status=1
# One closing line over every cargo test binary (each prints its own `test result:` line).
awk '/^test result:/ {p += $4; f += $6} END {printf "total: %d passed, %d failed\n", p, f}' target/cargo-test.log
exit $status
