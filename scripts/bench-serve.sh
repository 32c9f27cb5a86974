#!/usr/bin/env bash
# Benchmarks of `strata serve` for docs/BENCHMARKS.md (release build; the script builds it):
# access-event ingest through the batch endpoint (events/s), GET latency p50/p99 from the
# hot tier against reading the same file directly, and object metadata operations per
# second (HEAD, LIST, PUT 1 KiB, DELETE). The load generator is
# crates/server/examples/bench_serve.rs.
# Usage: scripts/bench-serve.sh [WORKDIR] [EVENTS] [KEYS] [BATCH]
#
# Throughput mode (issue 13's service floor: 64 KiB PUTs and GETs with 16 clients):
#   scripts/bench-serve.sh throughput BIN_A BIN_B [RUNS] [SECONDS] [SIZE] [CLIENTS]
# runs two `strata` binaries (say a build of this branch and one of main) A B A B ...,
# RUNS times each (default 5), each run on a fresh data directory on the same file system
# ($STRATA_BENCH_DIR, default /tmp/strata-bench-tp) with a fresh service; prints every
# run and each binary's median and spread (min-max) of PUT and GET objects/s, with the
# load average before and after. It does not build: pass release binaries, and build the
# load generator first (or name one built elsewhere in $STRATA_BENCH_SERVE).
# STRATA_BENCH_PAUSE=SECONDS removes each run's data and waits that long before the next
# (61 on a file system without a journal: see scripts/lib/bench-serve-throughput.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve.sh
PORT="${STRATA_BENCH_SERVE_PORT:-7177}"
if [ "${1:-}" = throughput ]; then
    . scripts/lib/bench-serve-throughput.sh
    throughput_main "${@:2}"
    exit 0
fi
WORK="${1:-/tmp/strata-bench-serve}"
EVENTS="${2:-2000000}"
KEYS="${3:-100000}"
BATCH="${4:-20000}"
cargo build --release -q -p strata-cli
cargo build --release -q -p strata-server --example bench_serve
rm -rf "$WORK" && mkdir -p "$WORK"
write_bench_config "$WORK" "$PORT"
target/release/strata serve --config "$WORK/strata.toml" >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
wait_for_serve "$PORT" "$WORK/serve.log"
echo "strata serve (pid $SERVER) on 127.0.0.1:$PORT; $(nproc) CPUs; $(uname -r)"
target/release/examples/bench_serve "http://127.0.0.1:$PORT" "$WORK/data/tiers/hot" \
    "$EVENTS" "$KEYS" "$BATCH"
echo "server peak RSS: $(grep VmHWM /proc/$SERVER/status | awk '{print $2, $3}')"
kill -TERM $SERVER && wait $SERVER || true
trap - EXIT
