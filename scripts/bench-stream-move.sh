#!/usr/bin/env bash
# Issue 12 benchmark for docs/BENCHMARKS.md ("Issue 12: streaming moves"): one large object
# (default 10 GiB) PUT to `strata serve` and moved by the service between two local plain
# tiers on the same disk (copy, streaming read-back verify, switch, retire), against `cp`
# of the same file on the same disk (followed by `sync`: the service's copy is fsynced
# before it is published). Reports the service's peak RSS (VmHWM of /proc/PID/status, over
# the PUT and the move) and both throughputs. Release build (the script builds it).
# Needs about 2.1 x SIZE of free disk (plus 15 GB kept free) under WORKDIR; everything is deleted at the end.
# Usage: scripts/bench-stream-move.sh [WORKDIR] [SIZE_GIB]
# STRATA_BIN=path runs that binary instead of building this checkout (to compare builds).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve.sh
WORK="${1:-/tmp/strata-bench-stream}"
GIB="${2:-10}"
SIZE=$((GIB << 30))
PORT="${STRATA_BENCH_STREAM_PORT:-7178}"
KEY="bench/large.bin"
if [[ -n "${STRATA_BIN:-}" ]]; then
    STRATA="$(realpath "$STRATA_BIN")"
else
    cargo build --release -q -p strata-cli
    STRATA="$PWD/target/release/strata"
fi
rm -rf "$WORK" && mkdir -p "$WORK"
FREE=$(df --output=avail -B1 "$WORK" | tail -1)
if (( FREE < SIZE * 21 / 10 + (15 << 30) )); then
    echo "not enough free disk under $WORK for a ${GIB} GiB run (keep 15 GB free)" >&2
    exit 1
fi
# New objects land on hot; a read object is hot for a second, then warm: the rules move it.
cat > "$WORK/strata.toml" <<TOML
default_tier = "hot"
[server]
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/data"
[[tier]]
name = "hot"
cost_per_gb_month = 0.20
[[tier]]
name = "warm"
cost_per_gb_month = 0.05
[rules]
hot_within = "1s"
warm_within = "1h"
demotion_interval = "1h"
[classes]
hot = ["hot"]
warm = ["warm"]
cold = ["warm"]
[tracking]
flush_interval = "1s"
TOML
"$STRATA" serve --config "$WORK/strata.toml" >"$WORK/serve.log" 2>&1 &
SERVER=$!
cleanup() { kill $SERVER 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for_serve "$PORT" "$WORK/serve.log"
export STRATA_SERVER="http://127.0.0.1:$PORT"
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r), $(df --output=source,fstype "$WORK" | tail -1)"
echo "object: ${GIB} GiB (pseudo-random, generated and streamed to PUT, chunked)"
start=$(date +%s.%N)
head -c "$SIZE" /dev/zero | openssl enc -aes-128-ctr -pass pass:strata -nosalt -pbkdf2 2>/dev/null |
    curl -sf -T - "http://127.0.0.1:$PORT/v1/objects/$KEY" -o /dev/null
put_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "PUT: $(echo "scale=1; $SIZE / $put_s / 1048576" | bc) MiB/s ($put_s s); RSS so far $(awk '/VmHWM/ {print $2, $3}' /proc/$SERVER/status)"
"$STRATA" access "$KEY" --count 3 >/dev/null
sleep 1.5
start=$(date +%s.%N)
"$STRATA" plan --run >/dev/null
while :; do
    state=$(curl -sf "http://127.0.0.1:$PORT/v1/jobs?key=$KEY" | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"]; print(j[0]["state"] if j else "none")')
    case "$state" in done) break ;; failed|cancelled|skipped) echo "move $state" >&2; exit 1 ;; esac
    sleep 0.2
done
move_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "service move (copy + streaming verify + switch + retire): $(echo "scale=1; $SIZE / $move_s / 1048576" | bc) MiB/s ($move_s s)"
echo "strata serve peak RSS (VmHWM, PUT and move): $(awk '/VmHWM/ {print $2, $3}' /proc/$SERVER/status)"
start=$(date +%s.%N)
cp "$WORK/data/tiers/warm/objects/$KEY" "$WORK/copy.bin" && sync
cp_s=$(echo "$(date +%s.%N) - $start" | bc)
echo "cp + sync of the same file, same disk: $(echo "scale=1; $SIZE / $cp_s / 1048576" | bc) MiB/s ($cp_s s)"
kill -TERM $SERVER && wait $SERVER || true
