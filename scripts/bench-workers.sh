#!/usr/bin/env bash
# Scaling of distributed migrations (docs/BENCHMARKS.md, issue 14): 1, 2, 4 and 8
# `strata worker` processes on this machine against a latency-injected source, so that the
# number of workers, not the 2 cores, decides the speed.
#
# Dataset: FILES files of 64 KiB (random bytes). Every source read of a worker sleeps
# LATENCY first (STRATA_FAULTS=src:read:latency=...), and each worker runs one chunk task
# at a time (--jobs 1): a worker stands for a node whose link gives it one file per
# LATENCY. Tasks of 256 KiB (4 files; the last tenth of the job in single files).
# Per worker count and round: a fresh catalog and destination, the workers started and
# announced (strata status) before the clock starts, then `strata migrate --queue --wait`
# timed from submission to the job done (planning and publishing included). The NATS
# server is Debian's nats-server with JetStream, on loopback, storage under WORKDIR.
#
# Prints per worker count: median, min and max seconds over ROUNDS, the speed-up over one
# worker at the median, efficiency = speed-up / workers, tasks and files per second (each
# task is one queue message, fetched and acknowledged; each file one catalog file record).
#
# Usage: scripts/bench-workers.sh [WORKDIR]
#   env: STRATA_BIN (default target/release/strata, built if missing), WORKERS (default
#        "1 2 4 8"), ROUNDS (default 3), FILES (default 240), LATENCY (default 50ms)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-bench-workers}"
WORKERS="${WORKERS:-1 2 4 8}"
ROUNDS="${ROUNDS:-3}"
FILES="${FILES:-240}"
LATENCY="${LATENCY:-50ms}"
STRATA="${STRATA_BIN:-$PWD/target/release/strata}"
if [ -z "${STRATA_BIN:-}" ]; then cargo build --release -p strata-cli -q; fi
NATS_SERVER="$(command -v nats-server || echo /usr/sbin/nats-server)"
[ -x "$NATS_SERVER" ] || { echo "bench-workers: nats-server is not installed (apt-get install nats-server)" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK/src"
PORT=$((20000 + RANDOM % 20000))
URL="nats://127.0.0.1:$PORT"
"$NATS_SERVER" -js -a 127.0.0.1 -p "$PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS=()
cleanup() { kill "${PIDS[@]}" "$NATS_PID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done

for i in $(seq 1 "$FILES"); do head -c 65536 /dev/urandom > "$WORK/src/f$i"; done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(uname -r); $FILES files x 64 KiB, read latency $LATENCY, --jobs 1 per worker"
declare -A TIMES TASKS
for round in $(seq 1 "$ROUNDS"); do
    for n in $WORKERS; do
        export STRATA_CATALOG="$WORK/catalog-$n-$round.db"
        name="bench-$n-$round"
        rm -rf "$WORK/dst"
        PIDS=()
        for w in $(seq 1 "$n"); do
            STRATA_FAULTS="src:read:latency=$LATENCY" STRATA_SETTLE=0 "$STRATA" worker --queue "$URL" \
                --queue-name "$name" --jobs 1 2>"$WORK/worker-$n-$w.log" &
            PIDS+=($!)
        done
        until [ "$("$STRATA" status | grep -c ' cores, ' || true)" -ge "$n" ]; do sleep 0.1; done
        start=$(date +%s.%N)
        STRATA_SETTLE=0 "$STRATA" migrate "$WORK/src" "$WORK/dst" --queue "$URL" --queue-name "$name" \
            --chunk-size 64K --task-size 256K --wait >"$WORK/migrate-$n-$round.log"
        end=$(date +%s.%N)
        tasks=$(grep -ho 'took task' "$WORK"/worker-"$n"-*.log | wc -l)
        kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
        secs=$(echo "$end - $start" | bc -l)
        TIMES[$n]="${TIMES[$n]:-} $secs"
        printf 'round %d, %d worker(s): %.2f s, %d tasks\n' "$round" "$n" "$secs" "$tasks"
        TASKS[$n]=$tasks
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR]}'; }
read -r base _ _ <<<"$(echo "${TIMES[1]:-0}" | median)"
printf '%-8s %-9s %-9s %-9s %-9s %-11s %-8s %-8s\n' workers median_s min_s max_s speedup efficiency tasks/s files/s
for n in $WORKERS; do
    read -r med min max <<<"$(echo "${TIMES[$n]}" | median)"
    speedup=$(echo "$base / $med" | bc -l)
    printf '%-8s %-9.2f %-9.2f %-9.2f %-9.2f %-11s %-8.1f %-8.1f\n' "$n" "$med" "$min" "$max" "$speedup" \
        "$(printf '%.0f%%' "$(echo "100 * $speedup / $n" | bc -l)")" \
        "$(echo "${TASKS[$n]} / $med" | bc -l)" "$(echo "$FILES / $med" | bc -l)"
done
