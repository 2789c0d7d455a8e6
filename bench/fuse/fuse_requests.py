#!/usr/bin/env python3
"""Counts the FUSE requests one mount receives, from the kernel's fuse:fuse_request_send
tracepoint.

As a module: `with Requests(path) as r: ...` counts, while the block runs, the requests of the
FUSE connection `path` lives on (a tracepoint filter on the mount's device number), so other
FUSE mounts may be busy meanwhile; `r.counts` maps opcode names (`WRITE`, `GETATTR`, …) to
counts afterwards. Root only; mounts tracefs at /sys/kernel/tracing if it is missing.

As a command: fuse_requests.py DIR COMMAND [ARG…] runs COMMAND (in DIR) and prints each opcode's
count, then the total, for example `fuse_requests.py /mnt/drive tar xf /tmp/src.tar`.
"""
import collections
import os
import re
import subprocess
import sys

TRACING = "/sys/kernel/tracing/"
EVENT = TRACING + "events/fuse/fuse_request_send/"
# Requests the caller does not wait for.
ASYNC = {"RELEASE", "RELEASEDIR", "FORGET", "BATCH_FORGET"}


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


class Requests:
    """Counts the FUSE requests of `path`'s mount while the `with` block runs."""

    def __init__(self, path):
        st = os.stat(path)
        # The kernel's dev_t: major in the top 12 bits, minor in the low 20.
        self.connection = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
        self.counts = collections.Counter()

    def __enter__(self):
        if not os.path.isdir(TRACING + "events/fuse"):
            os.system(f"mount -t tracefs nodev {TRACING} 2>/dev/null")
        if not os.path.isdir(TRACING + "events/fuse"):
            sys.exit("no fuse tracepoints (tracefs or the kernel's FUSE tracing is missing)")
        _write(TRACING + "trace", "")
        _write(EVENT + "filter", f"connection == {self.connection}")
        _write(EVENT + "enable", "1")
        return self

    def __exit__(self, *_):
        _write(EVENT + "enable", "0")
        _write(EVENT + "filter", "0")
        with open(TRACING + "trace") as f:
            self.counts = collections.Counter(re.findall(r"\(FUSE_(\w+)\)", f.read()))
        return False

    def synchronous(self):
        """Requests a caller waited for."""
        return sum(v for k, v in self.counts.items() if k not in ASYNC)

    def per(self, n):
        """`OPCODE=count/n` for every opcode seen at least once per 200 `n`."""
        return " ".join(
            f"{k}={v / n:.2f}" for k, v in sorted(self.counts.items()) if v / n >= 0.005
        )


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    d, command = sys.argv[1], sys.argv[2:]
    with Requests(d) as r:
        subprocess.run(command, cwd=d, check=True)
    for k, v in sorted(r.counts.items(), key=lambda kv: -kv[1]):
        print(f"{k:14} {v}")
    print(f"{'total':14} {sum(r.counts.values())} ({r.synchronous()} waited for)")


if __name__ == "__main__":
    main()
