"""Prints every process that starts and ends, through ProcessFilter (the reference's CBProcess).

``python process_watcher.py`` (as root); Ctrl-C stops. fsgate must be installed for the
product GUID ($FSGATE_PRODUCT_GUID, else the command line's):
``fsgate package fsgate.pkg && fsgate install fsgate.pkg --product-guid GUID``.
"""

import os
import sys
import threading

import fsgate

GUID = os.environ.get("FSGATE_PRODUCT_GUID", "{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}")
EVENTS = fsgate.PROC_EVT_PROCESS_CREATION | fsgate.PROC_EVT_PROCESS_TERMINATION


def watch(stop: threading.Event) -> None:
    watcher = fsgate.CBProcess()
    watcher.initialize(GUID)
    watcher.config(f"EventsToFire={EVENTS}")
    watcher.track_command_line = True
    watcher.on_process_creation = lambda p: print(
        f"+ {p.process_id} (parent {p.parent_process_id}) {p.process_name} {p.command_line}",
        flush=True,
    )
    watcher.on_process_termination = lambda p: print(f"- {p.process_id} {p.process_name}", flush=True)
    watcher.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    watcher.start_filter(0)
    try:
        watcher.add_filtered_process_by_id(-1, True)
        print("watching", flush=True)
        stop.wait()
    finally:
        watcher.stop_filter()


if __name__ == "__main__":
    try:
        watch(threading.Event())
    except KeyboardInterrupt:
        pass
    except fsgate.FsgateError as e:
        sys.exit(f"process_watcher: {e}")
