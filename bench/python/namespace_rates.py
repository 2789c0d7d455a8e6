"""Namespace rates of the Python memory drive, and of the Rust sample memory drive for
comparison: a child process creates, stats, opens and closes, and deletes N files.

    python bench/python/namespace_rates.py [N] [--rust PATH_TO_fsgate]

Run as root with the `fsgate` wheel installed (scripts/test-python.sh with
FSGATE_PYTHON_PROFILE=release installs one into $CARGO_TARGET_DIR/python-venv). Both
drives run with KernelOpensFiles on and cleanup events off, as `fsgate mount memory` does.
One run; the machine's load shows in the figures.
"""

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "examples"))

CHILD = r"""
import os, sys, time
mp, n = sys.argv[1], int(sys.argv[2])
names = [f"{mp}/f{i}" for i in range(n)]
def rate(f):
    t = time.perf_counter(); f(); return n / (time.perf_counter() - t)
rates = {
    "create": rate(lambda: [os.close(os.open(x, os.O_CREAT | os.O_WRONLY, 0o644)) for x in names]),
    "stat": rate(lambda: [os.stat(x) for x in names]),
    "open-close": rate(lambda: [os.close(os.open(x, os.O_RDONLY)) for x in names]),
    "unlink": rate(lambda: [os.unlink(x) for x in names]),
}
print(" ".join(f"{k}={v:.0f}/s" for k, v in rates.items()))
"""


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def measure(mountpoint: str, n: int) -> str:
    return subprocess.run(
        [sys.executable, "-c", CHILD, mountpoint, str(n)], capture_output=True, text=True, check=True
    ).stdout.strip()


def python_drive(n: int) -> str:
    from memory_drive import MemoryDrive

    with tempfile.TemporaryDirectory() as d:
        memory = MemoryDrive(kernel_opens_files=True)
        memory.drive.mount(d)
        try:
            return measure(d, n)
        finally:
            memory.drive.unmount()


def rust_drive(fsgate: str, n: int) -> str:
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen([fsgate, "mount", "memory", d], stdout=subprocess.DEVNULL)
        try:
            while not mounted(os.path.realpath(d)):
                if server.poll() is not None:
                    raise SystemExit(f"{fsgate} mount memory exited with {server.returncode}")
                time.sleep(0.05)
            return measure(d, n)
        finally:
            server.send_signal(2)
            server.wait()
            if mounted(os.path.realpath(d)):
                subprocess.run(["umount", "-l", d], check=False)


if __name__ == "__main__":
    args = sys.argv[1:]
    rust = None
    if "--rust" in args:
        i = args.index("--rust")
        rust = args[i + 1]
        del args[i : i + 2]
    n = int(args[0]) if args else 5000
    print(f"python memory drive: {python_drive(n)}")
    if rust:
        print(f"rust memory drive:   {rust_drive(rust, n)}")
