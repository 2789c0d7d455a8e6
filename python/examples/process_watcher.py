"""Prints every process that starts and ends, through ProcessFilter (the reference's CBProcess).

``python process_watcher.py`` (as root); Ctrl-C stops. fsgate must be installed for the
product GUID ($FSGATE_PRODUCT_GUID, else the command line's):
``fsgate package fsgate.pkg && fsgate install fsgate.pkg --product-guid GUID``.
"""

import os
import signal
import sys
import threading

import fsgate

# Ctrl-C and SIGTERM end the program. They are blocked in this thread before fsgate starts
# its threads, which inherit the mask, and this thread waits for them with sigwait: a signal
# the kernel handed to a worker thread would be noted by Python without waking this one.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
GUID = os.environ.get("FSGATE_PRODUCT_GUID", "{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}")
EVENTS = fsgate.PROC_EVT_PROCESS_CREATION | fsgate.PROC_EVT_PROCESS_TERMINATION
PRINTING = threading.Lock()  # handlers run on several threads: one whole line at a time


def say(line: str) -> None:
    with PRINTING:
        print(line, flush=True)


def watch() -> None:
    watcher = fsgate.CBProcess()
    watcher.initialize(GUID)
    watcher.config(f"EventsToFire={EVENTS}")
    watcher.track_command_line = True
    watcher.on_process_creation = lambda p: say(
        f"+ {p.process_id} (parent {p.parent_process_id}) {p.process_name} {p.command_line}"
    )
    watcher.on_process_termination = lambda p: say(f"- {p.process_id} {p.process_name}")
    watcher.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    watcher.start_filter(0)
    try:
        watcher.add_filtered_process_by_id(-1, True)
        say("watching")
        signal.sigwait(STOP_SIGNALS)
    finally:
        watcher.stop_filter()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        watch()
    except fsgate.FsgateError as e:
        sys.exit(f"process_watcher: {e}")
