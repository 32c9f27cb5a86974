#!/usr/bin/env bash
# A real PostgreSQL server (Debian's `postgresql` package) on loopback, for humans and
# benchmarks that want a shared catalog (`strata --catalog postgres://...`). The tests
# start their own (crates/testsupport); this is the same recipe for a shell.
#
#   scripts/postgres.sh install        install PostgreSQL (apt) if initdb is missing
#   scripts/postgres.sh start PORT     initialise (once) and start a server on
#                                      127.0.0.1:PORT with a database `strata`; prints
#                                      the catalog URL
#   scripts/postgres.sh stop PORT      stop it (fast shutdown); its data stays
#   scripts/postgres.sh status PORT    say whether it runs
#   scripts/postgres.sh url PORT       print the catalog URL
#
# Data, socket and log live in $STRATA_PG_DIR (default /tmp/strata-postgres-PORT), owned
# by the `postgres` user when run as root (initdb refuses root). Authentication is
# `trust` on 127.0.0.1 only: a local test server, not a production one.

set -euo pipefail

die() {
    echo "postgres: $*" >&2
    exit 1
}

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_port() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )) || die "PORT must be a number from 1 to 65535, not '${1:-}'"
}

bin_dir() {
    local newest
    newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$newest" && -x "$newest/initdb" ]]; then
        echo "$newest"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        return 1
    fi
}

install_postgres() {
    if bin_dir >/dev/null; then
        echo "PostgreSQL is installed: $(bin_dir)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "initdb is missing and apt-get is not available; install PostgreSQL's server programs"
    local sudo=""
    [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
    echo "installing postgresql (apt) ..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    bin_dir >/dev/null || die "postgresql was installed but initdb is still missing"
}

# Runs a command as the server's user: `postgres` when we are root.
as_server_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

dir_of() {
    echo "${STRATA_PG_DIR:-/tmp/strata-postgres-$1}"
}

url_of() {
    echo "postgres://postgres@127.0.0.1:$1/strata"
}

is_running() {
    local bin="$1" port="$2"
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"
}

start() {
    local port="$1"
    check_port "$port"
    local bin dir
    bin="$(bin_dir)" || { install_postgres; bin="$(bin_dir)"; }
    dir="$(dir_of "$port")"
    if is_running "$bin" "$port"; then
        [[ -f "$dir/data/postmaster.pid" ]] || die "something else already answers on 127.0.0.1:$port; pick another port"
        echo "postgres already running on 127.0.0.1:$port: $(url_of "$port")"
        return 0
    fi
    mkdir -p "$dir"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        as_server_user "$bin/initdb" -D "$dir/data" --auth=trust --username=postgres \
            --encoding=UTF8 --locale=C --data-checksums >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed (log above)"; }
    fi
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; die "the server did not start on 127.0.0.1:$port (log above)"; }
    if [[ "$("$bin/psql" -X -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "SELECT 1 FROM pg_database WHERE datname = 'strata'")" != 1 ]]; then
        "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE strata"
    fi
    echo "postgres running on 127.0.0.1:$port (data $dir/data, log $dir/server.log)"
    echo "catalog: --catalog $(url_of "$port")"
}

stop() {
    local port="$1"
    check_port "$port"
    local bin dir
    bin="$(bin_dir)" || die "PostgreSQL is not installed; nothing to stop"
    dir="$(dir_of "$port")"
    if [[ ! -f "$dir/data/postmaster.pid" ]]; then
        echo "no server of ours on port $port ($dir/data); nothing to stop"
        return 0
    fi
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    echo "postgres on port $port stopped (data kept in $dir/data)"
}

case "${1:-}" in
    install) install_postgres ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    url) [[ $# -eq 2 ]] || usage; check_port "$2"; url_of "$2" ;;
    status)
        [[ $# -eq 2 ]] || usage
        check_port "$2"
        bin="$(bin_dir)" || die "PostgreSQL is not installed"
        if is_running "$bin" "$2"; then echo "running: $(url_of "$2")"; else echo "not running"; exit 1; fi
        ;;
    *) usage ;;
esac
