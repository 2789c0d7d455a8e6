"""FileFilter (the reference's CBFilter) on a private tmpfs this test mounts: access rules and
control events decide what a child process's opens, reads and execs get, through real
fanotify permission events. The filter never filters its own process, so every request
comes from a child. Run as root.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

import fsgate

HANG_GUARD_S = 120  # a guard against a hang, never a timing assertion

# A child that tries each request and prints what it got: {"name": [errno or 0, bytes read]}.
CHILD = r"""
import json, os, sys
out = {}
for spec in sys.argv[1:]:
    mode, path = spec.split(":", 1)
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "a": os.O_WRONLY | os.O_APPEND,
             "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[mode]
    try:
        fd = os.open(path, flags, 0o644)
        try:
            data = os.read(fd, 100).decode() if mode == "r" else ""
        finally:
            os.close(fd)
        out[spec] = [0, data]
    except OSError as e:
        out[spec] = [e.errno, ""]
print(json.dumps(out))
"""


def child(*specs):
    """Runs the requests in a child process; returns its pid and {spec: (errno, data)}."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *specs], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    assert proc.returncode == 0
    return proc.pid, {k: tuple(v) for k, v in json.loads(out).items()}


@pytest.fixture
def tmpfs(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "fsgate-filter-test", str(mp)], check=True)
    try:
        yield str(mp)
    finally:
        subprocess.run(["umount", "-l", str(mp)], check=False)


@pytest.fixture
def file_filter():
    f = fsgate.CBFilter()
    try:
        yield f
    finally:
        f.stop_filter()
        assert not f.active


def write(path, data):
    with open(path, "w") as f:
        f.write(data)


def test_names_and_aliases():
    assert fsgate.CBFilter is fsgate.FileFilter
    assert fsgate.CBFilterBeforeOpenFileEventParams is fsgate.ControlParams
    assert fsgate.CBFilterNotifyCreateFileEventParams is fsgate.NotifyParams
    assert fsgate.CBMonitorNotifyCreateFileEventParams is fsgate.NotifyParams
    assert "on_before_open_file" in fsgate.FileFilter.EVENTS
    f = fsgate.FileFilter()
    assert f.on_before_open_file is None
    f.on_before_open_file = print
    assert f.on_before_open_file is print
    del f.on_before_open_file
    assert f.on_before_open_file is None


def test_access_rules_deny_a_child_with_eperm(tmpfs, file_filter):
    write(f"{tmpfs}/secret.key", "k")
    write(f"{tmpfs}/notes.txt", "n")
    write(f"{tmpfs}/other.dat", "o")
    denied = []
    done = threading.Condition()

    def access_denied(p):
        with done:
            denied.append((p.file_name, p.process_id, p.write_access))
            done.notify_all()

    file_filter.on_access_denied = access_denied
    assert file_filter.add_filter_rule(f"{tmpfs}/*.key", fsgate.ACCESS_DENY_ALL, 0, 0)
    assert file_filter.add_filter_rule(f"{tmpfs}/*.txt", fsgate.ACCESS_READ_ONLY, 0, 0)
    file_filter.start_filter()
    pid, got = child(
        f"r:{tmpfs}/secret.key", f"r:{tmpfs}/notes.txt", f"a:{tmpfs}/notes.txt",
        f"r:{tmpfs}/other.dat", f"a:{tmpfs}/other.dat",
    )
    assert got == {
        f"r:{tmpfs}/secret.key": (errno.EPERM, ""),
        f"r:{tmpfs}/notes.txt": (0, "n"),
        f"a:{tmpfs}/notes.txt": (errno.EPERM, ""),
        f"r:{tmpfs}/other.dat": (0, "o"),
        f"a:{tmpfs}/other.dat": (0, ""),
    }
    with done:
        assert done.wait_for(lambda: len(denied) >= 2, HANG_GUARD_S), denied
    assert sorted(denied) == [(f"{tmpfs}/notes.txt", pid, True), (f"{tmpfs}/secret.key", pid, False)]
    # This process is never filtered.
    with open(f"{tmpfs}/secret.key") as f:
        assert f.read() == "k"
    # Deleting the rule lifts the denial at once.
    assert file_filter.delete_filter_rule(f"{tmpfs}/*.key", fsgate.ACCESS_DENY_ALL, 0, 0)
    assert child(f"r:{tmpfs}/secret.key")[1] == {f"r:{tmpfs}/secret.key": (0, "k")}


