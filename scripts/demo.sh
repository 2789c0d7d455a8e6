#!/usr/bin/env bash
# Mounts fsgate's in-memory sample drive at ${1:-/tmp/fsgate-memory} and serves it until
# Ctrl-C, printing every event. Try it from another shell: ls, cp, echo > file, cat.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
mountpoint="${1:-/tmp/fsgate-memory}"
mkdir -p "$mountpoint"
# `cargo run` finds the binary wherever CARGO_TARGET_DIR puts it.
exec cargo run --quiet --release -p fsgate-cli -- mount memory "$mountpoint" --log-events
