#!/usr/bin/env bash
# Read latency while reads trigger re-encodes (issue 12), for docs/BENCHMARKS.md: the same
# reads against `strata serve` with re-encoding on (a [redundancy] class map: hot objects
# replicate:3 on a tier whose objects are written ec:4+2) and off (no class map). The
# reader is crates/server/examples/reencode_bench.rs.
# Usage: scripts/bench-reencode.sh [WORKDIR] [OBJECTS] [OBJECT_KIB] [ROUNDS]
# STRATA_BIN=path runs that binary instead of building this checkout (to compare builds).
# BWLIMIT=RATE (e.g. 16M) adds `[bandwidth] limit = RATE` to both runs: the moves' throttle,
# which re-encodes go through (background work bounded in bandwidth, issue 12).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve.sh
WORK="${1:-/tmp/strata-bench-reencode}"
OBJECTS="${2:-200}"
KIB="${3:-1024}"
ROUNDS="${4:-10}"
PORT="${STRATA_BENCH_REENCODE_PORT:-7178}"
if [[ -n "${STRATA_BIN:-}" ]]; then
    STRATA="$(realpath "$STRATA_BIN")"
else
    cargo build --release -q -p strata-cli
    STRATA="$PWD/target/release/strata"
fi
cargo build --release -q -p strata-server --example reencode_bench

run() { # $1: on|off
    rm -rf "$WORK" && mkdir -p "$WORK"
    local map=""
    [ "$1" = on ] && map=$'[redundancy]\nhot = "replicate:3"'
    local bandwidth=""
    [ -n "${BWLIMIT:-}" ] && bandwidth=$'[bandwidth]\nlimit = "'"$BWLIMIT"'"'
    # One tier over six local domains, new objects ec:4+2; an access makes an object hot
    # for an hour, and hot objects stay on this tier (no move, only the re-encode).
    cat > "$WORK/strata.toml" <<TOML
default_tier = "red"
[server]
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/data"
[[tier]]
name = "red"
stores = ["$WORK/d0", "$WORK/d1", "$WORK/d2", "$WORK/d3", "$WORK/d4", "$WORK/d5"]
redundancy = "ec:4+2"
[classes]
hot = ["red"]
warm = ["red"]
cold = ["red"]
[rules]
hot_within = "1h"
demotion_interval = "1h"
[tracking]
flush_interval = "2s"
$map
$bandwidth
TOML
    "$STRATA" serve --config "$WORK/strata.toml" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null || true' EXIT
    wait_for_serve "$PORT" "$WORK/serve.log"
    echo -n "re-encoding $1: "
    target/release/examples/reencode_bench "http://127.0.0.1:$PORT" "$OBJECTS" "$KIB" "$ROUNDS"
    kill -TERM $SERVER && wait $SERVER || true
    trap - EXIT
}
echo "$(nproc) CPUs; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg); bandwidth limit ${BWLIMIT:-none}"
run off
run on
run off
run on
rm -rf "$WORK"