def test_before_open_handlers_decide_with_result_code_and_exceptions(tmpfs, file_filter):
    for name in ("fine", "code", "fsgate-error", "crash"):
        write(f"{tmpfs}/{name}", name)
    seen = []
    errors = []

    def before_open(p):
        assert p.desired_access == (1 if p.read_access else 0) | (2 if p.write_access else 0)
        seen.append((os.path.basename(p.file_name), p.process_id, p.read_access, p.write_access,
                     file_filter.get_originator_process_id(), file_filter.get_originator_process_name()))
        name = os.path.basename(p.file_name)
        if name == "code":
            p.result_code = fsgate.ERROR_ACCESS_DENIED
        elif name == "fsgate-error":
            raise fsgate.FsgateError(fsgate.ERROR_ACCESS_DENIED, "not this one")
        elif name == "crash":
            raise RuntimeError("the handler failed on purpose")

    file_filter.on_before_open_file = before_open
    file_filter.on_error = lambda p: errors.append((p.error_code, p.description))
    file_filter.add_filter_rule(f"{tmpfs}/*", 0, fsgate.FS_CE_BEFORE_OPEN, 0)
    file_filter.start_filter()
    specs = [f"r:{tmpfs}/fine", f"a:{tmpfs}/fine", f"r:{tmpfs}/code", f"r:{tmpfs}/fsgate-error", f"r:{tmpfs}/crash"]
    pid, got = child(*specs)
    assert got == {
        specs[0]: (0, "fine"),
        specs[1]: (0, ""),
        specs[2]: (errno.EPERM, ""),
        specs[3]: (errno.EPERM, ""),
        specs[4]: (errno.EPERM, ""),
    }
    assert [s[:5] for s in seen] == [
        ("fine", pid, True, False, pid),
        ("fine", pid, False, True, pid),
        ("code", pid, True, False, pid),
        ("fsgate-error", pid, True, False, pid),
        ("crash", pid, True, False, pid),
    ]
    # The child runs this interpreter, so it has this process's name.
    with open(f"/proc/{os.getpid()}/comm") as f:
        assert {s[5] for s in seen} == {f.read().strip()}
    # Only the unexpected exception is reported; the deliberate denials are results.
    assert len(errors) == 1
    assert errors[0][0] == 31 and "on_before_open_file" in errors[0][1]
    assert "the handler failed on purpose" in errors[0][1]


def test_before_create_read_and_execute(tmpfs, file_filter):
    write(f"{tmpfs}/data", "payload")
    shutil.copy("/bin/true", f"{tmpfs}/prog")
    os.chmod(f"{tmpfs}/prog", 0o755)
    kinds = []

    def deny(kind):
        def handler(p):
            kinds.append((kind, os.path.basename(p.file_name)))
            if os.path.basename(p.file_name) in ("new-denied", "data", "prog"):
                p.result_code = fsgate.ERROR_ACCESS_DENIED
        return handler

    file_filter.on_before_create_file = deny("create")
    file_filter.on_before_read_file = deny("read")
    file_filter.on_before_execute = deny("execute")
    file_filter.add_filter_rule(
        f"{tmpfs}/*", 0,
        fsgate.FS_CE_BEFORE_CREATE | fsgate.FS_CE_BEFORE_READ | fsgate.FS_CE_BEFORE_EXECUTE, 0,
    )
    file_filter.start_filter()
    _, got = child(f"x:{tmpfs}/new-allowed", f"x:{tmpfs}/new-denied", f"r:{tmpfs}/data")
    assert got == {
        f"x:{tmpfs}/new-allowed": (0, ""),
        f"x:{tmpfs}/new-denied": (errno.EPERM, ""),
        f"r:{tmpfs}/data": (errno.EPERM, ""),  # the open is allowed, the read denied
    }
    with pytest.raises(PermissionError) as e:
        subprocess.run([f"{tmpfs}/prog"], check=False)
    assert e.value.errno == errno.EPERM
    assert ("create", "new-allowed") in kinds and ("create", "new-denied") in kinds
    assert ("read", "data") in kinds and ("execute", "prog") in kinds


def test_rule_qualifiers(tmpfs, file_filter):
    write(f"{tmpfs}/small", "s")
    write(f"{tmpfs}/large", "L" * 200)
    file_filter.add_filter_rule_ex(f"{tmpfs}/*", fsgate.ACCESS_DENY_ALL, 0, 0, min_size=100)
    file_filter.add_passthrough_rule(f"{tmpfs}/allowed*", fsgate.ACCESS_DENY_ALL, 0, 0)
    write(f"{tmpfs}/allowed-large", "A" * 200)
    file_filter.start_filter()
    _, got = child(f"r:{tmpfs}/small", f"r:{tmpfs}/large", f"r:{tmpfs}/allowed-large")
    assert got == {
        f"r:{tmpfs}/small": (0, "s"),
        f"r:{tmpfs}/large": (errno.EPERM, ""),
        f"r:{tmpfs}/allowed-large": (0, "A" * 100),
    }
    assert file_filter.delete_passthrough_rule(f"{tmpfs}/allowed*")
    assert child(f"r:{tmpfs}/allowed-large")[1] == {f"r:{tmpfs}/allowed-large": (errno.EPERM, "")}


