#!/usr/bin/env bash
# Runs fsgate's whole test suite: installs what the tests need, then builds and tests every
# crate. Integration tests mount FUSE filesystems, attach loop devices and open fanotify and
# proc connector sockets: run as root to run them all (they say so when they skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --all-targets
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
