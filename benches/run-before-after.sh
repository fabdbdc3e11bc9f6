#!/usr/bin/env bash
# One change measured alone, before and after, in the same window: this build and BASE_BIN (a
# release build of the commit before), interleaved so that a slow spell of the machine does
# not land on one of them, on SQLite and on PostgreSQL (one instance). 64 users with a
# zero-latency provider: CPU, statements and throughput per sign-in, then /get-status and
# /auth/check, 5 s each. One JSON line per run in benches/results.jsonl, tagged TAG-….
#   BASE_BIN=/path/to/older/loginwith TAG=issue24-sqlx09 bash benches/run-before-after.sh
# Run it on a quiet machine: the load generator shares the cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results.jsonl}
PG=${PG:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-30}
TAG=${TAG:?name the change, e.g. TAG=issue24-sqlx09}
BASE_BIN=${BASE_BIN:?the older build to compare with}
source benches/common.sh
common=(--users 64 --duration "$DURATION" --latency-ms 0 --status-seconds 5 --check-seconds 5)
for i in $(seq 1 "$RUNS"); do
  run "$TAG-sqlite-before" "${common[@]}" --bin "$BASE_BIN"
  run "$TAG-sqlite-after" "${common[@]}"
  run "$TAG-postgres-before" "${common[@]}" --database-url "$PG" --instances 1 --bin "$BASE_BIN"
  run "$TAG-postgres-after" "${common[@]}" --database-url "$PG" --instances 1
done
