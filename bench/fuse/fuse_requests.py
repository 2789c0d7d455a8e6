#!/usr/bin/env python3
"""Counts the FUSE requests one mount receives, from the kernel's fuse:fuse_request_send
tracepoint.

As a module: `with Requests(path) as r: ...` counts, while the block runs, the requests of the
FUSE connection `path` lives on (a tracepoint filter on the mount's device number), so other
FUSE mounts may be busy meanwhile; `r.counts` maps opcode names (`WRITE`, `GETATTR`, …) to
counts afterwards, and `r.micros` to the time their requests took, from the kernel sending
each to its answer (fuse:fuse_request_end): what callers waited for a drive, queueing
included. Root only; mounts tracefs at /sys/kernel/tracing if it is missing.

As a command: fuse_requests.py DIR COMMAND [ARG…] runs COMMAND (in DIR) and prints each opcode's
count and time in requests, then the totals, for example `fuse_requests.py /mnt/drive tar xf /tmp/src.tar`.
"""
import collections
import os
import re
import subprocess
import sys

TRACING = "/sys/kernel/tracing/"
EVENTS = [TRACING + "events/fuse/fuse_request_send/", TRACING + "events/fuse/fuse_request_end/"]
SEND = re.compile(r" (\d+\.\d+): fuse_request_send: connection \d+ req (\d+) opcode \d+ \(FUSE_(\w+)\)")
END = re.compile(r" (\d+\.\d+): fuse_request_end: connection \d+ req (\d+) ")
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
        self.micros = collections.Counter()

    def __enter__(self):
        if not os.path.isdir(TRACING + "events/fuse"):
            os.system(f"mount -t tracefs nodev {TRACING} 2>/dev/null")
        if not os.path.isdir(TRACING + "events/fuse"):
            sys.exit("no fuse tracepoints (tracefs or the kernel's FUSE tracing is missing)")
        _write(TRACING + "trace", "")
        for event in EVENTS:
            _write(event + "filter", f"connection == {self.connection}")
            _write(event + "enable", "1")
        return self

    def __exit__(self, *_):
        for event in EVENTS:
            _write(event + "enable", "0")
            _write(event + "filter", "0")
        with open(TRACING + "trace") as f:
            trace = f.read()
        sent = {}
        for at, unique, opcode in SEND.findall(trace):
            self.counts[opcode] += 1
            sent[unique] = (opcode, float(at))
        for at, unique in END.findall(trace):
            if unique in sent:
                opcode, start = sent.pop(unique)
                self.micros[opcode] += (float(at) - start) * 1e6
        return False

    def synchronous(self):
        """Requests a caller waited for."""
        return sum(v for k, v in self.counts.items() if k not in ASYNC)

    def micros_per(self, n):
        """Microseconds in requests per `n`: `total` and `OPCODE=µs` for each opcode."""
        total = sum(self.micros.values()) / n
        return f"{total:.0f} us: " + " ".join(
            f"{k}={v / n:.0f}" for k, v in sorted(self.micros.items()) if v / n >= 0.5
        )

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
        print(f"{k:14} {v:8} {r.micros[k] / 1000:10.1f} ms")
    total_ms = sum(r.micros.values()) / 1000
    print(f"{'total':14} {sum(r.counts.values()):8} {total_ms:10.1f} ms ({r.synchronous()} waited for)")


if __name__ == "__main__":
    main()
