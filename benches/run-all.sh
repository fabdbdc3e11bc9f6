#!/usr/bin/env bash
# Runs every configuration BENCHMARKS.md reports, RUNS times each, and appends one JSON line
# per run to benches/results.jsonl (tagged with the configuration and the date).
#   bash benches/run-all.sh            # RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results.jsonl}
cargo build --release --quiet
# `cargo bench` builds target/release/loginwith again with the test-support feature on (the
# dev-dependency on this crate turns it on): the binary measured is a copy of the one built
# as people build it.
mkdir -p target/bench && cp target/release/loginwith target/bench/loginwith
cargo bench --bench login --no-run --quiet 2>/dev/null
run() {
  local tag=$1; shift
  for i in $(seq 1 "$RUNS"); do
    echo "== $tag, run $i/$RUNS: $*" >&2
    line=$(cargo bench --quiet --bench login -- --bin target/bench/loginwith "$@" | tail -n 1)
    echo "{\"config\":\"$tag\",\"date\":\"$(date -u +%FT%TZ)\",\"result\":$line}" >> "$OUT"
  done
}
run one-user          --users 1    --duration 30 --latency-ms 0   --status-seconds 10
run 64-users          --users 64   --duration 60 --latency-ms 0   --status-seconds 10
run 1000-users-150ms  --users 1000 --duration 60 --latency-ms 150 --status-seconds 5
run 64-users-1M       --users 64   --duration 60 --latency-ms 0   --status-seconds 5 --prefill-users 1000000
