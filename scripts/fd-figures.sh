#!/usr/bin/env bash
# Failure detection under delay and loss (issue #12), figures for docs/failure-detection.md:
# three nodes in network namespaces, every link through a fault proxy with 50 ± 5 ms delay,
# 5% of every node's cluster packets dropped (nftables). Each round watches the live cluster
# for SHOAL_FD_SECS (any member dropped fails the run: a false drop), then kills one node
# with kill -9 and times its drop on both others (must be <= 1 s), then restarts it.
#
#   scripts/fd-figures.sh [seconds per round, default 60] [rounds, default 5]
#
# Needs root, iproute2 and nftables (scripts/prereqs.sh); SHOAL_BIN as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHOAL_FD_SECS="${1:-60}" SHOAL_FD_ROUNDS="${2:-5}"
cargo test -p shoal-tests --test faults_delay -- --exact --nocapture \
  failure_detector_under_delay_and_loss_drops_no_live_member_and_a_dead_one_within_1s 2>&1 \
  | grep -E '^fd |test result|panicked'
