#!/usr/bin/env python3
"""SQLite single-row commits in a directory, as an application on a drive makes them.

Usage: sqlite_commits.py DIR MODE COUNT [--requests] [--device DEV]

MODE is `delete` (the rollback journal, SQLite's default) or `wal`. Creates DIR/bench-MODE.db,
warms it up with 20 commits, then times COUNT commits of one 100-byte row each (autocommit,
SQLite's default synchronous=FULL in both modes: three `fdatasync`s of files and one of the
directory per rollback-journal commit, one per WAL commit) and prints the commits per second.
With --device DEV (a block device's name, such as `loop3`, the one under DIR's ext4 or under a
mirror's source), also prints what each commit cost that device: cache flushes (what every
`fsync` ends in, /sys/block/DEV/stat) and ext4 journal commits (/proc/fs/jbd2/DEV-8/info).
With --requests (root, a FUSE mount), counts instead the FUSE
requests the kernel sends per commit (tracepoint fuse:fuse_request_send) and prints them by
opcode, then the microseconds per commit spent in them (sent to answered) by opcode and
the whole commit's: only requests of DIR's own FUSE connection are counted (a tracepoint filter on the
kernel's device number of the mount), so other FUSE mounts may be busy meanwhile.
"""
import contextlib
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuse"))
from fuse_requests import Requests  # noqa: E402

def disk_counts(device):
    """(cache flushes completed, ext4 journal commits) of block device `device` so far."""
    # Field 16 of the block layer's statistics: flush requests completed (Linux 5.5 and later).
    flushes = int(open(f"/sys/block/{device}/stat").read().split()[15])
    with open(f"/proc/fs/jbd2/{device}-8/info") as f:
        journal = int(f.readline().split()[0])
    return flushes, journal


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
    counter = Requests(d) if requests else contextlib.nullcontext()
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv[4:] else None
    disk_before = disk_counts(device) if device else None
    with counter:
        start = time.perf_counter()
        for _ in range(n):
            c.execute("insert into t(v) values(?)", (row,))
        elapsed = time.perf_counter() - start
    disk_after = disk_counts(device) if device else None
    c.close()
    if requests:
        print(f"{sum(counter.counts.values()) / n:.2f}  {counter.per(n)}")
        print(f"  in requests {counter.micros_per(n)}; commit {elapsed / n * 1e6:.0f} us")
    else:
        print(f"{n / elapsed:.0f}")
    if device:
        flushes, journal = (after - before for after, before in zip(disk_after, disk_before))
        print(f"  {device}: {flushes / n:.2f} cache flushes and {journal / n:.2f} journal commits per commit")
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)


if __name__ == "__main__":
    main()
