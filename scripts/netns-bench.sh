#!/usr/bin/env bash
# Bandwidth control over a real network stack, for docs/BENCHMARKS.md.
#
#   sudo scripts/netns-bench.sh [WORKDIR]
#
# Two network namespaces joined by a veth pair: the S3-compatible server (moto) and an
# iperf3 server in one, `strata migrate` (and rclone, iperf3 clients) in the other. The
# link from the client to the server is shaped with tc (a token-bucket bottleneck with a
# 250 ms FIFO, on the server's ingress through an ifb device: a bottleneck one hop away, as
# on a real path; shaping the sender's own qdisc would not queue, Linux's TCP small-queues
# keep a local qdisc nearly empty). When the kernel has sch_netem, the return path also
# gets a propagation delay.
#
# 1. Congestion: `strata migrate` (congestion control on, no cap) uploads a local dataset;
#    after 12 s an iperf3 bulk flow (CUBIC) runs for 10 s through the same bottleneck.
#    Strata must yield most of the link to it and take the link back after it ends. The
#    same run with --no-congestion-control shows what the controller changes.
# 2. Fixed cap: `strata migrate --bwlimit 4M` and `rclone copy --bwlimit 4M` to the same
#    server; the rate over sliding 10-second windows.
#
# Rates are measured at the bottleneck, every 0.1 s, by destination port (tc filter byte
# counters): traffic to the S3 port is Strata's (or rclone's), the rest is iperf3's.
#
# What this testbed does not show: (a) veth keeps a packet charged to its sending socket
# until it leaves the ifb queue, so TCP small queues let each sender keep only about a
# millisecond of its pacing rate in that queue; a CUBIC flow that starts against a busy
# link can need a few seconds to ramp up (visible in the per-second table). A router
# namespace in between (IP forwarding releases the packets) avoids that, but then tail drops
# in the full FIFO stall single requests for seconds (TCP retransmission back-off) and the
# runs vary much more. (b) Without sch_netem there is no propagation delay. (c) Delay-based
# yielding needs a competitor that builds a queue: against a BBR flow Strata keeps a
# per-connection share.
# Prints the tables as a markdown section for docs/BENCHMARKS.md on standard output
# (progress on standard error). Needs root, ip, tc, iperf3, moto_server, rclone, python3.
#
# Settings (environment): STRATA_NETNS_RATE_MBIT (default 80), STRATA_NETNS_DELAY_MS
# (default 10, only with netem), STRATA_BIN (default: build target/release/strata).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/strata-netns-bench}"
RATE_MBIT="${STRATA_NETNS_RATE_MBIT:-80}"
DELAY_MS="${STRATA_NETNS_DELAY_MS:-10}"
CAP="4M"
CAP_BYTES=$((4 << 20))

