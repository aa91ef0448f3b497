#!/usr/bin/env bash
# Issue #12's figure: time from a heal to a fully reconciled cluster with SESSIONS (10,000)
# sessions created on each side of a partition (3 nodes, each in a network namespace; node3
# isolated; delta sync, partition = "available"). Runs tests/tests/split_heal_figure.rs
# REPEAT times against a release binary and prints each time and the median.
#
#   cargo build --release -p shoal && sudo scripts/bench-heal.sh
#   SHOAL_BIN=/path/to/shoal REPEAT=5 SESSIONS=10000 scripts/bench-heal.sh
# Needs root, iproute2 and nftables (like the netns tests).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
REPEAT="${REPEAT:-5}"
export SESSIONS="${SESSIONS:-10000}"
export SHOAL_BIN="${SHOAL_BIN:-$HERE/target/release/shoal}"
[ -x "$SHOAL_BIN" ] || { echo "build first: cargo build --release -p shoal" >&2; exit 1; }
cd "$HERE"
cargo test -p shoal-tests --test split_heal_figure --no-run >&2
times=()
for i in $(seq "$REPEAT"); do
  out="$(cargo test -q -p shoal-tests --test split_heal_figure -- --nocapture 2>&1)" || {
    echo "$out" >&2; exit 1; }
  ms="$(echo "$out" | sed -n 's/.*heal-to-reconciled: \([0-9]*\) ms.*/\1/p' | head -1)"
  [ -n "$ms" ] || { echo "no figure in the output:" >&2; echo "$out" >&2; exit 1; }
  echo "run $i: $ms ms"
  times+=("$ms")
done
median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
echo "median heal-to-reconciled: $median ms over $REPEAT runs ($SESSIONS sessions on each side)"
