#!/usr/bin/env python3
"""The benchmark workload: in a new directory DIR, NFILES distinct files are each created
(open O_CREAT|O_EXCL), written (one 64-byte write), closed, and later deleted: 4 operations
per file, each on a different file, so the kernel has nothing identical to merge across
files. Prints the elapsed seconds of the operations (not of the interpreter start)."""
import os
import sys
import time

d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
data = b"x" * 64
names = [os.path.join(d, "f%06d" % i) for i in range(n)]
flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
start = time.perf_counter()
for p in names:
    fd = os.open(p, flags, 0o644)
    os.write(fd, data)
    os.close(fd)
for p in names:
    os.unlink(p)
print("%.3f" % (time.perf_counter() - start))
