"""FileMonitor on a private tmpfs this test mounts: a child process's file operations
reach the Python handlers with their names and pid. Run as root.
"""

import os
import signal
import subprocess
import sys
import threading

import pytest

import fsgate

HANG_GUARD_S = 120  # a guard against a hang, never a timing assertion


@pytest.fixture
def tmpfs(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "fsgate-test", str(mp)], check=True)
    try:
        yield str(mp)
    finally:
        subprocess.run(["umount", "-l", str(mp)], check=False)


def test_a_child_process_file_operations_are_notified(tmpfs):
    monitor = fsgate.CBMonitor()
    seen = []
    done = threading.Condition()

    def record(kind):
        def handler(p):
            with done:
                seen.append((kind, p.file_name, p.new_file_name, p.process_id))
                done.notify_all()
        return handler

    monitor.on_notify_create_file = record("create")
    monitor.on_notify_rename_or_move_file = record("rename")
    monitor.on_notify_delete_file = record("delete")
    monitor.add_filter_rule(f"{tmpfs}/*", fsgate.FS_NE_ALL)
    monitor.start_filter()
    try:
        child = subprocess.run(
            ["sh", "-c", "mkdir d && echo hello > a.txt && mv a.txt d/b.txt && rm d/b.txt"],
            cwd=tmpfs,
            check=True,
        )
        assert child.returncode == 0
        with done:
            assert done.wait_for(
                lambda: any(k == "delete" and n.endswith("/d/b.txt") for k, n, _, _ in seen),
                HANG_GUARD_S,
            ), seen
    finally:
        monitor.stop_filter()
    assert not monitor.active
    assert ("create", f"{tmpfs}/a.txt") in [(k, n) for k, n, _, _ in seen]
    assert ("rename", f"{tmpfs}/a.txt", f"{tmpfs}/d/b.txt") in [(k, n, m) for k, n, m, _ in seen]


def test_bad_arguments():
    monitor = fsgate.FileMonitor()
    with pytest.raises(fsgate.FsgateError) as e:
        monitor.start_filter()  # no rule yet
    assert e.value.code == 87
    with pytest.raises(fsgate.FsgateError) as e:
        monitor.add_filter_rule("/tmp/*", 1 << 60)
    assert e.value.code == 87


def test_file_monitor_example(tmpfs):
    """The example, run as its own process, prints what this test does."""
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "file_monitor.py")
    monitor = subprocess.Popen([sys.executable, example, f"{tmpfs}/*"], stdout=subprocess.PIPE, text=True)
    try:
        assert monitor.stdout.readline() == "watching\n"
        with open(f"{tmpfs}/new.txt", "wb") as f:
            f.write(b"x")
        os.unlink(f"{tmpfs}/new.txt")
        lines = []
        while not any(line.startswith(f"delete {tmpfs}/new.txt by {os.getpid()} ") for line in lines):
            line = monitor.stdout.readline()
            assert line, f"the monitor ended; it printed {lines}"
            lines.append(line)
        assert any(line.startswith(f"create {tmpfs}/new.txt by {os.getpid()} ") for line in lines)
    finally:
        monitor.send_signal(signal.SIGINT)
        monitor.wait()
    assert monitor.returncode == 0


def test_rule_qualifiers_serialized_events_and_volume_events(tmpfs):
    """``add_filter_rule_ex`` with an attribute qualifier: only directories are notified;
    with ``serialize_events`` they arrive in the kernel's order. Starting attaches to the
    tmpfs (the volume events name it) and stopping detaches from it."""
    monitor = fsgate.FileMonitor()
    monitor.serialize_events = True
    assert monitor.serialize_events
    seen = []
    volumes = []
    done = threading.Condition()

    def created(p):
        with done:
            seen.append((p.file_name, p.directory))
            done.notify_all()

    def before_attach(p):
        volumes.append(("before_attach", p.volume_name, p.file_system))
        assert not p.skip_volume

    monitor.on_notify_create_file = created
    monitor.on_before_filter_attach_to_volume = before_attach
    monitor.on_after_filter_attach_to_volume = lambda p: volumes.append(("attach", p.volume_name, p.file_system))
    monitor.on_after_filter_detach_from_volume = lambda p: volumes.append(("detach", p.volume_name, p.file_system))
    monitor.add_filter_rule_ex(
        f"{tmpfs}/*", fsgate.FS_NE_CREATE, include_attributes=fsgate.FILE_ATTRIBUTE_DIRECTORY,
    )
    monitor.start_filter()
    try:
        subprocess.run(["sh", "-c", "mkdir d1 && touch f && mkdir d2"], cwd=tmpfs, check=True)
        with done:
            assert done.wait_for(lambda: any(n.endswith("/d2") for n, _ in seen), HANG_GUARD_S), seen
    finally:
        monitor.stop_filter()
    assert seen == [(f"{tmpfs}/d1", True), (f"{tmpfs}/d2", True)]
    ours = [v for v in volumes if v[1] == tmpfs]
    assert ours == [("before_attach", tmpfs, "tmpfs"), ("attach", tmpfs, "tmpfs"), ("detach", tmpfs, "tmpfs")]


def test_passthrough_rules_and_qualifier_arguments(tmpfs):
    monitor = fsgate.CBMonitor()
    monitor.add_filter_rule(f"{tmpfs}/*", fsgate.FS_NE_DELETE)
    monitor.add_passthrough_rule_ex(f"{tmpfs}/*.tmp", fsgate.FS_NE_DELETE, max_size=10)
    assert monitor.delete_passthrough_rule(f"{tmpfs}/*.tmp")
    assert not monitor.delete_passthrough_rule(f"{tmpfs}/*.tmp")
    monitor.delete_all_passthrough_rules()
    with pytest.raises(fsgate.FsgateError) as e:
        monitor.add_filter_rule_ex(f"{tmpfs}/*", fsgate.FS_NE_DELETE, min_size=-5)
    assert e.value.code == 87 and "min_size" in e.value.message
    with pytest.raises(fsgate.FsgateError) as e:
        monitor.add_filter_rule_ex(f"{tmpfs}/*", fsgate.FS_NE_DELETE, min_size=9, max_size=3)
    assert e.value.code == 87
