#!/usr/bin/env bash
# A real S3-compatible server (moto, from PyPI) on loopback, for tests and local trials.
#
#   scripts/s3-server.sh install            install moto_server (into target/moto-venv if
#                                           it is not on PATH already)
#   scripts/s3-server.sh start PORT         start it in the background on 127.0.0.1:PORT,
#                                           wait until it answers (30 s at most)
#   scripts/s3-server.sh stop PORT          stop the server started on PORT
#   scripts/s3-server.sh mkbucket PORT NAME create a bucket (moto accepts unsigned requests)
#   scripts/s3-server.sh status PORT        say whether it runs
#
# The pid goes to target/s3-server-PORT.pid, the log to target/s3-server-PORT.log.
# Moto accepts any credentials, e.g. AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing,
# with AWS_ENDPOINT_URL=http://127.0.0.1:PORT.
#
# The store crate's tests start their own moto on a free port; they only need
# `moto_server` on PATH or in target/moto-venv (run `install` once).

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/target/moto-venv"
# shellcheck source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

die() {
    echo "s3-server: $*" >&2
    exit 1
}

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_port() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )) || die "PORT must be a number from 1 to 65535, not '${1:-}'"
}

find_moto() {
    if command -v moto_server >/dev/null 2>&1; then
        command -v moto_server
    elif [[ -x "$venv/bin/moto_server" ]]; then
        echo "$venv/bin/moto_server"
    else
        return 1
    fi
}

install_moto() {
    if find_moto >/dev/null; then
        echo "moto_server is installed: $(find_moto)"
        return 0
    fi
    make_venv "$venv" 'moto[server]'
    "$venv/bin/pip" install --quiet 'moto[server]' \
        || die "pip install 'moto[server]' failed (see above); check the network or proxy and re-run"
    echo "moto_server installed: $venv/bin/moto_server"
}

# HTTP request to the server; prints the status code (000 when nothing answers).
http_status() {
    local method="$1" url="$2"
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -w '%{http_code}' -X "$method" --max-time 2 "$url" 2>/dev/null || true
    else
        python3 - "$method" "$url" 2>/dev/null <<'EOF' || echo 000
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[2], method=sys.argv[1], data=b"" if sys.argv[1] == "PUT" else None)
try:
    print(urllib.request.urlopen(req, timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
    fi
}

is_running() {
    local pidfile="$1"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
    local port="$1"
    check_port "$port"
    local pidfile="$target/s3-server-$port.pid" log="$target/s3-server-$port.log"
    mkdir -p "$target"
    if is_running "$pidfile"; then
        echo "s3-server already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
        return 0
    fi
    if [[ "$(http_status GET "http://127.0.0.1:$port/")" != 000 ]]; then
        die "something else already answers on 127.0.0.1:$port; pick another port"
    fi
    local moto
    moto="$(find_moto)" || { install_moto; moto="$(find_moto)"; } || die "moto_server is missing; run: scripts/s3-server.sh install"
    nohup "$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
        if [[ "$(http_status GET "http://127.0.0.1:$port/")" != 000 ]]; then
            echo "s3-server running on http://127.0.0.1:$port (pid $(cat "$pidfile"), log $log)"
            return 0
        fi
        if ! is_running "$pidfile"; then
            break
        fi
        sleep 0.5
    done
    echo "--- last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    stop "$port" >/dev/null 2>&1 || true
    die "moto_server did not answer on 127.0.0.1:$port within 30 s (see the log above)"
}

stop() {
    local port="$1"
    check_port "$port"
    local pidfile="$target/s3-server-$port.pid"
    if ! [[ -f "$pidfile" ]]; then
        echo "no s3-server pid file for port $port ($pidfile); nothing to stop"
        return 0
    fi
    local pid
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "s3-server on port $port stopped"
}

mkbucket() {
    local port="$1" name="${2:-}"
    check_port "$port"
    [[ -n "$name" ]] || die "usage: scripts/s3-server.sh mkbucket PORT NAME"
    local status
    status="$(http_status PUT "http://127.0.0.1:$port/$name")"
    case "$status" in
        200) echo "bucket $name created" ;;
        409) echo "bucket $name already exists" ;;
        000) die "no server answers on 127.0.0.1:$port; run: scripts/s3-server.sh start $port" ;;
        *) die "creating bucket $name failed with HTTP $status" ;;
    esac
}

case "${1:-}" in
    install) install_moto ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    mkbucket) [[ $# -eq 3 ]] || usage; mkbucket "$2" "$3" ;;
    status)
        [[ $# -eq 2 ]] || usage
        check_port "$2"
        if is_running "$target/s3-server-$2.pid"; then echo "running (pid $(cat "$target/s3-server-$2.pid"))"; else echo "not running"; exit 1; fi
        ;;
    *) usage ;;
esac
