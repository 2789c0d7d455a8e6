"""Prints every file operation on files matching a mask, through FileMonitor (CBMonitor).

``python file_monitor.py '/srv/data/*'`` (as root); Ctrl-C stops.
"""

import sys
import threading

import fsgate

EVENTS = [e for e in fsgate.FileMonitor.EVENTS if e.startswith("on_notify_")]


def printer(kind: str):
    def handler(p):
        target = f" -> {p.new_file_name}" if p.new_file_name else ""
        print(f"{kind} {p.file_name}{target} by {p.process_id} ({p.process_name})", flush=True)
    return handler


def watch(mask: str, stop: threading.Event) -> None:
    monitor = fsgate.CBMonitor()
    for event in EVENTS:  # on_notify_create_file prints "create ..."
        setattr(monitor, event, printer(event[len("on_notify_"):].replace("_file", "")))
    monitor.on_error = lambda p: print(f"! {p.error_code}: {p.description}", file=sys.stderr)
    monitor.add_filter_rule(mask, fsgate.FS_NE_ALL)
    monitor.start_filter()
    try:
        print("watching", flush=True)
        stop.wait()
    finally:
        monitor.stop_filter()


if __name__ == "__main__":
    try:
        watch(sys.argv[1], threading.Event())
    except KeyboardInterrupt:
        pass
    except fsgate.FsgateError as e:
        sys.exit(f"file_monitor: {e}")
