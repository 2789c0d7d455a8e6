"""Makes files matching a mask read-only for every other process, and lets a Python
handler refuse to run programs from there, through FileFilter (CBFilter).

``python file_filter.py '/srv/data/*'`` (as root); Ctrl-C stops. Each refusal prints a line.
"""

import sys
import threading

import fsgate


def refuse_execution(p):
    print(f"execute {p.file_name} by {p.process_id} ({p.process_name}): refused", flush=True)
    p.result_code = fsgate.ERROR_ACCESS_DENIED  # the program's execve fails with EPERM


def report_denial(p):
    print(f"write {p.file_name} by {p.process_id} ({p.process_name}): refused", flush=True)


def guard(mask: str, stop: threading.Event) -> None:
    f = fsgate.CBFilter()
    f.on_before_execute = refuse_execution
    f.on_access_denied = report_denial  # fired after a rule denied without a handler
    f.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    f.add_filter_rule(mask, fsgate.ACCESS_READ_ONLY, fsgate.FS_CE_BEFORE_EXECUTE, fsgate.FS_NE_NONE)
    f.start_filter(30_000)  # a handler taking longer than 30 s lets the request through
    try:
        print("guarding", flush=True)
        stop.wait()
    finally:
        f.stop_filter()


if __name__ == "__main__":
    try:
        guard(sys.argv[1], threading.Event())
    except KeyboardInterrupt:
        pass
    except fsgate.FsgateError as e:
        sys.exit(f"file_filter: {e}")
