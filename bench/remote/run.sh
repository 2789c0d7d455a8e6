#!/usr/bin/env bash
# The remote drive (`fsgate mount remote`, release build) against `rclone mount
# --vfs-cache-mode full` (Debian's rclone), both over one moto S3 server on loopback, in one
# run; and the remote drive's warm reads against the mirror drive over a local directory.
#
# Rows (MiB/s for data, seconds for the small files; each target has its own prefix in the
# bucket and its own cache):
#   cold read:   `dd` of a 256 MiB object seeded in the store, on a fresh mount with an
#                empty cache;
#   warm read:   the same after unmounting and mounting again with the cache kept (the
#                kernel's page cache goes with the mount, the drive's cache stays);
#   write+close: `dd` of 256 MiB into a new file, then until the object is in the store
#                whole (fsgate uploads at close; rclone after its write-back delay, so its
#                upload is waited for by polling the store);
#   small files: create 1,000 files of 1 KiB, list and stat them (`ls -l`), then until all
#                are in the store.
# Ratios are rclone ÷ fsgate for seconds and fsgate ÷ rclone for MiB/s: higher is better for
# fsgate everywhere (goal ≥ 1.5); and fsgate ÷ mirror for warm reads (goal ≥ 0.9).
#
# Usage (as root): bench/remote/run.sh
# Environment: CARGO_TARGET_DIR (default: target), SIZE_MIB (256), FILES (1000), FSGATE (a
# fsgate binary to measure instead of building this tree's, e.g. main's for a before/after),
# ROUNDS (1): cold and warm reads (each cold one with an emptied cache) and the mirror's read
# are run this many times and the medians reported, the single figures printed before.
set -euo pipefail

cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench/remote/run.sh: run as root (FUSE mounts)" >&2; exit 1; }
bash scripts/deps.sh
command -v rclone >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null; }

SIZE_MIB=${SIZE_MIB:-256}
# Extra arguments for fsgate's mount: empty for its defaults (background uploads a second after
# each close), `--uploads close` for uploads before each close returns, `--upload-delay 0`.
FSGATE_UPLOADS=${FSGATE_UPLOADS-}
FILES=${FILES:-1000}
ROUNDS=${ROUNDS:-1}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${FSGATE:-}" ]; then
    cargo build --release -q -p fsgate-cli
    FSGATE="$TARGET/release/fsgate"
fi

WORK=$(mktemp -d /tmp/fsgate-bench-remote.XXXXXX)
PIDS=()
cleanup() {
    for m in "$WORK"/mnt-*; do mountpoint -q "$m" && umount -l "$m"; done
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
PIDS+=("$MOTO")
ENDPOINT="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# A CA bundle for HTTPS is of no use against a plain-HTTP loopback server, and rclone's S3
# backend refuses to start with one set.
unset AWS_CA_BUNDLE
# s3 ACTION ARGS…: put-bucket, seed KEY FILE, size KEY (prints the size or -1), count PREFIX.
s3() {
    python3 - "$ENDPOINT" "$@" <<'PY'
import sys, time, boto3, botocore
endpoint, action, *args = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
for _ in range(100):
    try:
        s3.list_buckets()
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
if action == "put-bucket":
    s3.create_bucket(Bucket="bench")
elif action == "seed":
    s3.upload_file(args[1], "bench", args[0])
elif action == "size":
    try:
        print(s3.head_object(Bucket="bench", Key=args[0])["ContentLength"])
    except botocore.exceptions.ClientError:
        print(-1)
elif action == "count":
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=args[0]):
        n += page.get("KeyCount", 0)
    print(n)
PY
}
s3 put-bucket

BYTES=$((SIZE_MIB << 20))
head -c "$BYTES" /dev/urandom >"$WORK/src.bin"
s3 seed fsgate/cold.bin "$WORK/src.bin"
s3 seed rclone/cold.bin "$WORK/src.bin"
mkdir "$WORK/local" && cp "$WORK/src.bin" "$WORK/local/cold.bin"

now() { date +%s.%N; }
mibs() { python3 -c "print(f'{$SIZE_MIB / ($2 - $1):.1f}')"; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Waits until $1 is a mount point, failing if the serving process (pid $2) exits first.
wait_mounted() {
    until mountpoint -q "$1"; do
        kill -0 "$2" 2>/dev/null || { echo "serving $1 exited; its log:" >&2; cat "$3" >&2; exit 1; }
        sleep 0.05
    done
}
# Mounts, by target: fsgate, rclone, mirror. Each waits until the mount is there.
mount_fsgate() {
    mkdir -p "$WORK/mnt-fsgate"
    "$FSGATE" mount remote s3://bench/fsgate "$WORK/mnt-fsgate" --endpoint "$ENDPOINT" $FSGATE_UPLOADS \
        --cache "$WORK/fsgate.vault" 2>>"$WORK/fsgate.log" >/dev/null &
    FS_PID=$!
    PIDS+=("$FS_PID")
    wait_mounted "$WORK/mnt-fsgate" "$FS_PID" "$WORK/fsgate.log"
}
unmount_fsgate() { kill -TERM "$FS_PID"; wait "$FS_PID" || true; }
mount_rclone() {
    mkdir -p "$WORK/mnt-rclone"
    RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT="$ENDPOINT" \
    RCLONE_CONFIG_B_ACCESS_KEY_ID=test RCLONE_CONFIG_B_SECRET_ACCESS_KEY=test \
    RCLONE_CONFIG_B_REGION=us-east-1 \
        rclone mount b:bench/rclone "$WORK/mnt-rclone" --vfs-cache-mode full \
        --cache-dir "$WORK/rclone-cache" --config /dev/null 2>>"$WORK/rclone.log" &
    RC_PID=$!
    PIDS+=("$RC_PID")
    wait_mounted "$WORK/mnt-rclone" "$RC_PID" "$WORK/rclone.log"
}
unmount_rclone() { fusermount3 -u "$WORK/mnt-rclone" || umount -l "$WORK/mnt-rclone"; wait "$RC_PID" || true; }
mount_mirror() {
    mkdir -p "$WORK/mnt-mirror"
    "$FSGATE" mount mirror "$WORK/local" "$WORK/mnt-mirror" 2>>"$WORK/mirror.log" &
    MI_PID=$!
    PIDS+=("$MI_PID")
    wait_mounted "$WORK/mnt-mirror" "$MI_PID" "$WORK/mirror.log"
}
unmount_mirror() { kill -TERM "$MI_PID"; wait "$MI_PID" || true; }

read_file() { dd if="$1" of=/dev/null bs=1M status=none; }

declare -A R
# The median of the arguments.
median() { python3 -c "import statistics, sys; print(statistics.median(float(a) for a in sys.argv[1:]))" "$@"; }
# Empties target $1's cache (it is not mounted).
drop_cache() {
    case $1 in
        fsgate) rm -f "$WORK/fsgate.vault" "$WORK/fsgate.vault.data" ;;
        rclone) rm -rf "$WORK/rclone-cache" ;;
    esac
}

