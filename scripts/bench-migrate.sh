#!/usr/bin/env bash
# Local-to-local migration benchmark for docs/BENCHMARKS.md, all tools in one run:
#   (a) one 2 GiB file of random bytes, (b) 20,000 files of 4 to 64 KiB,
# copied by cp -r, rsync -a, rclone copy --checksum, strata migrate and
# strata migrate --no-verify. Page caches are dropped before every run (root only) so each
# tool reads from disk the same way. Peak RSS from /usr/bin/time.
# Usage: scripts/bench-migrate.sh [WORKDIR]   (needs ~10 GiB free; default /tmp/strata-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-bench}"
STRATA="$PWD/target/release/strata"
cargo build --release -p strata-cli -q
mkdir -p "$WORK"

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

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
}

# run NAME DATASET CMD...: prints "dataset tool seconds MB/s peakRSS_MiB"
run() {
    local name="$1" set="$2"; shift 2
    local dst="$WORK/dst-$set-$name"
    rm -rf "$WORK/dst-$set-"* "$WORK/catalog-$set-$name.db"*
    drop_caches
    local bytes; bytes=$(du -sbl "$WORK/src-$set" | cut -f1)
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { echo "$name failed: $(tail -3 "$WORK/err")"; return 0; }
    sync
    end=$(date +%s.%N)
    local secs; secs=$(echo "$end - $start" | bc -l)
    printf "| %s | %s | %.2f | %.0f | %.0f |\n" "$set" "$name" "$secs" "$(echo "$bytes / $secs / 1000000" | bc -l)" "$(echo "$(cat "$WORK/rss") / 1024" | bc -l)"
    rm -rf "$WORK/dst-$set-"*
}

make_data
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(df -h "$WORK" | awk 'NR==2{print $1}')"
echo "| dataset | tool | seconds | MB/s | peak RSS MiB |"
echo "|---|---|---:|---:|---:|"
for set in big small; do
    run "cp -r" "$set" cp -r "$WORK/src-$set" "$WORK/dst-$set-cp -r"
    run "rsync -a" "$set" rsync -a "$WORK/src-$set/" "$WORK/dst-$set-rsync -a/"
    run "rclone --checksum" "$set" rclone copy --checksum "$WORK/src-$set" "$WORK/dst-$set-rclone --checksum"
    run "strata" "$set" env STRATA_CATALOG="$WORK/catalog-$set-strata.db" "$STRATA" migrate "$WORK/src-$set" "$WORK/dst-$set-strata"
    run "strata --no-verify" "$set" env STRATA_CATALOG="$WORK/catalog-$set-strata --no-verify.db" "$STRATA" migrate --no-verify "$WORK/src-$set" "$WORK/dst-$set-strata --no-verify"
done
# Peak memory on a 20 GiB dataset: ten hard links to the 2 GiB file (ten 2 GiB files to
# Strata, no extra disk for the source).
mkdir -p "$WORK/src-twenty"
for i in 0 1 2 3 4 5 6 7 8 9; do ln -f "$WORK/src-big/random.bin" "$WORK/src-twenty/part$i.bin"; done
run "strata (20 GiB)" twenty env STRATA_CATALOG="$WORK/catalog-twenty.db" "$STRATA" migrate "$WORK/src-twenty" "$WORK/dst-twenty-strata"
run "cp -r (20 GiB)" twenty cp -r "$WORK/src-twenty" "$WORK/dst-twenty-cp"
echo "BLAKE3 alone, one core, 2 GiB from page cache: $( { /usr/bin/time -f %e b3sum --num-threads 1 "$WORK/src-big/random.bin" >/dev/null; } 2>&1 ) s"
