#!/usr/bin/env python3
"""Counts the FUSE requests the kernel sends for each namespace operation on a mount.

Usage (as root): roundtrips.py DIR [COUNT]   (DIR must exist and be empty; COUNT 1000)

Runs the operations of bench/tools/src/bin/nsbench.rs (create, open+close, stat, three listings,
rename, delete, mkdir, rmdir) on COUNT entries in DIR, each with the kernel's
fuse:fuse_request_send tracepoint on, and prints one line per operation: the synchronous
requests per entry (the caller waits for each) and every opcode seen with its count per
entry. RELEASE, RELEASEDIR, FORGET and BATCH_FORGET are asynchronous: the caller does not
wait for them. Only DIR's own mount is counted (bench/fuse/fuse_requests.py).
"""
import os
import sys

from fuse_requests import Requests


def counted(name, count, d, work):
    with Requests(d) as r:
        work()
    print(f"{name:11} {r.synchronous() / count:5.2f}  {r.per(count)}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    files = [f"{d}/f{i:06}" for i in range(n)]
    moved = [f"{d}/g{i:06}" for i in range(n)]
    dirs = [f"{d}/d{i:06}" for i in range(n)]
    print(f"{'operation':11} {'sync':>5}  requests per entry")
    counted("create", n, d, lambda: [os.close(os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)) for f in files])
    counted("open_close", n, d, lambda: [os.close(os.open(f, os.O_RDONLY)) for f in files])
    counted("stat", n, d, lambda: [os.stat(f) for f in files])
    counted("list", 3 * n, d, lambda: [os.listdir(d) for _ in range(3)])
    counted("rename", n, d, lambda: [os.rename(f, g) for f, g in zip(files, moved)])
    counted("delete", n, d, lambda: [os.unlink(g) for g in moved])
    counted("mkdir", n, d, lambda: [os.mkdir(x) for x in dirs])
    counted("rmdir", n, d, lambda: [os.rmdir(x) for x in dirs])


main()
