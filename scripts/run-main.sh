#!/usr/bin/env bash
# Build Strata and run its main job on embedded defaults: migrate the sample scientific
# dataset (../shared/data/scientific, or $STRATA_SAMPLE_DATA) into ./strata-data, verify
# the copy, and list the job. The catalog goes to ./strata-data/catalog.db unless
# STRATA_CATALOG is set.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p strata-cli
SRC="${STRATA_SAMPLE_DATA:-../shared/data/scientific}"
DST="./strata-data/scientific"
export STRATA_CATALOG="${STRATA_CATALOG:-$PWD/strata-data/catalog.db}"
mkdir -p strata-data
if [ ! -d "$SRC" ]; then
    echo "sample data $SRC not found; set STRATA_SAMPLE_DATA to a directory to migrate" >&2
    exit 2
fi
./target/release/strata migrate "$SRC" "$DST"
./target/release/strata verify "$DST"
./target/release/strata status
