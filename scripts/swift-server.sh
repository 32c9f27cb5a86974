#!/usr/bin/env bash
# OpenStack Swift (PyPI `swift`) on loopback, for the tests of swift:// stores:
#
#   scripts/swift-server.sh install          install what is missing:
#     - swift (proxy, account, container and object servers, swift-ring-builder) into
#       target/swift-venv; its wheels (pyeclib ships liberasurecode inside) need no
#       compiler and no Debian library on Python 3.9+;
#     - memcached (Debian package): Swift's tempauth keeps its tokens in memcache and
#       refuses every request without one.
#   scripts/swift-server.sh run DIR [PORT]   configure a one-node Swift in DIR (which must
#       be on a file system with user xattrs: ext4, xfs, tmpfs on Linux 6.6+), build its
#       rings (1 replica, one device), start memcached and the four servers on 127.0.0.1
#       (the proxy on PORT, or a free port), print `AUTH_URL=http://127.0.0.1:PORT/auth/v1.0`
#       and stay in the foreground; the servers die with this script (SIGKILL included:
#       each runs under `setpriv --pdeathsig KILL`).
#
# The tempauth user is test:tester, key `testing` (ST_USER / ST_KEY), account AUTH_test.
# The store crate's tests (crates/store/src/testing/swift.rs) run `run` once per test
# binary; STRATA_SWIFT_VENV names another venv.

set -euo pipefail
# Swift's dependencies print deprecation warnings on every start.
export PYTHONWARNINGS=ignore

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${STRATA_SWIFT_VENV:-$root/target/swift-venv}"
# The version the tests were written against.
swift_version="2.38.3"
# shellcheck source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

die() {
    echo "swift-server: $*" >&2
    exit 1
}

install_swift() {
    if [[ -x "$venv/bin/swift-proxy-server" ]]; then
        echo "swift is installed"
    else
        [[ -x "$venv/bin/pip" ]] || make_venv "$venv" swift
        "$venv/bin/pip" install --quiet "swift==$swift_version" \
            || die "pip install swift failed (see above); check the network or proxy and re-run"
        echo "swift installed: $venv/bin/swift-proxy-server"
    fi
    if ! command -v memcached >/dev/null 2>&1 && [[ ! -x /usr/bin/memcached ]]; then
        local sudo=""
        [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
        echo "installing memcached (apt) ..."
        DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq memcached >/dev/null \
            || die "cannot install memcached; install it (Debian: apt-get install memcached) and re-run"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_configs DIR PROXY ACCOUNT CONTAINER OBJECT MEMCACHE
write_configs() {
    local dir="$1" proxy="$2" account="$3" container="$4" object="$5" memcache="$6"
    mkdir -p "$dir/etc" "$dir/srv/d1" "$dir/run" "$dir/cache"
    cat >"$dir/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = strata-test
swift_hash_path_prefix = strata-test

[storage-policy:0]
name = gold
default = yes
EOF
    # One server section per kind, all on loopback, one process each (workers = 0), no
    # mount check (DIR/srv/d1 is a plain directory), no fallocate reserve.
    local kind port
    for kind in account container object; do
        case "$kind" in
            account) port="$account" ;;
            container) port="$container" ;;
            object) port="$object" ;;
        esac
        cat >"$dir/etc/$kind-server.conf" <<EOF
[DEFAULT]
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
log_level = WARNING
log_address = /nonexistent
recon_cache_path = $dir/cache

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
EOF
    done
    cat >"$dir/etc/proxy-server.conf" <<EOF
[DEFAULT]
swift_dir = $dir/etc
bind_ip = 127.0.0.1
bind_port = $proxy
workers = 0
log_level = WARNING
log_address = /nonexistent

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
token_life = 86400

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcache

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
}

# build_rings DIR ACCOUNT CONTAINER OBJECT: part power 6, one replica, one device each.
build_rings() {
    local dir="$1" builder="$venv/bin/swift-ring-builder" kind port
    for kind in account container object; do
        case "$kind" in
            account) port="$2" ;;
            container) port="$3" ;;
            object) port="$4" ;;
        esac
        "$builder" "$dir/etc/$kind.builder" create 6 1 1 >/dev/null
        "$builder" "$dir/etc/$kind.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
        "$builder" "$dir/etc/$kind.builder" rebalance >/dev/null || true
        [[ -f "$dir/etc/$kind.ring.gz" ]] || die "swift-ring-builder made no $kind ring in $dir/etc"
    done
}

run_swift() {
    local dir="$1" proxy="${2:-}"
    [[ -x "$venv/bin/swift-proxy-server" ]] || die "swift is not installed; run scripts/swift-server.sh install"
    local memcached
    memcached="$(command -v memcached || echo /usr/bin/memcached)"
    [[ -x "$memcached" ]] || die "memcached is not installed; run scripts/swift-server.sh install"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [[ -n "$proxy" ]] || proxy="$(free_port)"
    local account container object memcache
    account="$(free_port)"
    container="$(free_port)"
    object="$(free_port)"
    memcache="$(free_port)"
    write_configs "$dir" "$proxy" "$account" "$container" "$object" "$memcache"
    build_rings "$dir" "$account" "$container" "$object"
    local keep=(setpriv --pdeathsig KILL)
    "${keep[@]}" "$memcached" -l 127.0.0.1 -p "$memcache" -U 0 -m 64 -u "$(id -un)" &
    local kind
    for kind in account container object proxy; do
        "${keep[@]}" "$venv/bin/python" -W ignore "$venv/bin/swift-$kind-server" \
            "$dir/etc/$kind-server.conf" >>"$dir/$kind.log" 2>&1 &
    done
    echo "AUTH_URL=http://127.0.0.1:$proxy/auth/v1.0"
    echo "ST_USER=test:tester ST_KEY=testing (logs in $dir/*.log)"
    # Stay up while every server is; one that dies takes the others down with this script.
    wait -n
    die "a Swift server exited; see $dir/*.log"
}

case "${1:-}" in
    install)
        install_swift
        ;;
    run)
        [[ -n "${2:-}" ]] || die "usage: scripts/swift-server.sh run DIR [PORT]"
        run_swift "$2" "${3:-}"
        ;;
    *)
        sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
