#!/usr/bin/env bash
# Local-to-S3 benchmark for docs/BENCHMARKS.md: Strata against `rclone copy` (and
# `rclone copy --checksum`) into the same loopback S3-compatible server (moto), in one run.
# Datasets: (a) one 1 GiB random file, (b) 2,000 files of 4 to 64 KiB.
# (AWS_CA_BUNDLE, when the environment sets one, is removed for rclone: its AWS SDK
# refuses a custom CA bundle together with its own HTTP transport.)
# Usage: scripts/bench-s3.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-bench-s3}"
PORT="${STRATA_BENCH_S3_PORT:-9123}"
STRATA="$PWD/target/release/strata"
cargo build --release -p strata-cli -q
mkdir -p "$WORK"
scripts/s3-server.sh start "$PORT" >/dev/null
trap 'scripts/s3-server.sh stop "$PORT" >/dev/null 2>&1 || true' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other RCLONE_CONFIG_MOTO_ENV_AUTH=true \
       RCLONE_CONFIG_MOTO_ENDPOINT="http://127.0.0.1:$PORT" RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE=true

if [ ! -f "$WORK/src-big/random.bin" ]; then
    mkdir -p "$WORK/src-big"; head -c $((1 << 30)) /dev/urandom > "$WORK/src-big/random.bin"
fi
if [ ! -d "$WORK/src-small" ]; then
    python3 - "$WORK/src-small" <<'PY'
import os, random, sys
root = sys.argv[1]; rnd = random.Random(42)
for i in range(2000):
    d = os.path.join(root, f"d{i % 20:02d}"); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(rnd.randint(4 << 10, 64 << 10)))
PY
fi

run() {
    local name="$1" set="$2"; shift 2
    local bytes; bytes=$(du -sb "$WORK/src-$set" | cut -f1)
    local start end secs
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { echo "| $set | $name | failed: $(tail -1 "$WORK/err") |"; return 0; }
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    printf "| %s | %s | %.2f | %.0f | %.0f |\n" "$set" "$name" "$secs" "$(echo "$bytes / $secs / 1000000" | bc -l)" "$(echo "$(cat "$WORK/rss") / 1024" | bc -l)"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; S3: moto_server on 127.0.0.1:$PORT"
echo "| dataset | tool | seconds | MB/s | peak RSS MiB |"
echo "|---|---|---:|---:|---:|"
n=0
for set in big small; do
    for tool in rclone "rclone --checksum" strata; do
        n=$((n + 1)); bucket="bench-$n-$(date +%s)"
        scripts/s3-server.sh mkbucket "$PORT" "$bucket" >/dev/null
        case "$tool" in
            rclone) run "rclone copy" "$set" env -u AWS_CA_BUNDLE rclone copy "$WORK/src-$set" "moto:$bucket/ds" ;;
            "rclone --checksum") run "rclone copy --checksum" "$set" env -u AWS_CA_BUNDLE rclone copy --checksum "$WORK/src-$set" "moto:$bucket/ds" ;;
            strata) run "strata migrate" "$set" env STRATA_CATALOG="$WORK/catalog-$n.db" "$STRATA" migrate --s3-endpoint "http://127.0.0.1:$PORT" "$WORK/src-$set" "s3://$bucket/ds" ;;
        esac
    done
done
