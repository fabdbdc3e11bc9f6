# Sourced by the benches/run-*.sh scripts (from the repository's root, with OUT set): builds
# the binary measured and the benchmark, and defines `run TAG ARGS…`, which runs the
# benchmark once and appends its JSON line, tagged and dated, to $OUT.
cargo build --release --quiet
# `cargo bench` builds target/release/loginwith again with the test-support feature on (the
# dev-dependency on this crate turns it on): the binary measured is a copy of the one built
# as people build it. A later --bin among the arguments (an older build) takes precedence.
mkdir -p target/bench && cp target/release/loginwith target/bench/loginwith
cargo bench --bench login --no-run --quiet 2>/dev/null
run() {
  local tag=$1; shift
  echo "== $tag: $*" >&2
  line=$(cargo bench --quiet --bench login -- --bin target/bench/loginwith "$@" | tail -n 1)
  echo "{\"config\":\"$tag\",\"date\":\"$(date -u +%FT%TZ)\",\"result\":$line}" >> "$OUT"
  echo "$line" >&2
}
