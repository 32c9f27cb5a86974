#!/usr/bin/env bash
# Run every test of the project on a fresh Debian machine with the Rust toolchain.
# Installs what the tests need (b3sum, moto_server for a real loopback S3), then runs
# formatting and lint checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

# A clean clone gains nothing from incremental compilation, and its cache is gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "== disk free before the build"
df -h . "${CARGO_TARGET_DIR:-target}" 2>/dev/null || df -h .

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast
