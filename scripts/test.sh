#!/usr/bin/env bash
# The test command of the README. Installs what a fresh machine lacks, builds once, runs
# every test of the workspace (unit, deterministic simulation, multi-process on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
export CARGO_TERM_COLOR=never
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast
