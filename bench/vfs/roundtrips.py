#!/usr/bin/env python3
"""Counts the FUSE requests the kernel sends for each namespace operation on a mount.

Usage (as root): roundtrips.py DIR [COUNT]   (DIR must exist and be empty; COUNT 1000)

Runs the operations of bench/tools/src/bin/nsbench.rs (create, open+close, stat, three listings,
rename, delete, mkdir, rmdir) on COUNT entries in DIR, each with the kernel's
fuse:fuse_request_send tracepoint on, and prints one line per operation: the synchronous
requests per entry (the caller waits for each) and every opcode seen with its count per
entry. RELEASE, RELEASEDIR, FORGET and BATCH_FORGET are asynchronous: the caller does not
wait for them. Requests of every FUSE mount are counted, so keep other mounts idle.
"""
import collections
import os
import re
import sys

TRACING = "/sys/kernel/tracing/"
ASYNC = {"RELEASE", "RELEASEDIR", "FORGET", "BATCH_FORGET"}


def write(path, value):
    with open(TRACING + path, "w") as f:
        f.write(value)


def counted(name, count, work):
    write("trace", "")
    write("events/fuse/fuse_request_send/enable", "1")
    try:
        work()
    finally:
        write("events/fuse/fuse_request_send/enable", "0")
    with open(TRACING + "trace") as f:
        ops = collections.Counter(re.findall(r"\(FUSE_(\w+)\)", f.read()))
    sync = sum(v for k, v in ops.items() if k not in ASYNC) / count
    detail = " ".join(f"{k}={v / count:.2f}" for k, v in sorted(ops.items()) if v / count >= 0.005)
    print(f"{name:11} {sync:5.2f}  {detail}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    if not os.path.isdir(TRACING + "events/fuse"):
        os.system(f"mount -t tracefs nodev {TRACING} 2>/dev/null")
    if not os.path.isdir(TRACING + "events/fuse"):
        sys.exit("roundtrips.py: no fuse tracepoints (tracefs or CONFIG_FUSE_FS tracing missing)")
    files = [f"{d}/f{i:06}" for i in range(n)]
    moved = [f"{d}/g{i:06}" for i in range(n)]
    dirs = [f"{d}/d{i:06}" for i in range(n)]
    print(f"{'operation':11} {'sync':>5}  requests per entry")
    counted("create", n, lambda: [os.close(os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)) for f in files])
    counted("open_close", n, lambda: [os.close(os.open(f, os.O_RDONLY)) for f in files])
    counted("stat", n, lambda: [os.stat(f) for f in files])
    counted("list", 3 * n, lambda: [os.listdir(d) for _ in range(3)])
    counted("rename", n, lambda: [os.rename(f, g) for f, g in zip(files, moved)])
    counted("delete", n, lambda: [os.unlink(g) for g in moved])
    counted("mkdir", n, lambda: [os.mkdir(x) for x in dirs])
    counted("rmdir", n, lambda: [os.rmdir(x) for x in dirs])


main()
