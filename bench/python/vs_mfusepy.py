"""fsgate's Python memory drive against the same drive on mfusepy, in one run.

    python bench/python/vs_mfusepy.py [--files N] [--mib M] [--rounds R] [--rust PATH_TO_fsgate]

Both drives keep files in memory and are driven by child processes doing the same work:
create N files, stat them, list the directory, open and close each, unlink them (rates in
operations per second; list in entries per second), then dd writing and reading one M MiB
file in 1 MiB blocks (MiB/s; the read starts after dd drops the file's cached pages). The
fsgate drive is ``python/examples/memory_drive.py`` with ``KernelOpensFiles``; the mfusepy
drive is ``mfusepy_memory.py`` next to this script, with mfusepy's defaults, mounted by its
own process. With ``--rust``, the Rust sample memory drive (``fsgate mount memory``, a
release build) does the same work as a third column. mfusepy is installed from PyPI with
pip into this interpreter's environment when missing. Run as root with the ``fsgate``
wheel installed (``scripts/test-python.sh`` installs one into
``$CARGO_TARGET_DIR/python-venv``; ``FSGATE_PYTHON_PROFILE=release`` builds the optimised
one a ``pip install`` gives). One run of R rounds (default 3), the drives taking turns in
each round; each figure is the median of its R measurements, so that a burst of load on a
shared machine moves the figures less.
"""

import argparse
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "examples"))

NAMESPACE = r"""
import os, sys, time
mp, n = sys.argv[1], int(sys.argv[2])
os.mkdir(f"{mp}/d")
names = [f"{mp}/d/f{i}" for i in range(n)]
def rate(f):
    t = time.perf_counter(); f(); return n / (time.perf_counter() - t)
def listing():
    assert len(os.listdir(f"{mp}/d")) == n
rates = {
    "create": rate(lambda: [os.close(os.open(x, os.O_CREAT | os.O_WRONLY, 0o644)) for x in names]),
    "stat": rate(lambda: [os.stat(x) for x in names]),
    "list": rate(listing),
    "open-close": rate(lambda: [os.close(os.open(x, os.O_RDONLY)) for x in names]),
    "unlink": rate(lambda: [os.unlink(x) for x in names]),
}
os.rmdir(f"{mp}/d")
print(" ".join(f"{k}={v:.1f}" for k, v in rates.items()))
"""

ROWS = ["create", "stat", "list", "open-close", "unlink", "write MiB/s", "read MiB/s"]


def mounted(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


def dd_seconds(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["dd", *args, "status=none"], check=True)
    return time.perf_counter() - start


def measure(mountpoint: str, files: int, mib: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", NAMESPACE, mountpoint, str(files)],
        capture_output=True, text=True, check=True,
    ).stdout
    figures = {k: float(v) for k, v in (kv.split("=") for kv in out.split())}
    big = f"{mountpoint}/big"
    write = dd_seconds("if=/dev/zero", f"of={big}", "bs=1M", f"count={mib}", "conv=fsync")
    dd_seconds(f"if={big}", "iflag=nocache", "count=0")  # drops the file's cached pages
    read = dd_seconds(f"if={big}", "of=/dev/null", "bs=1M")
    if os.path.getsize(big) != mib << 20:
        raise SystemExit(f"{big} holds {os.path.getsize(big)} bytes, not {mib} MiB")
    os.unlink(big)
    figures["write MiB/s"] = mib / write
    figures["read MiB/s"] = mib / read
    return figures


def fsgate_drive(files: int, mib: int) -> dict:
    from memory_drive import MemoryDrive

    with tempfile.TemporaryDirectory() as d:
        memory = MemoryDrive(kernel_opens_files=True)
        memory.drive.mount(d)
        try:
            return measure(d, files, mib)
        finally:
            memory.drive.unmount()


def mfusepy_drive(files: int, mib: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen([sys.executable, os.path.join(HERE, "mfusepy_memory.py"), d])
        try:
            while not mounted(d):
                if server.poll() is not None:
                    raise SystemExit(f"mfusepy_memory.py exited with {server.returncode}")
                time.sleep(0.05)
            return measure(d, files, mib)
        finally:
            subprocess.run(["fusermount3", "-u", d], check=False)
            server.wait()
            if mounted(d):
                subprocess.run(["umount", "-l", d], check=False)


def rust_drive(fsgate: str, files: int, mib: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen([fsgate, "mount", "memory", d], stdout=subprocess.DEVNULL)
        try:
            while not mounted(d):
                if server.poll() is not None:
                    raise SystemExit(f"{fsgate} mount memory exited with {server.returncode}")
                time.sleep(0.05)
            return measure(d, files, mib)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait()
            if mounted(d):
                subprocess.run(["umount", "-l", d], check=False)


def median(runs: list) -> dict:
    return {row: statistics.median(r[row] for r in runs) for row in ROWS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rust", metavar="PATH_TO_fsgate")
    args = parser.parse_args()
    if importlib.util.find_spec("mfusepy") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "mfusepy"], check=True)
    from importlib.metadata import version

    drives = {"python": fsgate_drive, "mfusepy": mfusepy_drive}
    if args.rust:
        drives["rust"] = lambda files, mib: rust_drive(args.rust, files, mib)
    runs = {name: [] for name in drives}
    for _ in range(args.rounds):
        for name, drive in drives.items():
            runs[name].append(drive(args.files, args.mib))
    ours, theirs = median(runs["python"]), median(runs["mfusepy"])
    rust = median(runs["rust"]) if args.rust else None
    print(f"{args.files} files, {args.mib} MiB, median of {args.rounds} rounds; mfusepy {version('mfusepy')}")
    head = "| row | fsgate Python drive | mfusepy drive | Python / mfusepy |"
    print(head + (" Rust drive | Python / Rust |" if rust else ""))
    print("|---" * (head.count("|") - 1 + (2 if rust else 0)) + "|")
    for row in ROWS:
        unit = "" if "MiB" in row else "/s"
        line = f"| {row} | {ours[row]:,.0f}{unit} | {theirs[row]:,.0f}{unit} | {ours[row] / theirs[row]:.2f}× |"
        if rust:
            line += f" {rust[row]:,.0f}{unit} | {ours[row] / rust[row]:.2f}× |"
        print(line)


if __name__ == "__main__":
    main()
