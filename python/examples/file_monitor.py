"""Prints every file operation on files matching a mask, through FileMonitor (CBMonitor).

``python file_monitor.py '/srv/data/*'`` (as root); Ctrl-C stops.
"""

import signal
import sys
import threading

import fsgate

# Ctrl-C and SIGTERM end the program. They are blocked in this thread before fsgate starts
# its threads, which inherit the mask, and this thread waits for them with sigwait: a signal
# the kernel handed to a worker thread would be noted by Python without waking this one.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
EVENTS = [e for e in fsgate.FileMonitor.EVENTS if e.startswith("on_notify_")]
PRINTING = threading.Lock()  # handlers run on several threads: one whole line at a time


def say(line: str) -> None:
    with PRINTING:
        print(line, flush=True)


def printer(kind: str):
    def handler(p):
        target = f" -> {p.new_file_name}" if p.new_file_name else ""
        say(f"{kind} {p.file_name}{target} by {p.process_id} ({p.process_name})")
    return handler


def watch(mask: str) -> None:
    monitor = fsgate.CBMonitor()
    for event in EVENTS:  # on_notify_create_file prints "create ..."
        setattr(monitor, event, printer(event[len("on_notify_"):].replace("_file", "")))
    monitor.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    monitor.add_filter_rule(mask, fsgate.FS_NE_ALL)
    monitor.start_filter()
    try:
        say("watching")
        signal.sigwait(STOP_SIGNALS)
    finally:
        monitor.stop_filter()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        watch(sys.argv[1])
    except fsgate.FsgateError as e:
        sys.exit(f"file_monitor: {e}")