for t in fsgate rclone; do
    m="$WORK/mnt-$t"
    cold=() warm=()
    for ((round = 1; round <= ROUNDS; round++)); do
        [ "$round" -eq 1 ] || { "unmount_$t"; drop_cache "$t"; }
        "mount_$t"
        a=$(now); read_file "$m/cold.bin"; b=$(now); cold+=("$(mibs "$a" "$b")")
        cmp -s "$m/cold.bin" "$WORK/src.bin" || { echo "$t: cold.bin differs" >&2; exit 1; }
        "unmount_$t"; "mount_$t"
        a=$(now); read_file "$m/cold.bin"; b=$(now); warm+=("$(mibs "$a" "$b")")
    done
    R[$t,cold]=$(median "${cold[@]}")
    R[$t,warm]=$(median "${warm[@]}")
    [ "$ROUNDS" -eq 1 ] || echo "$t: cold ${cold[*]}; warm ${warm[*]} MiB/s" >&2
    a=$(now)
    dd if="$WORK/src.bin" of="$m/written.bin" bs=1M status=none
    until [ "$(s3 size "$t/written.bin")" = "$BYTES" ]; do sleep 0.1; done
    b=$(now); R[$t,write]=$(mibs "$a" "$b")
    mkdir "$m/small"
    a=$(now)
    python3 -c "
import sys
for i in range($FILES):
    with open(f'$m/small/f{i:04}', 'wb') as f:
        f.write(b'x' * 1024)
"
    n=$(ls -l "$m/small" | grep -c '^-')
    b=$(now); R[$t,small]=$(secs "$a" "$b")
    [ "$n" = "$FILES" ] || { echo "$t: listed $n of $FILES files" >&2; exit 1; }
    until [ "$(s3 count "$t/small/")" -ge "$FILES" ]; do sleep 0.1; done
    c=$(now); R[$t,small_up]=$(secs "$a" "$c")
    "unmount_$t"
    echo "$t: cold ${R[$t,cold]} warm ${R[$t,warm]} write ${R[$t,write]} MiB/s; small ${R[$t,small]} s (${R[$t,small_up]} s until uploaded)" >&2
done
mirror=()
for ((round = 1; round <= ROUNDS; round++)); do
    mount_mirror
    a=$(now); read_file "$WORK/mnt-mirror/cold.bin"; b=$(now); mirror+=("$(mibs "$a" "$b")")
    unmount_mirror
done
R[mirror,warm]=$(median "${mirror[@]}")
[ "$ROUNDS" -eq 1 ] || echo "mirror: ${mirror[*]} MiB/s" >&2

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "remote drive vs rclone mount --vfs-cache-mode full, moto S3 on loopback, ${SIZE_MIB} MiB, $FILES files"
printf '%-34s %12s %12s %14s\n' row fsgate rclone "fsgate ratio"
printf '%-34s %12s %12s %14s\n' "cold read (MiB/s)" "${R[fsgate,cold]}" "${R[rclone,cold]}" "$(ratio "${R[fsgate,cold]}" "${R[rclone,cold]}")"
printf '%-34s %12s %12s %14s\n' "warm read (MiB/s)" "${R[fsgate,warm]}" "${R[rclone,warm]}" "$(ratio "${R[fsgate,warm]}" "${R[rclone,warm]}")"
printf '%-34s %12s %12s %14s\n' "write+close until uploaded (MiB/s)" "${R[fsgate,write]}" "${R[rclone,write]}" "$(ratio "${R[fsgate,write]}" "${R[rclone,write]}")"
printf '%-34s %12s %12s %14s\n' "create+list+stat $FILES (s)" "${R[fsgate,small]}" "${R[rclone,small]}" "$(ratio "${R[rclone,small]}" "${R[fsgate,small]}")"
printf '%-34s %12s %12s %14s\n' "  … until all uploaded (s)" "${R[fsgate,small_up]}" "${R[rclone,small_up]}" "$(ratio "${R[rclone,small_up]}" "${R[fsgate,small_up]}")"
printf '%-34s %12s %12s %14s\n' "warm read vs mirror (MiB/s)" "${R[fsgate,warm]}" "mirror ${R[mirror,warm]}" "$(ratio "${R[fsgate,warm]}" "${R[mirror,warm]}")"
echo "goals: every fsgate ratio against rclone >= 1.5; warm read vs mirror >= 0.9"
