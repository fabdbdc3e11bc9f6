#!/usr/bin/env bash
# Issue 13's table (BENCHMARKS.md, "Speed to the floor"): every figure on SQLite and on
# PostgreSQL, RUNS times each, configurations interleaved so that a slow spell of the machine
# does not land on one of them. Appends one JSON line per run to benches/results.jsonl.
#   PG=postgres://postgres@127.0.0.1:5432/postgres bash benches/run-issue13.sh
# BASE_BIN=path/to/an/older/loginwith adds that build's SQLite run beside each of this one's,
# for a before/after measured in the same window (the older build must take the same
# LOGINWITH_* settings; a build before loginwith_db_statements_total reports NaN statements).
# Run it on a quiet machine: the load generator shares the cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-benches/results.jsonl}
PG=${PG:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-30}
BASE_BIN=${BASE_BIN:-}
source benches/common.sh
# 64 users, zero provider latency: CPU, statements and throughput per sign-in; then
# /get-status on finished operations and /auth/check, 5 s each, wrk with 64 connections.
common=(--users 64 --duration "$DURATION" --latency-ms 0 --status-seconds 5 --check-seconds 5)
for i in $(seq 1 "$RUNS"); do
  run issue13-64-users-sqlite-1 "${common[@]}"
  if [ -n "$BASE_BIN" ]; then
    run issue13-64-users-sqlite-1-base "${common[@]}" --bin "$BASE_BIN"
  fi
  run issue13-64-users-postgres-1 "${common[@]}" --database-url "$PG" --instances 1
  run issue13-64-users-postgres-2 "${common[@]}" --database-url "$PG" --instances 2
done
# 1,000 sign-ins in flight (150 ms on the token endpoint and on /me): peak RSS.
for i in $(seq 1 "$RUNS"); do
  run issue13-1000-users-150ms-sqlite --users 1000 --duration "$DURATION" --latency-ms 150 \
    --status-seconds 1 --check-seconds 1
done
# 1,000,000 existing people, each sign-in one of them drawn at random, against the empty
# database's 64-user runs above.
for i in $(seq 1 "$RUNS"); do
  run issue13-64-users-1M-spread-sqlite "${common[@]}" --prefill-users 1000000
done
