#!/usr/bin/env bash
# Parity benchmark for docs/BENCHMARKS.md: Strata's Reed-Solomon parity vs par2 on the
# same 512 MiB random file, 10% redundancy, the same damage, in one run.
#
#  - strata: crates/codec/examples/parity_bench.rs: 4 MiB shards (Strata's chunk size),
#    `--parity 10%` (ec:20+2 groups), BLAKE3 per shard; create = read + hash + encode +
#    write parity; repair = re-hash every shard + rebuild the damaged ones + write them
#    back + re-verify the whole file. This is what `strata migrate --parity` and
#    `strata repair` do per group, without the compression and object store around it.
#  - par2 (Debian par2cmdline): `par2 create -r10` with its defaults (2000 blocks), and
#    with 4 MiB blocks like Strata's shards; repair = `par2 repair` (verify, rebuild,
#    re-verify).
#  - Damage: 7 of the 128 4-MiB shards (5.5%) overwritten with random bytes, one in each
#    group of 20 (within what ec:20+2 covers), identical bytes at identical offsets for
#    every tool. Each repaired file must be b3sum-identical to the original.
#  Page caches are dropped before every timed step when running as root.
# Usage: scripts/bench-parity.sh [WORKDIR]   (needs ~3 GiB free; default /tmp/strata-parity-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-parity-bench}"
SIZE_MIB=512
DAMAGED_SHARDS=(3 25 47 69 91 113 125)
mkdir -p "$WORK"
command -v par2 >/dev/null || { echo "par2 is required: apt-get install par2"; exit 2; }
cargo build --release -q -p strata-codec --example parity_bench
BENCH="$PWD/target/release/examples/parity_bench"

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

ORIG="$WORK/original.bin"
[ -f "$ORIG" ] && [ "$(stat -c %s "$ORIG")" -eq $((SIZE_MIB << 20)) ] \
    || head -c $((SIZE_MIB << 20)) /dev/urandom > "$ORIG"
SUM=$(b3sum --no-names "$ORIG")
DAMAGE="$WORK/damage.bin"
[ -f "$DAMAGE" ] || head -c $(( ${#DAMAGED_SHARDS[@]} << 22 )) /dev/urandom > "$DAMAGE"

damage() { # FILE: overwrite the chosen 4 MiB shards with the same random bytes
    local i=0
    for shard in "${DAMAGED_SHARDS[@]}"; do
        dd if="$DAMAGE" of="$1" bs=4M skip=$i seek="$shard" count=1 conv=notrunc status=none
        i=$((i + 1))
    done
}

# run NAME CREATE_CMD REPAIR_CMD (commands see $F, the file, $D, the parity folder, and
# $B, the folder of the file: par2's base path)
ROWS=()
run() {
    local name="$1" create_cmd="$2" repair_cmd="$3"
    export B="$WORK/$name" F="$WORK/$name/data.bin" D="$WORK/$name/parity"
    rm -rf "$WORK/$name"; mkdir -p "$D"
    cp "$ORIG" "$F"
    drop_caches
    local t0; t0=$(now)
    (cd "$WORK/$name" && eval "$create_cmd") >"$WORK/$name.create.log" 2>&1 \
        || { echo "$name create failed:"; tail -n 5 "$WORK/$name.create.log"; exit 1; }
    local t1; t1=$(now)
    damage "$F"
    [ "$(b3sum --no-names "$F")" != "$SUM" ] || { echo "damage did not change $name"; exit 1; }
    drop_caches
    local t2; t2=$(now)
    (cd "$WORK/$name" && eval "$repair_cmd") >"$WORK/$name.repair.log" 2>&1 \
        || { echo "$name repair failed:"; tail -n 5 "$WORK/$name.repair.log"; exit 1; }
    local t3; t3=$(now)
    [ "$(b3sum --no-names "$F")" = "$SUM" ] || { echo "$name: repaired file differs"; exit 1; }
    local pbytes; pbytes=$(du -sb "$D" | cut -f1)
    ROWS+=("$name|$(secs "$t0" "$t1")|$(secs "$t2" "$t3")|$pbytes|$create_cmd|$repair_cmd")
    rm -rf "$WORK/$name"
}

run strata '"$BENCH" create "$F" "$D" --parity 10%' '"$BENCH" repair "$F" "$D"'
run par2-default 'par2 create -q -q -r10 -B"$B" "$D/data.par2" "$F"' 'par2 repair -q -q -B"$B" "$D/data.par2" "$F"'
run par2-4MiB-blocks 'par2 create -q -q -r10 -s4194304 -B"$B" "$D/data.par2" "$F"' 'par2 repair -q -q -B"$B" "$D/data.par2" "$F"'

printf '\n%s MiB random file, 10%% redundancy, %d of %d 4-MiB shards damaged (%.1f%%), all repaired b3sum-identical.\n' \
    "$SIZE_MIB" "${#DAMAGED_SHARDS[@]}" $((SIZE_MIB / 4)) "$(echo "${#DAMAGED_SHARDS[@]} * 400 / $SIZE_MIB" | bc -l)"
printf 'Machine: %s, %s cores, %s GiB RAM; %s; %s.\n\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" \
    "$(free -g | awk '/Mem:/ {print $2}')" "$(par2 -V 2>&1 | head -1)" "$(rustc --version)"
strata_create=""; strata_repair=""
echo "| tool | create parity (s) | repair (s) | parity bytes | create command | repair command |"
echo "|---|---:|---:|---:|---|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r name c r p cc rc <<<"$row"
    printf '| %s | %.2f | %.2f | %s | `%s` | `%s` |\n' "$name" "$c" "$r" "$p" "$cc" "$rc"
    if [ "$name" = strata ]; then strata_create=$c; strata_repair=$r; fi
done
echo
for row in "${ROWS[@]}"; do
    IFS='|' read -r name c r _ <<<"$row"
    [ "$name" = strata ] && continue
    printf 'strata vs %s: %.1fx faster to create, %.1fx faster to repair\n' \
        "$name" "$(echo "$c / $strata_create" | bc -l)" "$(echo "$r / $strata_repair" | bc -l)"
done
