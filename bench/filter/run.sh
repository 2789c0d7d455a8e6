#!/bin/sh
# 100,000 file operations (25,000 files x create, write, close, delete; bench/filter/ops.py)
# on a private loop-mounted ext4, with no monitor, `fsgate monitor --json`, fatrace, and the
# allow-every-open permission filter (crates/fsgate-filter/examples/allow_opens.rs) attached
# in turn. Reports the median of R runs, the slowdown vs no monitor, and the events each
# monitor reported for the workload's files against the 5 per file the kernel can report
# (create, open, write, close, delete).
# Usage: [NO_BUILD=1] bench/filter/run.sh [FILES] [RUNS]   (root; release build; fatrace)
set -eu
N=${1:-25000}
R=${2:-3}
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-filter2}
# NO_BUILD=1 reuses the binaries already in $CARGO_TARGET_DIR/release.
[ -n "${NO_BUILD:-}" ] || cargo build -q --release -p fsgate-cli -p fsgate-filter --bin fsgate --example allow_opens
FSGATE=$CARGO_TARGET_DIR/release/fsgate
ALLOW=$CARGO_TARGET_DIR/release/examples/allow_opens
command -v fatrace >/dev/null || apt-get install -y fatrace >/dev/null
W=$(mktemp -d)
MNT=$W/mnt
cleanup() {
  for p in ${PIDS:-}; do kill -TERM "$p" 2>/dev/null || true; done
  umount -l "$MNT" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
truncate -s 1G "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mkdir "$MNT"
mount -o loop "$W/fs.img" "$MNT"
mount --make-private "$MNT"
RUN=0
ops() { # one workload run in a fresh, uniquely named directory; prints seconds
  RUN=$((RUN + 1))
  UNIQ="bench-$$-$RUN"
  python3 "$ROOT/bench/filter/ops.py" "$MNT/$UNIQ" "$N"
}
tidy() { rmdir "$MNT/$UNIQ"; sync; } # after the monitor stopped, so its names still resolve
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
wait_ready() { until grep -q "$2" "$1" 2>/dev/null; do sleep 0.1; done; }

ops >/dev/null; tidy # warm-up
: > "$W/none"; i=0; while [ $i -lt "$R" ]; do ops >> "$W/none"; tidy; i=$((i+1)); done
base=$(median < "$W/none")

# fsgate monitor: one JSON object per event; counted per kind for the files of each run.
: > "$W/fsgate.t"; : > "$W/fsgate.n"; i=0
while [ $i -lt "$R" ]; do
  "$FSGATE" monitor "$MNT" --json > "$W/fsgate.out" 2> "$W/fsgate.err" &
  M=$!; PIDS=$M; wait_ready "$W/fsgate.err" ready:
  ops >> "$W/fsgate.t"
  sleep 1; kill -TERM $M; wait $M || true; PIDS=; tidy
  grep -F "/$UNIQ/f" "$W/fsgate.out" | grep -o '"event":"[a-z_]*"' | sort | uniq -c > "$W/fsgate.kinds"
  awk '{s+=$1} END{print s+0}' "$W/fsgate.kinds" >> "$W/fsgate.n"
  i=$((i+1))
done
fs=$(median < "$W/fsgate.t"); fs_ev=$(sort -n "$W/fsgate.n" | head -1)

# fatrace on the mount (-c), to a file. It names files through the event's descriptor, so a
# file deleted before fatrace reads its record shows as "(deleted)", and it reports creates
# and deletes per directory without names: every letter of the workload's records counts
# (a merged "CWO" is three), named or not; named records are counted apart.
: > "$W/fatrace.t"; : > "$W/fatrace.n"; : > "$W/fatrace.named"; i=0
while [ $i -lt "$R" ]; do
  rm -f "$W/fatrace.out"
  (cd "$MNT" && exec fatrace -c -o "$W/fatrace.out") &
  F=$!; PIDS=$F; sleep 1
  ops >> "$W/fatrace.t"
  sleep 1; kill -INT $F; wait $F || true; PIDS=; tidy
  awk '/^python3\(/ { t=$2; n+=gsub(/[+DOWCR<>]/,"",t) } END{print n+0}' "$W/fatrace.out" >> "$W/fatrace.n"
  grep -cF "/$UNIQ/f" "$W/fatrace.out" >> "$W/fatrace.named" || true
  i=$((i+1))
done
ft=$(median < "$W/fatrace.t"); ft_ev=$(sort -n "$W/fatrace.n" | head -1)
ft_named=$(sort -n "$W/fatrace.named" | head -1)

# The permission filter: every open and create under the mount waits for the handler.
: > "$W/filter.t"; : > "$W/filter.n"; i=0
while [ $i -lt "$R" ]; do
  mkfifo "$W/ctl"
  "$ALLOW" "$MNT" < "$W/ctl" > "$W/filter.out" 2> "$W/filter.err" &
  A=$!; PIDS=$A; exec 3> "$W/ctl"; wait_ready "$W/filter.err" ready:
  ops >> "$W/filter.t"
  exec 3>&-; wait $A; PIDS=; rm "$W/ctl"; tidy
  awk '{print $NF}' "$W/filter.out" >> "$W/filter.n"
  i=$((i+1))
done
fl=$(median < "$W/filter.t"); fl_ev=$(sort -n "$W/filter.n" | head -1)

echo "workload: $((4 * N)) operations ($N files x create, write, close, delete), median of $R runs"
printf '%-34s %8s %9s %18s\n' monitor seconds slowdown "events/kernel's"
printf '%-34s %8.2f %9s %18s\n' "none" "$base" "1.00x" "-"
printf '%-34s %8.2f %8.2fx %18s\n' "fsgate monitor --json" "$fs" "$(echo "$fs / $base" | bc -l)" "$fs_ev/$((5 * N))"
printf '%-34s %8.2f %8.2fx %18s\n' "fatrace -c" "$ft" "$(echo "$ft / $base" | bc -l)" "$ft_ev/$((5 * N))"
printf '%-34s %8.2f %8.2fx %18s\n' "allow_opens (Before open/create)" "$fl" "$(echo "$fl / $base" | bc -l)" "$fl_ev/$N opens"
echo "fatrace records naming a workload file: $ft_named (of $((3 * N)) open/write/close)"
echo "fsgate monitor vs fatrace: $(echo "$fs / $ft" | bc -l | cut -c1-5)x the time, events per kind in the last run:"
cat "$W/fsgate.kinds"
