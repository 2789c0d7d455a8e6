#!/usr/bin/env python3
"""Create, stat and unlink COUNT files in DIR; print the files handled per second.

Usage: files.py DIR [COUNT]
Each file goes through the full cycle: open(O_CREAT|O_EXCL|O_WRONLY), close, stat, unlink.
"""
import os
import sys
import time


def main() -> None:
    directory = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    names = [os.path.join(directory, f"f{i:05d}") for i in range(count)]
    start = time.perf_counter()
    for name in names:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    for name in names:
        os.stat(name)
    for name in names:
        os.unlink(name)
    elapsed = time.perf_counter() - start
    if os.listdir(directory):
        sys.exit(f"{directory} is not empty after unlinking")
    print(f"{count / elapsed:.0f}")


if __name__ == "__main__":
    main()