def test_notifications_through_the_filter(tmpfs, file_filter):
    seen = []
    done = threading.Condition()

    def created(p):
        with done:
            seen.append((p.file_name, p.process_id))
            done.notify_all()

    file_filter.on_notify_create_file = created
    file_filter.add_filter_rule(f"{tmpfs}/*", 0, 0, fsgate.FS_NE_CREATE)
    file_filter.start_filter()
    pid, got = child(f"x:{tmpfs}/made")
    assert got == {f"x:{tmpfs}/made": (0, "")}
    with done:
        assert done.wait_for(lambda: seen, HANG_GUARD_S)
    assert seen == [(f"{tmpfs}/made", pid)]


def test_settings_and_bad_arguments(tmpfs):
    f = fsgate.FileFilter()
    assert f.config("DenyExpiredEvents") == "False"
    f.config("DenyExpiredEvents=true")
    assert f.config("DenyExpiredEvents") == "True"
    assert f.config("FilterOwnRequests") == "False"
    assert not f.serialize_events
    f.serialize_events = True
    assert f.serialize_events
    cases = [
        (lambda: f.add_filter_rule(f"{tmpfs}/*", 1 << 20, 0, 0), 87),  # unknown access bit
        (lambda: f.add_filter_rule(f"{tmpfs}/*", 0, 1 << 62, 0), 87),  # unknown control bit
        (lambda: f.add_filter_rule(f"{tmpfs}/*", 0, 0, 1 << 60), 87),
        (lambda: f.add_filter_rule_ex(f"{tmpfs}/*", fsgate.ACCESS_DENY_ALL, 0, 0, min_size=-2), 87),
        (lambda: f.add_filter_rule_ex(f"{tmpfs}/*", fsgate.ACCESS_DENY_ALL, 0, 0, 10, 5), 87),
        (lambda: f.start_filter(1000), 1292),  # a timeout is 0 or at least 3000 ms
        (lambda: f.get_originator_process_id(), 614),  # outside a control event
        (lambda: f.reset_timeout(5000), 614),
        (lambda: f.set_event_hook("on_no_such_event", print), 87),
        (lambda: setattr(f, "on_before_open_file", 42), 87),
    ]
    for call, code in cases:
        with pytest.raises(fsgate.FsgateError) as e:
            call()
        assert e.value.code == code, e.value
    assert not f.active
    # Rules the overlay backend serves are accepted (the filter picks it when it starts).
    f.add_filter_rule(f"{tmpfs}/*", fsgate.ACCESS_DELETE_PROTECT, 0, 0)
    f.add_filter_rule(f"{tmpfs}/*", 0, fsgate.FS_CE_REPARSE_FILENAME, 0)
    f.delete_all_filter_rules()


def test_isolation_on_the_overlay_gives_a_child_its_backend_file(tmp_path, file_filter):
    """On the overlay, on_before_open_file isolates the child's opens to another file;
    this process (whose calls go through the overlay too) sees the file itself."""
    d = os.path.realpath(tmp_path / "iso")
    os.mkdir(d)
    write(f"{d}/data", "real")
    write(f"{d}/data.alt", "the isolated view")
    me = os.getpid()
    seen = []

    def before_open(p):
        assert (p.isolate, p.backend_file_name, p.process_request) == (False, p.file_name, True)
        if p.file_name == f"{d}/data" and p.process_id != me:
            seen.append(p.process_id)
            p.isolate = True
            p.backend_file_name = f"{d}/data.alt"

    file_filter.on_before_open_file = before_open
    file_filter.config("Backend=Overlay")
    file_filter.add_filter_rule(f"{d}/*", 0, fsgate.FS_CE_BEFORE_OPEN, 0)
    file_filter.start_filter()
    try:
        pid, got = child(f"r:{d}/data")
        assert got == {f"r:{d}/data": (0, "the isolated view")}
        assert seen == [pid]
        with open(f"{d}/data") as f:
            assert f.read() == "real"
    finally:
        file_filter.stop_filter()
    with open(f"{d}/data.alt") as f:
        assert f.read() == "the isolated view"


