#!/usr/bin/env bash
# Strata's S3 front door (`strata serve --s3-listen`) against SeaweedFS's S3 gateway on the
# same machine, in one run, for docs/BENCHMARKS.md: PUT and GET objects/s and MB/s with 16
# clients, 64 KiB and 64 MiB objects. The load generator is
# crates/server/examples/bench_s3_door.rs (OpenDAL's S3 client, SigV4 on every request).
#
#   scripts/bench-s3-door.sh [WORKDIR] [RUNS]
#
# Builds the release binaries, starts both servers once on loopback (data under WORKDIR,
# default /tmp/strata-bench-s3-door, on one file system; strata's new objects on its hot tier,
# a local directory), then runs RUNS rounds (default 3), each: for each size, strata then
# SeaweedFS (interleaved A B A B). Each timed run holds `flock $STRATA_BENCH_LOCK` when that
# is set (one benchmark on a shared machine at a time). Prints every run with the load average
# before it, then each server's median and spread (min-max) per size and phase, and the load
# average before and after the whole benchmark.
# Environment: BENCH_SMALL_COUNT (64 KiB objects per run, default 3200), BENCH_LARGE_COUNT
# (64 MiB objects per run, default 48), BENCH_CLIENTS (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve.sh
WORK="${1:-/tmp/strata-bench-s3-door}"
RUNS="${2:-3}"
SMALL_COUNT="${BENCH_SMALL_COUNT:-3200}"
LARGE_COUNT="${BENCH_LARGE_COUNT:-48}"
CLIENTS="${BENCH_CLIENTS:-16}"
export BENCH_S3_ACCESS_KEY=BENCHACCESSKEY BENCH_S3_SECRET_KEY=bench-secret-key-0123456789

cargo build --release -q -p strata-cli
cargo build --release -q -p strata-server --example bench_s3_door
scripts/s3-tools.sh install >/dev/null
WEED="$(scripts/s3-tools.sh path)/weed"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" != 000 ]; }

rm -rf "$WORK" && mkdir -p "$WORK/weed" "$WORK/strata"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT

# SeaweedFS: every port explicit, SigV4 enforced for the benchmark's key pair. It ignores
# SIGTERM, hence kill -9 at exit.
cat > "$WORK/weed/identities.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$BENCH_S3_ACCESS_KEY","secretKey":"$BENCH_S3_SECRET_KEY"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
WEED_S3=$(free_port); WEED_FILER=$(free_port)
"$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/weed" -filer -s3 \
    -s3.config="$WORK/weed/identities.json" -s3.autoCreateBucket=false \
    -master.port="$(free_port)" -master.port.grpc="$(free_port)" \
    -volume.port="$(free_port)" -volume.port.grpc="$(free_port)" \
    -filer.port="$WEED_FILER" -filer.port.grpc="$(free_port)" \
    -s3.port="$WEED_S3" -s3.port.grpc="$(free_port)" -s3.port.iceberg=0 -s3.port.lance=0 \
    -filer.localSocket="$WORK/weed/filer.sock" -master.volumeSizeLimitMB=1024 -volume.max=64 \
    >"$WORK/weed/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$WEED_FILER/buckets/strata/" || true)" = 201 ] && answers "http://127.0.0.1:$WEED_S3/" && break
    sleep 0.2
done
answers "http://127.0.0.1:$WEED_S3/" || { echo "SeaweedFS did not start; see $WORK/weed/log" >&2; exit 1; }

# Strata: new objects on the hot tier (a local directory under WORK), the front door's key
# pair from its environment.
API=$(free_port); DOOR=$(free_port)
write_bench_config "$WORK/strata" "$API"
STRATA_S3_ACCESS_KEY="$BENCH_S3_ACCESS_KEY" STRATA_S3_SECRET_KEY="$BENCH_S3_SECRET_KEY" \
    target/release/strata serve --config "$WORK/strata/strata.toml" --s3-listen "127.0.0.1:$DOOR" \
    >"$WORK/strata/serve.log" 2>&1 &
PIDS+=($!)
wait_for_serve "$API" "$WORK/strata/serve.log"
for _ in $(seq 50); do answers "http://127.0.0.1:$DOOR/" && break; sleep 0.2; done

lock() { if [ -n "${STRATA_BENCH_LOCK:-}" ]; then flock "$STRATA_BENCH_LOCK" "$@"; else "$@"; fi; }
OUT="$WORK/runs.txt"
: > "$OUT"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"
echo "data on: $(df -T "$WORK" | awk 'NR == 2 { print $1, $2 }'); $("$WEED" version 2>/dev/null | head -n 1)"
echo "$CLIENTS clients; $SMALL_COUNT objects of 64 KiB, $LARGE_COUNT of 64 MiB per run; $RUNS rounds, strata and SeaweedFS interleaved"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "round server size phase objects seconds objects/s MB/s load-before"
for round in $(seq "$RUNS"); do
    for size in 65536 67108864; do
        count=$SMALL_COUNT; [ "$size" = 65536 ] || count=$LARGE_COUNT
        for server in strata seaweedfs; do
            port=$DOOR; [ "$server" = strata ] || port=$WEED_S3
            load=$(cut -d' ' -f1 /proc/loadavg)
            lock target/release/examples/bench_s3_door "http://127.0.0.1:$port" strata "$size" "$count" "$CLIENTS" |
                while read -r phase n secs rate mbs; do
                    echo "$round $server $size $phase $n $secs $rate $mbs $load" | tee -a "$OUT"
                done
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# stat SERVER SIZE PHASE COLUMN: "median (min-max)" of COLUMN (7 objects/s, 8 MB/s).
stat() {
    awk -v s="$1" -v z="$2" -v p="$3" -v c="$4" '$2 == s && $3 == z && $4 == p { print $c }' "$OUT" |
        sort -n | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "no runs"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f (%.0f-%.0f)", m, v[1], v[NR]
        }'
}
echo "| server | object size | phase | objects/s median (spread) | MB/s median (spread) |"
echo "|---|---|---|---|---|"
for size in 65536 67108864; do
    label="64 KiB"; [ "$size" = 65536 ] || label="64 MiB"
    for phase in PUT GET; do
        for server in strata seaweedfs; do
            echo "| $server | $label | $phase | $(stat "$server" "$size" "$phase" 7) | $(stat "$server" "$size" "$phase" 8) |"
        done
    done
done