log() { echo "netns-bench: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and tc); run: sudo $0"
for tool in ip tc iperf3 rclone python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/install-test-deps.sh installs iperf3; rclone: https://rclone.org/install/)"
done
MOTO="$(command -v moto_server || true)"
[ -n "$MOTO" ] || MOTO="$PWD/target/moto-venv/bin/moto_server"
[ -x "$MOTO" ] || die "moto_server is missing; run scripts/s3-server.sh install"
if [ -n "${STRATA_BIN:-}" ]; then
    STRATA="$STRATA_BIN"
else
    cargo build --release -p strata-cli -q
    STRATA="$PWD/target/release/strata"
fi

id=$$
SRV="strata-srv-$id"
CLI="strata-cli-$id"
VS="vs$id"
VC="vc$id"
IFB="ifb$id"
NET="10.231.$((id % 200 + 20))"
SRV_IP="$NET.1"
CLI_IP="$NET.2"
PORT=9000
IPERF_PORT=5201
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    ip netns pids "$SRV" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$CLI" 2>/dev/null | xargs -r kill 2>/dev/null || true
    sleep 0.3
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

log "namespaces $SRV / $CLI, link $RATE_MBIT Mbit/s"
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "$VS" netns "$SRV" type veth peer name "$VC" netns "$CLI"
in_srv ip addr add "$SRV_IP/24" dev "$VS"
in_cli ip addr add "$CLI_IP/24" dev "$VC"
in_srv ip link set lo up
in_cli ip link set lo up
in_srv ip link set "$VS" up
in_cli ip link set "$VC" up
# The bottleneck: client-to-server traffic is redirected at the server's ingress to an
# ifb device whose token bucket drains at the link rate; its FIFO holds 250 ms.
in_srv ip link add "$IFB" type ifb
in_srv ip link set "$IFB" up
in_srv tc qdisc add dev "$IFB" root tbf rate "${RATE_MBIT}mbit" burst 64kb latency 250ms
in_srv tc qdisc add dev "$VS" handle ffff: ingress
in_srv tc filter add dev "$VS" parent ffff: protocol ip prio 1 u32 match ip dport "$PORT" 0xffff \
    action mirred egress redirect dev "$IFB"
in_srv tc filter add dev "$VS" parent ffff: protocol all prio 2 u32 match u32 0 0 \
    action mirred egress redirect dev "$IFB"
if in_srv tc qdisc add dev "$VS" root netem delay "${DELAY_MS}ms" 2>/dev/null; then
    PATH_NOTE="plus ${DELAY_MS} ms propagation delay on the return path (netem)"
else
    PATH_NOTE="no added propagation delay (this kernel has no sch_netem; round trip ~0.1 ms plus the queue)"
fi
log "shaping: tbf ${RATE_MBIT} Mbit/s, 250 ms FIFO; $PATH_NOTE"

in_srv "$MOTO" -H "$SRV_IP" -p "$PORT" >"$WORK.moto.log" 2>&1 &
pids+=($!)
in_srv iperf3 -s -p "$IPERF_PORT" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
    code=$(in_cli python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen('http://$SRV_IP:$PORT/', timeout=1).status)
except Exception as e: print(getattr(e, 'code', 0))" 2>/dev/null || echo 0)
    [ "$code" != 0 ] && break
    sleep 0.5
done
[ "$code" != 0 ] || die "moto did not start (see $WORK.moto.log)"
mkbucket() {
    in_cli python3 -c "import urllib.request
urllib.request.urlopen(urllib.request.Request('http://$SRV_IP:$PORT/$1', method='PUT'), timeout=5)"
}

# Data: 32 MiB random files, enough to keep the link busy for the whole run.
rate_bytes=$((RATE_MBIT * 1000000 / 8))
need_mib=$(( (rate_bytes * 50 / 1048576 + 31) / 32 * 32 ))
mkdir -p "$WORK/src"
have_mib=$(( $(du -sm "$WORK/src" | cut -f1) ))
if [ "$have_mib" -lt "$need_mib" ]; then
    log "writing $need_mib MiB of random files to $WORK/src"
    rm -rf "$WORK/src"; mkdir -p "$WORK/src"
    for i in $(seq 1 $((need_mib / 32))); do
        head -c $((32 << 20)) /dev/urandom >"$WORK/src/f$(printf %03d "$i").bin"
    done
fi

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other RCLONE_CONFIG_MOTO_ENV_AUTH=true \
       RCLONE_CONFIG_MOTO_ENDPOINT="http://$SRV_IP:$PORT" RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE=true

# Samples "seconds s3_bytes other_bytes" every 0.1 s into $1 for $2 seconds.
sample() {
    local out="$1" secs="$2" start now
    start=$(date +%s.%N)
    : >"$out"
    while :; do
        now=$(date +%s.%N)
        awk -v a="$now" -v b="$start" 'BEGIN { exit !(a - b < '"$secs"') }' || break
        in_srv tc -s filter show dev "$VS" parent ffff: \
            | awk -v t="$(awk -v a="$now" -v b="$start" 'BEGIN { printf "%.2f", a - b }')" \
                '/Sent [0-9]+ bytes/ { v[n++] = $2 } END { print t, v[0], v[1] }' >>"$out"
        sleep 0.1
    done
}

# Runs a command in the client namespace for at most $2 seconds, in the background
# (its pid in $last_pid).
timed() {
    local name="$1" secs="$2"; shift 2
    in_cli timeout -s INT "$secs" "$@" >"$WORK.$name.out" 2>"$WORK.$name.err" &
    last_pid=$!
}

# --- 1. Congestion ---------------------------------------------------------------------
congestion() {
    local name="$1"; shift
    log "congestion run $name: strata alone, iperf3 from 12 s to 22 s, 40 s in all"
    mkbucket "$name"
    sample "$WORK.$name.samples" 40 &
    local sampler=$!
    timed "$name" 40 env STRATA_CATALOG="$WORK/catalog-$name-$id.db" \
        "$STRATA" migrate "$@" --s3-endpoint "http://$SRV_IP:$PORT" "$WORK/src" "s3://$name/ds"
    local strata_pid=$last_pid
    sleep 12
    in_cli iperf3 -c "$SRV_IP" -p "$IPERF_PORT" -t 10 -C cubic >"$WORK.$name.iperf3" 2>&1 \
        || log "iperf3 failed: $(tail -2 "$WORK.$name.iperf3")"
    wait "$sampler" || true
    wait "$strata_pid" || true
}
congestion controlled
congestion uncontrolled --no-congestion-control

# --- 2. Fixed cap ----------------------------------------------------------------------
log "fixed cap: strata --bwlimit $CAP, then rclone copy --bwlimit $CAP, 25 s each"
mkbucket capstrata
sample "$WORK.cap-strata.samples" 25 &
sampler=$!
timed cap-strata 25 env STRATA_CATALOG="$WORK/catalog-cap-$id.db" \
    "$STRATA" migrate --bwlimit "$CAP" --s3-endpoint "http://$SRV_IP:$PORT" "$WORK/src" s3://capstrata/ds
strata_pid=$last_pid
wait "$sampler" || true
wait "$strata_pid" || true
mkbucket caprclone
sample "$WORK.cap-rclone.samples" 25 &
sampler=$!
timed cap-rclone 25 env -u AWS_CA_BUNDLE rclone copy --bwlimit "$CAP" "$WORK/src" moto:caprclone/ds
rclone_pid=$last_pid
wait "$sampler" || true
wait "$rclone_pid" || true

# --- Report ----------------------------------------------------------------------------
python3 - "$WORK" "$RATE_MBIT" "$CAP_BYTES" "$PATH_NOTE" "$(nproc)" <<'PY'
import sys
work, mbit, cap, note, cores = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
link = mbit * 1e6 / 8
MB = 1e6

def load(name):
    rows = []
    for line in open(f"{work}.{name}.samples"):
        p = line.split()
        if len(p) == 3:
            rows.append((float(p[0]), int(p[1]), int(p[2])))
    return rows

def rate(rows, t0, t1, col):
    """Average bytes/s of column col between the samples nearest t0 and t1."""
    a = min(rows, key=lambda r: abs(r[0] - t0))
    b = min(rows, key=lambda r: abs(r[0] - t1))
    return (b[col] - a[col]) / max(b[0] - a[0], 1e-9)

ctl, unc = load("controlled"), load("uncontrolled")
print(f"### Yielding to a competing flow over a real network stack ({mbit:.0f} Mbit/s bottleneck)\n")
print(f"`scripts/netns-bench.sh`: two network namespaces joined by a veth pair; moto (S3) and an "
      f"iperf3 server in one, `strata migrate` of a local dataset of 32 MiB random files in the "
      f"other; the client-to-server link shaped to {mbit:.0f} Mbit/s ({link / MB:.1f} MB/s) by a "
      f"token bucket with a 250 ms FIFO at the server's ingress; {note}. Strata runs with its "
      f"defaults (congestion control on, no cap), then with `--no-congestion-control`. From 12 s "
      f"to 22 s an `iperf3 -C cubic` bulk flow shares the bottleneck. Rates per second at the "
      f"bottleneck, by destination port; {cores} cores.\n")
print("| second | Strata MB/s | iperf3 MB/s | Strata --no-congestion-control MB/s | iperf3 MB/s |")
print("|---:|---:|---:|---:|---:|")
for sec in range(0, 39):
    mark = " (iperf3)" if 12 <= sec < 22 else ""
    cells = [rate(r, sec, sec + 1, c) / MB for r in (ctl, unc) for c in (1, 2)]
    print(f"| {sec}-{sec + 1}{mark} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
phases = [("before (4-12 s)", 4, 12), ("iperf3 running, from 3 s after its start (15-22 s)", 15, 22),
          ("after (24-38 s)", 24, 38)]
print("\n| phase | Strata % of link | iperf3 % of link | without controller: Strata % | iperf3 % |")
print("|---|---:|---:|---:|---:|")
for name, a, b in phases:
    cells = [rate(r, a, b, c) / link * 100 for r in (ctl, unc) for c in (1, 2)]
    print(f"| {name} | " + " | ".join(f"{v:.0f} %" for v in cells) + " |")

print(f"\n### Fixed cap on the same link: `--bwlimit 4M` (4 MiB/s = {cap / MB:.2f} MB/s)\n")
print("Sliding 10-second windows, one starting every second from 5 s (after start-up) to the "
      "end of the 25-second run; the rate sampled every 0.1 s.\n")
print("| tool | mean MB/s | min 10-s window | max 10-s window | worst deviation from the cap |")
print("|---|---:|---:|---:|---:|")
for name, label in [("cap-strata", "`strata migrate --bwlimit 4M`"), ("cap-rclone", "`rclone copy --bwlimit 4M`")]:
    rows = load(name)
    wins = [rate(rows, s, s + 10, 1) for s in range(5, 15)]
    mean = rate(rows, 4, 24, 1)
    dev = max(abs(w - cap) / cap for w in wins)
    print(f"| {label} | {mean / MB:.2f} | {min(wins) / MB:.2f} | {max(wins) / MB:.2f} | {dev * 100:.1f} % |")
PY
log "done; raw samples in $WORK.*.samples"
