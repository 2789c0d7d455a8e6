#!/usr/bin/env bash
# Direct access: reading a whole 1 GiB loop device with `read_sectors` (1 MiB O_DIRECT
# transfers into an aligned buffer) and with the volume stream, against
# `dd if=DEV of=/dev/null iflag=direct bs=1M`, in one run, interleaved, REPEAT times each after
# one warm-up pass. Prints MiB/s per run, the means, and fsgate/dd ratios (goal >= 0.95).
#
# Usage (as root): bench/direct/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SIZE_MIB (default 1024), REPEAT (default 5).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/direct/run.sh: run as root (loop devices)" >&2; exit 1; }

SIZE_MIB=${SIZE_MIB:-1024}
REPEAT=${REPEAT:-5}
TARGET=${CARGO_TARGET_DIR:-target}
export FSGATE_PRODUCT_GUID='{5B6C7D8E-9F01-4A2B-8C3D-4E5F60718293}'

cargo build -q -p fsgate-cli
cargo build -q --release -p fsgate-direct --example read_volume
READER="$TARGET/release/examples/read_volume"

WORK=$(mktemp -d /tmp/fsgate-bench-direct.XXXXXX)
DEV=""
cleanup() {
    [ -n "$DEV" ] && losetup -d "$DEV" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$TARGET/debug/fsgate" package "$WORK/fsgate.pkg" >/dev/null
"$TARGET/debug/fsgate" install "$WORK/fsgate.pkg" --product-guid "$FSGATE_PRODUCT_GUID" --root "$WORK/sys" >/dev/null 2>&1
export FSGATE_ROOT="$WORK/sys"

dd if=/dev/urandom of="$WORK/disk.img" bs=1M count="$SIZE_MIB" status=none
DEV=$(losetup --find --show "$WORK/disk.img")

dd_mib_s() {
    local line secs
    line=$(dd if="$DEV" of=/dev/null iflag=direct bs=1M 2>&1 | tail -n1)
    secs=$(echo "$line" | sed -E 's/.* copied, ([0-9.e+-]+) s.*/\1/')
    awk -v s="$secs" -v m="$SIZE_MIB" 'BEGIN { printf "%.1f", m / s }'
}
fsgate_mib_s() {
    "$READER" "$DEV" "$1" | sed -E 's/.*mib_s=([0-9.]+).*/\1/'
}

dd_mib_s >/dev/null; fsgate_mib_s sectors >/dev/null; fsgate_mib_s stream >/dev/null

printf '%-4s %12s %16s %16s\n' run "dd MiB/s" "read_sectors" "stream"
DD=(); SEC=(); STR=()
for i in $(seq 1 "$REPEAT"); do
    d=$(dd_mib_s); s=$(fsgate_mib_s sectors); t=$(fsgate_mib_s stream)
    DD+=("$d"); SEC+=("$s"); STR+=("$t")
    printf '%-4s %12s %16s %16s\n' "$i" "$d" "$s" "$t"
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
MD=$(mean "${DD[@]}"); MS=$(mean "${SEC[@]}"); MT=$(mean "${STR[@]}")
printf '%-4s %12s %16s %16s\n' mean "$MD" "$MS" "$MT"
awk -v d="$MD" -v s="$MS" -v t="$MT" 'BEGIN {
    printf "ratio vs dd: read_sectors %.3fx, stream %.3fx (goal >= 0.95x)\n", s / d, t / d }'
