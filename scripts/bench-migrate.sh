#!/usr/bin/env bash
# Local-to-local migration benchmark for docs/BENCHMARKS.md (issue 13's conditions).
#
# Datasets: big (one 2 GiB file of random bytes), small (20,000 files of 4 to 64 KiB),
# twenty (ten hard links to the 2 GiB file: 20 GiB to every tool, no extra disk).
# Tools: cp -r, rsync -a, rclone copy --checksum, strata migrate (verifying, the default),
# and, when STRATA_BIN_B is set, a second strata build (an A/B comparison of two builds).
#
# Conditions, stated and checked: every run is one round of all tools, interleaved
# (A B C, then B C A, then C A B: each round starts one tool later), ROUNDS rounds; the
# page cache is warm (the source is read once before the first round, and each tool's
# destination is removed and synced before it runs) or cold with CACHE=cold (dropped
# before every command; root only); each command is timed with its `sync` (`bash -c 'CMD
# && sync'`), so writes still in the page cache count. The load average before and after,
# the CPU and the kernel are printed with the results.
# Per tool: median, min and max of the rounds, MB/s at the median, and peak RSS (max).
#
# Usage: scripts/bench-migrate.sh [WORKDIR]
#   env: STRATA_BIN (default target/release/strata, built if missing), STRATA_BIN_B,
#        ROUNDS (default 5), SETS (default "big small"), CACHE (warm|cold), TOOLS (default
#        "cp rsync rclone strata strata-b"; skip one by leaving it out; strata-sent,
#        strata-cache and strata-device run STRATA_BIN with that `--verify` mode)
# Needs about 3 x the dataset free in WORKDIR (default /tmp/strata-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-bench}"
ROUNDS="${ROUNDS:-5}"
SETS="${SETS:-big small}"
CACHE="${CACHE:-warm}"
TOOLS="${TOOLS:-cp rsync rclone strata strata-b}"
STRATA="${STRATA_BIN:-$PWD/target/release/strata}"
STRATA_B="${STRATA_BIN_B:-}"
if [ -z "${STRATA_BIN:-}" ]; then cargo build --release -p strata-cli -q; fi
for tool in rsync rclone bc; do
    command -v "$tool" >/dev/null || { echo "bench-migrate: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
mkdir -p "$WORK"

make_data() {
    if [ ! -f "$WORK/src-big/random.bin" ]; then
        mkdir -p "$WORK/src-big"
        head -c $((2 << 30)) /dev/urandom > "$WORK/src-big/random.bin"
    fi
    if [ ! -d "$WORK/src-small" ]; then
        python3 - "$WORK/src-small" <<'PY'
import os, random, sys
root = sys.argv[1]; rnd = random.Random(42)
for i in range(20000):
    d = os.path.join(root, f"d{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(rnd.randint(4 << 10, 64 << 10)))
PY
    fi
    mkdir -p "$WORK/src-twenty"
    for i in 0 1 2 3 4 5 6 7 8 9; do ln -f "$WORK/src-big/random.bin" "$WORK/src-twenty/part$i.bin"; done
}

# The command of TOOL copying SRC to DST (catalog files live beside DST).
command_of() {
    local tool="$1" src="$2" dst="$3"
    case "$tool" in
        cp) echo "cp -r '$src' '$dst'" ;;
        rsync) echo "rsync -a '$src/' '$dst/'" ;;
        rclone) echo "rclone copy --checksum '$src' '$dst'" ;;
        strata) echo "STRATA_CATALOG='$dst.db' '$STRATA' migrate '$src' '$dst' --json" ;;
        strata-b) echo "STRATA_CATALOG='$dst.db' '$STRATA_B' migrate '$src' '$dst' --json" ;;
        strata-sent|strata-cache|strata-device)
            echo "STRATA_CATALOG='$dst.db' '$STRATA' migrate '$src' '$dst' --verify ${tool#strata-} --json" ;;
    esac
}

# One timed run: prints "seconds peak_rss_kib".
time_one() {
    local tool="$1" set="$2"
    local dst="$WORK/dst-$set-$tool"
    rm -rf "$dst" "$dst.db"*
    sync
    if [ "$CACHE" = cold ]; then echo 3 > /proc/sys/vm/drop_caches; fi
    local cmd; cmd=$(command_of "$tool" "$WORK/src-$set" "$dst")
    local start end
    start=$(date +%s.%N)
    if ! /usr/bin/time -f "%M" -o "$WORK/rss" bash -c "$cmd >/dev/null 2>'$WORK/err' && sync"; then
        echo "bench-migrate: $tool on $set failed: $(tail -3 "$WORK/err")" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    # Clean up before answering: the caller reads this function's output through a process
    # substitution and starts the next tool as soon as the line arrives, so a removal after
    # it would run during the next tool's timed run.
    rm -rf "$dst" "$dst.db"*
    echo "$(echo "$end - $start" | bc -l) $(cat "$WORK/rss")"
}

# The tools ($2...) rotated left by $1 - 1 places.
rotate() {
    local by=$(( ($1 - 1) % ($# - 1) )); shift
    local all=("$@")
    echo "${all[@]:by}" "${all[@]:0:by}"
}

# median / min / max of the numbers on stdin
stats() { sort -g | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR]}'; }

active_tools() {
    for tool in $TOOLS; do
        if [ "$tool" = strata-b ] && [ -z "$STRATA_B" ]; then continue; fi
        echo "$tool"
    done
}

make_data
if [ "$CACHE" = warm ]; then cat "$WORK/src-big/random.bin" > /dev/null; find "$WORK/src-small" -type f -exec cat {} + > /dev/null; fi
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(df -h "$WORK" | awk 'NR==2{print $1}')"
echo "strata: $STRATA${STRATA_B:+; strata-b: $STRATA_B}; page cache: $CACHE; rounds: $ROUNDS, interleaved"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| dataset | tool | median s | min s | max s | MB/s at median | peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|"
for set in $SETS; do
    bytes=$(du -sbl "$WORK/src-$set" | cut -f1)
    tools=$(active_tools)
    for tool in $tools; do : > "$WORK/times-$tool"; : > "$WORK/rss-$tool"; done
    for round in $(seq "$ROUNDS"); do
        # Each round starts one tool later, so that no tool always runs in the same slot
        # (session 18: a build run right after rclone took 2-5x its time one slot later).
        for tool in $(rotate "$round" $tools); do
            read -r secs rss < <(time_one "$tool" "$set")
            echo "$secs" >> "$WORK/times-$tool"
            echo "$rss" >> "$WORK/rss-$tool"
        done
    done
    for tool in $tools; do
        read -r median min max < <(stats < "$WORK/times-$tool")
        peak=$(sort -g "$WORK/rss-$tool" | tail -1)
        printf "| %s | %s | %.2f | %.2f | %.2f | %.0f | %.0f |\n" "$set" "$tool" "$median" "$min" "$max" \
            "$(echo "$bytes / $median / 1000000" | bc -l)" "$(echo "$peak / 1024" | bc -l)"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
