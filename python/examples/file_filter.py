"""Makes files matching a mask read-only for every other process, and lets a Python
handler refuse to run programs from there, through FileFilter (CBFilter).

``python file_filter.py '/srv/data/*'`` (as root); Ctrl-C stops. Each refusal prints a line.
"""

import signal
import sys
import threading

import fsgate

# Ctrl-C and SIGTERM end the program. They are blocked in this thread before fsgate starts
# its threads, which inherit the mask, and this thread waits for them with sigwait: a signal
# the kernel handed to a worker thread would be noted by Python without waking this one.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PRINTING = threading.Lock()  # handlers run on several threads: one whole line at a time


def say(line: str) -> None:
    with PRINTING:
        print(line, flush=True)


def refuse_execution(p):
    say(f"execute {p.file_name} by {p.process_id} ({p.process_name}): refused")
    p.result_code = fsgate.ERROR_ACCESS_DENIED  # the program's execve fails with EPERM


def report_denial(p):
    say(f"write {p.file_name} by {p.process_id} ({p.process_name}): refused")


def guard(mask: str) -> None:
    f = fsgate.CBFilter()
    f.on_before_execute = refuse_execution
    f.on_access_denied = report_denial  # fired after a rule denied without a handler
    f.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    f.add_filter_rule(mask, fsgate.ACCESS_READ_ONLY, fsgate.FS_CE_BEFORE_EXECUTE, fsgate.FS_NE_NONE)
    f.start_filter(30_000)  # a handler taking longer than 30 s lets the request through
    try:
        say("guarding")
        signal.sigwait(STOP_SIGNALS)
    finally:
        f.stop_filter()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        guard(sys.argv[1])
    except fsgate.FsgateError as e:
        sys.exit(f"file_filter: {e}")
