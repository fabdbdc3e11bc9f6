#!/usr/bin/env bash
# Runs every configuration BENCHMARKS.md reports, RUNS times each, and appends one JSON line
# per run to benches/results.jsonl (tagged with the configuration and the date).
#   bash benches/run-all.sh            # RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results.jsonl}
source benches/common.sh
repeat() {
  local tag=$1; shift
  for i in $(seq 1 "$RUNS"); do
    run "$tag" "$@"
  done
}
repeat one-user          --users 1    --duration 30 --latency-ms 0   --status-seconds 10
repeat 64-users          --users 64   --duration 60 --latency-ms 0   --status-seconds 10
repeat 1000-users-150ms  --users 1000 --duration 60 --latency-ms 150 --status-seconds 5
repeat 64-users-1M       --users 64   --duration 60 --latency-ms 0   --status-seconds 5 --prefill-users 1000000
