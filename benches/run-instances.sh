#!/usr/bin/env bash
# PostgreSQL and several instances (BENCHMARKS.md, 2026-11-29): SQLite on 1 instance,
# PostgreSQL on 1 and on 2 instances, 64 users, zero provider latency, RUNS times each,
# interleaved so that a slow spell of the machine does not land on one configuration.
# Appends one JSON line per run to benches/results.jsonl.
#   PG=postgres://postgres@127.0.0.1:5432/postgres bash benches/run-instances.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results.jsonl}
PG=${PG:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-30}
source benches/common.sh
common=(--users 64 --duration "$DURATION" --latency-ms 0 --status-seconds 1)
for i in $(seq 1 "$RUNS"); do
  run 64-users-sqlite-1      "${common[@]}"
  run 64-users-postgres-1    "${common[@]}" --database-url "$PG" --instances 1
  run 64-users-postgres-2    "${common[@]}" --database-url "$PG" --instances 2
done
# The wake-up at light load: one user, 20 ms on the token endpoint and on /me, so the long poll
# is always waiting when the exchange commits; PostgreSQL on 1 and on 2 instances.
light=(--users 1 --duration 20 --latency-ms 20 --status-seconds 1 --database-url "$PG")
for i in $(seq 1 "$RUNS"); do
  run 1-user-20ms-postgres-1 "${light[@]}" --instances 1
  run 1-user-20ms-postgres-2 "${light[@]}" --instances 2
done