def test_file_filter_example(tmpfs):
    """The example, run as its own process, refuses this process's write and exec."""
    write(f"{tmpfs}/doc.txt", "d")
    shutil.copy("/bin/true", f"{tmpfs}/prog")
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "file_filter.py")
    guard = subprocess.Popen([sys.executable, example, f"{tmpfs}/*"], stdout=subprocess.PIPE, text=True)
    try:
        assert guard.stdout.readline() == "guarding\n"
        with pytest.raises(PermissionError) as e:
            open(f"{tmpfs}/doc.txt", "a")
        assert e.value.errno == errno.EPERM
        with open(f"{tmpfs}/doc.txt") as f:
            assert f.read() == "d"
        with pytest.raises(PermissionError) as e:
            subprocess.run([f"{tmpfs}/prog"], check=False)
        assert e.value.errno == errno.EPERM
        lines = sorted(guard.stdout.readline() for _ in range(2))
    finally:
        guard.send_signal(signal.SIGINT)
        guard.wait()
    assert guard.returncode == 0
    assert lines[0].startswith(f"execute {tmpfs}/prog by ") and lines[0].endswith(": refused\n")
    assert lines[1].startswith(f"write {tmpfs}/doc.txt by {os.getpid()} (") and lines[1].endswith("): refused\n")


@pytest.fixture
def ext4(tmp_path):
    """A private ext4 on a loop device (placeholders need a filesystem with pre-content
    events)."""
    image, mp = tmp_path / "fs.img", tmp_path / "ext4"
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mp.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mp)], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(mp)], check=True)
        yield str(mp)
    finally:
        subprocess.run(["umount", str(mp)], check=False)


def pattern(offset, length):
    return bytes((i * 31 + 7) % 251 for i in range(offset, offset + length))


def test_placeholders_are_hydrated_by_the_python_handler(ext4, file_filter):
    size = 1 << 20
    calls = []

    def hydrate(p):
        calls.append((p.offset, len(p.buffer), p.file_size, p.process_id))
        if p.file_name.endswith("/full.bin"):
            p.result_code = 112  # ERROR_DISK_FULL: the reader gets ENOSPC
            return
        p.buffer[:] = pattern(p.offset, len(p.buffer))

    file_filter.on_hydrate_file = hydrate
    with pytest.raises(fsgate.FsgateError) as e:
        file_filter.create_placeholder(f"{ext4}/early.bin", size)
    assert e.value.code == 21  # the filter is not running yet
    file_filter.start_filter()
    try:
        file_filter.create_placeholder(f"{ext4}/p.bin", size)
    except fsgate.FsgateError as e:
        # A kernel without pre-content events: the documented refusal, and no file left.
        assert e.code == 50 and "FAN_PRE_ACCESS" in e.message, e
        assert not os.path.exists(f"{ext4}/p.bin")
        return
    assert os.path.getsize(f"{ext4}/p.bin") == size and calls == []
    cat = subprocess.run(["cat", f"{ext4}/p.bin"], capture_output=True, check=True)
    assert cat.stdout == pattern(0, size)
    ranges = sorted((offset, length) for offset, length, _, _ in calls)
    assert sum(length for _, length in ranges) == size  # each range asked for once
    assert all(a[0] + a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert {s for _, _, s, _ in calls} == {size} and os.getpid() not in {pid for *_, pid in calls}
    before = len(calls)
    assert subprocess.run(["cat", f"{ext4}/p.bin"], capture_output=True, check=True).stdout == pattern(0, size)
    assert len(calls) == before  # hydrated once
    file_filter.create_placeholder(f"{ext4}/full.bin", 4096)
    cat = subprocess.run(["cat", f"{ext4}/full.bin"], capture_output=True, text=True)
    assert cat.returncode != 0 and "No space left on device" in cat.stderr


@pytest.mark.parametrize("cls", [fsgate.CBFilter, fsgate.CBMonitor])
def test_installation_members(cls, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGATE_ROOT", str(tmp_path / "root"))
    guid = "{3C1F9A2E-7B44-4D0A-9E21-5F6A7B8C9D0E}"
    package = str(tmp_path / "fsgate.pkg")
    fsgate.build_package(package, "/bin/true")
    c = cls()
    assert c.get_driver_status(guid) == 0 and c.get_driver_version(guid) == 0
    with pytest.raises(fsgate.FsgateError) as e:
        c.initialize(guid)
    assert e.value.code == 2  # not installed
    assert c.install(package, guid, "", 0, "360000") in (False, True)
    assert c.altitude == "360000"
    c.initialize(guid)
    assert c.get_driver_status(guid) in (1, 4) and c.get_driver_version(guid) != 0
    with pytest.raises(fsgate.FsgateError) as e:
        c.altitude = "high"
    assert e.value.code == 87
    assert c.uninstall(package, guid) in (False, True)
    assert c.get_driver_status(guid) == 0
