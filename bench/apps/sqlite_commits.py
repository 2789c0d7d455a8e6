#!/usr/bin/env python3
"""SQLite single-row commits in a directory, as an application on a drive makes them.

Usage: sqlite_commits.py DIR MODE COUNT [--requests]

MODE is `delete` (the rollback journal, SQLite's default) or `wal`. Creates DIR/bench-MODE.db,
warms it up with 20 commits, then times COUNT commits of one 100-byte row each (autocommit,
synchronous=FULL for the rollback journal and NORMAL for WAL, SQLite's defaults) and prints
the commits per second. With --requests (root, a FUSE mount), counts instead the FUSE
requests the kernel sends per commit (tracepoint fuse:fuse_request_send) and prints them by
opcode: only requests of DIR's own FUSE connection are counted (a tracepoint filter on the
kernel's device number of the mount), so other FUSE mounts may be busy meanwhile.
"""
import collections
import os
import re
import sqlite3
import sys
import time

TRACING = "/sys/kernel/tracing/"


def trace(on, d=None):
    event = TRACING + "events/fuse/fuse_request_send/"
    if d is not None:
        st = os.stat(d)
        # The kernel's dev_t: major in the top 12 bits, minor in the low 20.
        connection = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
        with open(event + "filter", "w") as f:
            f.write(f"connection == {connection}")
    with open(event + "enable", "w") as f:
        f.write("1" if on else "0")
    if not on:
        with open(event + "filter", "w") as f:
            f.write("0")


def main():
    if len(sys.argv) < 4 or sys.argv[2] not in ("delete", "wal"):
        sys.exit(__doc__)
    d, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    requests = "--requests" in sys.argv[4:]
    db = os.path.join(d, f"bench-{mode}.db")
    c = sqlite3.connect(db, isolation_level=None)
    c.execute(f"pragma journal_mode={mode}")
    c.execute("create table if not exists t(k integer primary key, v text)")
    for _ in range(20):
        c.execute("insert into t(v) values(?)", ("warm-up",))
    row = "x" * 100
    if requests:
        if not os.path.isdir(TRACING + "events/fuse"):
            os.system(f"mount -t tracefs nodev {TRACING} 2>/dev/null")
        with open(TRACING + "trace", "w") as f:
            f.write("")
        trace(True, d)
    start = time.perf_counter()
    try:
        for _ in range(n):
            c.execute("insert into t(v) values(?)", (row,))
    finally:
        elapsed = time.perf_counter() - start
        if requests:
            trace(False)
    c.close()
    if requests:
        with open(TRACING + "trace") as f:
            ops = collections.Counter(re.findall(r"\(FUSE_(\w+)\)", f.read()))
        total = sum(ops.values()) / n
        detail = " ".join(f"{k}={v / n:.2f}" for k, v in sorted(ops.items()) if v / n >= 0.005)
        print(f"{total:.2f}  {detail}")
    else:
        print(f"{n / elapsed:.0f}")
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)


if __name__ == "__main__":
    main()
