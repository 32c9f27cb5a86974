#!/usr/bin/env bash
# Access-event ingest rate into the service's heat from a Kafka topic and a NATS subject,
# with the batch endpoint POST /v1/access-events measured in the same run as the peer
# (docs/BENCHMARKS.md, sessions 13 and 14). Release build (the script builds the example).
# Starts a nats-server with JetStream (its storage in a temporary directory) and a Tansu
# broker (memory storage) on free loopback ports, runs
# crates/server/examples/bench_streams.rs against them (it starts the service in process,
# one fresh service per source), and stops both servers.
#
# Usage: scripts/bench-streams.sh [EVENTS] [KEYS] [PER_MESSAGE] [SOURCES]
#   (defaults 2000000 events over 100000 keys, 100 NDJSON lines per NATS message or
#   Kafka record, SOURCES http,kafka,nats: the phases to run, `raw` to add
#   the NATS server+client read alone). Needs nats-server and
#   tansu: scripts/install-test-deps.sh. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-2000000}"
KEYS="${2:-100000}"
PER_MESSAGE="${3:-100}"
SOURCES="${4:-http,kafka,nats}"

NATS_SERVER="$(command -v nats-server || echo /usr/sbin/nats-server)"
[ -x "$NATS_SERVER" ] || { echo "nats-server is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
TANSU="$(scripts/tansu.sh path)" || { echo "tansu is missing: run scripts/install-test-deps.sh" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cargo build --release -q -p strata-server --example bench_streams
WORK="$(mktemp -d /tmp/strata-bench-streams.XXXXXX)"
NATS_PORT="$(free_port)"
KAFKA_PORT="$(free_port)"
"$NATS_SERVER" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
trap 'kill $NATS_PID $TANSU_PID 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then
        break
    fi
    sleep 0.1
done
echo "nats-server $("$NATS_SERVER" --version | awk '{print $NF}') on 127.0.0.1:$NATS_PORT, tansu on 127.0.0.1:$KAFKA_PORT; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
"${CARGO_TARGET_DIR:-target}/release/examples/bench_streams" "nats://127.0.0.1:$NATS_PORT" "127.0.0.1:$KAFKA_PORT" \
    "$EVENTS" "$KEYS" "$PER_MESSAGE" "$SOURCES"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
