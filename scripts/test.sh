#!/usr/bin/env bash
# Runs fsgate's whole test suite: installs what the tests need, then builds and tests every
# crate. Integration tests mount FUSE filesystems, attach loop devices and open fanotify and
# proc connector sockets: run as root to run them all (they say so when they skip).
# Runs from any directory, and with CARGO_TARGET_DIR anywhere: the tests find what they
# build through cargo, never under a fixed target/.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
# A one-shot run gains nothing from incremental artifacts or full debug info, and both cost
# disk: a fresh clone's target directory is 2.3 GiB without them and 6.2 GiB with them, and
# machines of this kind have been seen with less than 1 GiB free. Line tables keep test
# backtraces readable. Either can be overridden from the environment.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
# The gates first: formatting, lints (warnings are errors) and docs, for every crate of the
# workspace, the vendored fuser included.
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
cargo build --workspace --all-targets
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
# The Python edition: the wheel (reusing the build above) in a virtual environment, and its
# pytest suite.
bash scripts/test-python.sh
