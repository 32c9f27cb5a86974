# Sourced by scripts/bench-serve.sh: its throughput mode (see there). Needs PORT and
# wait_for_serve (scripts/lib/serve.sh). The load generator is $STRATA_BENCH_SERVE, by default
# target/release/examples/bench_serve.
BENCH_SERVE="${STRATA_BENCH_SERVE:-target/release/examples/bench_serve}"

# tp_run BIN WORK SECONDS SIZE CLIENTS: one fresh service from BIN, one bench run; prints
# the bench's two `throughput` lines.
tp_run() {
    local bin="$1" work="$2"
    rm -rf "$work" && mkdir -p "$work"
    write_bench_config "$work" "$PORT"
    "$bin" serve --config "$work/strata.toml" >"$work/serve.log" 2>&1 &
    local server=$!
    if ! wait_for_serve "$PORT" "$work/serve.log"; then
        kill "$server" 2>/dev/null || true
        return 1
    fi
    "$BENCH_SERVE" throughput "http://127.0.0.1:$PORT" "$5" "$3" "$4"
    kill -TERM "$server" && wait "$server" || true
    # ext4 without a journal (this machine's /dev/vda) skips inodes freed in the last 60 s
    # when it creates a file, scanning past each: a run just after another's thousands of
    # deletes creates its files slower (session 18). A pause lets them age.
    if [ "${STRATA_BENCH_PAUSE:-0}" -gt 0 ]; then
        rm -rf "$work" && sync && sleep "$STRATA_BENCH_PAUSE"
    fi
}

# tp_stats LABEL OP FILE: median and spread of the objects/s of OP in FILE's lines
# `LABEL OP objects seconds rate`.
tp_stats() {
    awk -v l="$1" -v o="$2" '$1 == l && $2 == o { print $5 }' "$3" | sort -n |
        awk -v l="$1" -v o="$2" '{ v[NR] = $1 } END {
            if (NR == 0) { print l, o, "no runs"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s: median %.0f objects/s, spread %.0f-%.0f (%d runs)\n", l, o, m, v[1], v[NR], NR
        }'
}

throughput_main() {
    local a="${1:?usage: bench-serve.sh throughput BIN_A BIN_B [RUNS] [SECONDS] [SIZE] [CLIENTS]}"
    local b="${2:?BIN_B}" runs="${3:-5}" seconds="${4:-5}" size="${5:-65536}" clients="${6:-16}"
    local work="${STRATA_BENCH_DIR:-/tmp/strata-bench-tp}"
    local out
    out="$(mktemp)"
    [ -x "$BENCH_SERVE" ] || {
        echo "build the load generator first: cargo build --release -p strata-server --example bench_serve" \
            "(or name a built one in STRATA_BENCH_SERVE)" >&2
        return 1
    }
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) CPUs; $(uname -r)"
    echo "data on: $(df -T "$(dirname "$work")" | awk 'NR == 2 { print $1, $2 }'); page cache warm (objects just written)"
    echo "A = $a; B = $b; $runs runs each, interleaved; $clients clients, $size-byte objects, ${seconds} s per phase"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    for run in $(seq "$runs"); do
        for label in A B; do
            local bin="$a"
            [ "$label" = B ] && bin="$b"
            tp_run "$bin" "$work" "$seconds" "$size" "$clients" | while read -r _ op n s rate; do
                echo "$label $op $n $s $rate" | tee -a "$out"
            done
        done
    done
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    for label in A B; do
        tp_stats "$label" PUT "$out"
        tp_stats "$label" GET "$out"
    done
    rm -rf "$work" "$out"
}
