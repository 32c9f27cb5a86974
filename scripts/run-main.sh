#!/usr/bin/env bash
# Build Strata and run its main job on embedded defaults: the tiering service
# (`strata serve`) with an embedded SQLite catalog and three local tiers (hot, warm, cold)
# under ./strata-data, listening on 127.0.0.1:7070. Stop it with Ctrl-C.
# Extra arguments go to `strata serve` (e.g. --listen 127.0.0.1:8080 --data-dir /srv/strata).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p strata-cli
exec ./target/release/strata serve "$@"
