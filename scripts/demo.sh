#!/usr/bin/env bash
# Mounts fsgate's in-memory sample drive at ${1:-/tmp/fsgate-memory} and serves it until
# Ctrl-C, printing every event. Try it from another shell: ls, cp, echo > file, cat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
mountpoint="${1:-/tmp/fsgate-memory}"
mkdir -p "$mountpoint"
cargo build --release -p fsgate-cli
exec target/release/fsgate mount memory "$mountpoint" --log-events
