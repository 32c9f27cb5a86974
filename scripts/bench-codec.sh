#!/usr/bin/env bash
# `--codec max` and `--parity` benchmark for docs/BENCHMARKS.md (issue 13): wall time, peak
# memory and output size of `strata migrate --layout packed --codec max` on the real
# scientific files, against xz -6 (one and two threads) and zstd -19 on a tar of the same
# files, and the peak memory of `--parity 10%`.
#
# Conditions, stated and checked: the page cache is warm (the source and the tar are read
# once before the first round); every round runs every tool once, interleaved (A B C ... A
# B C ...), ROUNDS rounds (default 5); each command is timed with its `sync` by
# /usr/bin/time (`bash -c 'CMD && sync'`: wall seconds and the peak RSS of the largest
# process). The load average before and after, the CPU and the kernel are printed. Per
# tool: median, min and max wall seconds, the largest peak RSS, and the output bytes (the
# whole destination for strata: frames, index, manifests, parity).
#
# Usage: scripts/bench-codec.sh [WORKDIR]
#   env: STRATA_BIN (default target/release/strata), STRATA_BIN_B (a second build, e.g.
#        main without the change: tools `max-b`, `parity-b`), DATA (default
#        ../shared/data/scientific), ROUNDS, TOOLS (default "max max-b xz6 xz6-t2 zstd19
#        parity parity-b")
# Run it under `flock /work/bench.lock` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-codec-bench}"
ROUNDS="${ROUNDS:-5}"
DATA="${DATA:-$PWD/../shared/data/scientific}"
STRATA="${STRATA_BIN:-$PWD/target/release/strata}"
STRATA_B="${STRATA_BIN_B:-}"
TOOLS="${TOOLS:-max max-b xz6 xz6-t2 zstd19 parity parity-b}"
[ -x "$STRATA" ] || { echo "bench-codec: no strata binary at $STRATA (cargo build --release -p strata-cli)" >&2; exit 1; }
[ -d "$DATA" ] || { echo "bench-codec: no data folder $DATA (see ../shared/data/README.md)" >&2; exit 1; }
if [ -z "$STRATA_B" ]; then TOOLS="$(echo "$TOOLS" | tr ' ' '\n' | grep -v -- '-b$' | tr '\n' ' ')"; fi
mkdir -p "$WORK"
TAR="$WORK/scientific.tar"
tar -C "$DATA" -cf "$TAR" .
cat "$TAR" > /dev/null
find "$DATA" -type f -exec cat {} + > /dev/null

# The command of TOOL; its output goes to $WORK/out-TOOL.
command_of() {
    local out="$WORK/out-$1"
    case "$1" in
        max) echo "$STRATA migrate '$DATA' '$out' --layout packed --codec max --catalog '$out.db'" ;;
        max-b) echo "$STRATA_B migrate '$DATA' '$out' --layout packed --codec max --catalog '$out.db'" ;;
        parity) echo "$STRATA migrate '$DATA' '$out' --layout packed --parity 10% --catalog '$out.db'" ;;
        parity-b) echo "$STRATA_B migrate '$DATA' '$out' --layout packed --parity 10% --catalog '$out.db'" ;;
        xz6) echo "xz -6 -T1 -c '$TAR' > '$out'" ;;
        xz6-t2) echo "xz -6 -T2 -c '$TAR' > '$out'" ;;
        zstd19) echo "zstd -19 -q -c '$TAR' > '$out'" ;;
        *) echo "bench-codec: unknown tool $1" >&2; exit 1 ;;
    esac
}

echo "bench-codec: $(date -u +%FT%TZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, kernel $(uname -r)"
echo "data: $DATA, $(find "$DATA" -type f | wc -l) files, $(du -sb "$DATA" | cut -f1) bytes; tar $(stat -c %s "$TAR") bytes"
echo "strata: $STRATA${STRATA_B:+; strata-b: $STRATA_B}; rounds: $ROUNDS; cache warm"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A TIMES RSS SIZE
for round in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        out="$WORK/out-$tool"
        rm -rf "$out" "$out.db"; sync
        cmd="$(command_of "$tool")"
        /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "{ $cmd; } > /dev/null && sync" \
            || { echo "bench-codec: $tool failed: $cmd" >&2; exit 1; }
        read -r secs kb < "$WORK/time"
        TIMES[$tool]+="$secs "
        RSS[$tool]=$(( kb > ${RSS[$tool]:-0} ? kb : ${RSS[$tool]:-0} ))
        SIZE[$tool]=$(du -sb "$out" | cut -f1)
        echo "round $round $tool: ${secs}s, ${kb} KB peak, ${SIZE[$tool]} bytes (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n| tool | median s | min-max s | peak RSS MiB | output bytes |\n|---|---:|---:|---:|---:|\n'
for tool in $TOOLS; do
    sorted=$(echo "${TIMES[$tool]}" | tr ' ' '\n' | grep . | sort -g)
    n=$(echo "$sorted" | wc -l)
    median=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p")
    printf '| %s | %s | %s-%s | %d | %s |\n' "$tool" "$median" "$(echo "$sorted" | head -1)" \
        "$(echo "$sorted" | tail -1)" $(( RSS[$tool] / 1024 )) "${SIZE[$tool]}"
done
for tool in $TOOLS; do echo "$tool: $(command_of "$tool")"; done
rm -rf "$WORK"/out-*
