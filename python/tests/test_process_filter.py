"""ProcessFilter through the kernel's process connector: a storm of child processes, each
seen created and terminated, from Python handlers. Run as root.
"""

import os
import signal
import subprocess
import sys
import threading

import pytest

import fsgate

GUID = "{3C1F9A2E-7B44-4D0A-9E21-5F6A7B8C9D0E}"
HANG_GUARD_S = 120  # a guard against a hang, never a timing assertion
STORM = 40


@pytest.fixture
def process_filter(tmp_path, monkeypatch):
    monkeypatch.setenv("FSGATE_ROOT", str(tmp_path / "root"))
    package = str(tmp_path / "fsgate.pkg")
    fsgate.build_package(package, "/bin/true")
    f = fsgate.CBProcess()
    f.install(package, GUID, "", 0)
    f.initialize(GUID)
    # The children are this process's own: watch them (a filter ignores its own process by
    # default).
    f.config("FilterOwnRequests=true")
    # Nothing fires until asked: process and thread creation and termination here (0x1B);
    # the handle operations, which load BPF programs, have a test of their own.
    f.config("EventsToFire=27")
    yield f
    if f.active:
        f.stop_filter()


def test_a_process_storm_is_seen_created_and_terminated(process_filter):
    f = process_filter
    created, ended = {}, set()
    done = threading.Condition()

    def on_creation(p):
        with done:
            created[p.process_id] = p.process_name

    def on_termination(p):
        with done:
            ended.add(p.process_id)
            done.notify_all()

    f.on_process_creation = on_creation
    f.on_process_termination = on_termination
    f.start_filter(0)
    f.add_filtered_process_by_id(os.getpid(), True)
    children = [subprocess.Popen(["/bin/sleep", "0"]) for _ in range(STORM)]
    pids = {c.pid for c in children}
    for c in children:
        assert c.wait() == 0
    with done:
        assert done.wait_for(lambda: pids <= ended, HANG_GUARD_S), pids - ended
    f.stop_filter()
    assert not f.active
    assert pids <= set(created)
    assert {os.path.realpath(created[p]) for p in pids} == {os.path.realpath("/bin/sleep")}


def test_an_exception_in_a_handler_fires_on_error(process_filter):
    f = process_filter
    errors = []
    seen = threading.Event()

    def on_creation(p):
        raise RuntimeError(f"refusing to look at {p.process_id}")

    def on_error(p):
        errors.append((p.error_code, p.description))
        seen.set()

    f.on_process_creation = on_creation
    f.on_error = on_error
    f.start_filter(0)
    f.add_filtered_process_by_id(os.getpid(), True)
    assert subprocess.run(["/bin/true"]).returncode == 0  # a notification cannot refuse
    assert seen.wait(HANG_GUARD_S)
    assert errors[0][0] == 31 and "on_process_creation raised" in errors[0][1]


def test_handle_operations_fire_from_tracepoints(process_filter):
    f = process_filter
    seen = []
    done = threading.Event()

    def on_handle(p):
        seen.append((p.process_id, p.originator_process_id, p.original_desired_access,
                     p.desired_access))
        done.set()

    f.on_process_handle_operation = on_handle
    f.config("EventsToFire=36")  # both handle operation events
    try:
        f.start_filter(0)
    except fsgate.FsgateError as e:
        # A kernel that refuses BPF tracepoint programs: the documented error.
        assert e.code == 50 and "BPF" in e.message, e
        return
    child = subprocess.Popen(["/bin/sh", "-c", "read go; kill -CONT $$"], stdin=subprocess.PIPE)
    f.add_filtered_process_by_id(child.pid, False)
    child.communicate(b"go\n")
    assert child.returncode == 0
    assert done.wait(HANG_GUARD_S)
    f.stop_filter()
    # SIGCONT resumes the process: PROCESS_SUSPEND_RESUME. (Signal 0 generates no signal and
    # is not reported.)
    assert (child.pid, child.pid, 0x0800, 0x0800) in seen, seen


def test_bad_arguments(process_filter, tmp_path):
    f = process_filter
    with pytest.raises(fsgate.FsgateError) as e:
        f.start_filter(10)
    assert e.value.code == 1292  # ERROR_IMPLEMENTATION_LIMIT: a timeout below 3 s
    with pytest.raises(fsgate.FsgateError) as e:
        f.add_controlled_exec_path(str(tmp_path / "missing"))
    assert e.value.code == 3  # ERROR_PATH_NOT_FOUND
    with pytest.raises(fsgate.FsgateError) as e:
        f.on_process_creation = "not callable"
    assert e.value.code == 87
    with pytest.raises(fsgate.FsgateError) as e:
        fsgate.ProcessFilter().start_filter(0)
    assert e.value.code == 21  # ERROR_NOT_READY: not initialized



def test_process_watcher_example(process_filter):
    """The example, run as its own process, prints a process this test starts."""
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "process_watcher.py")
    env = dict(os.environ, FSGATE_PRODUCT_GUID=GUID)
    watcher = subprocess.Popen(
        [sys.executable, example], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert watcher.stdout.readline() == "watching\n"
        child = subprocess.Popen(["/bin/cat", "/dev/null"])
        assert child.wait() == 0
        # Every process of the machine shows up; read until this test's child does.
        created = ended = False
        while not (created and ended):
            line = watcher.stdout.readline()
            assert line, "the watcher ended without printing the child"
            created |= line.startswith(f"+ {child.pid} (parent {os.getpid()}) ")
            ended |= line.startswith(f"- {child.pid} ")
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait()
    assert watcher.returncode == 0


def test_installation_methods_and_properties(process_filter, tmp_path):
    f = process_filter
    assert f.get_driver_status(GUID) in (1, 4)  # installed under the fixture's root
    assert f.get_driver_version(GUID) != 0
    f.altitude = "360000"
    assert f.altitude == "360000"
    with pytest.raises(fsgate.FsgateError) as e:
        f.altitude = "high"
    assert e.value.code == 87
    f.strict_altitude = True
    assert f.strict_altitude
    f.serialize_events = True
    assert f.serialize_events
    f.start_filter(0)
    with pytest.raises(fsgate.FsgateError) as e:
        f.serialize_events = False  # not while active
    assert e.value.code == 1230
    with pytest.raises(fsgate.FsgateError) as e:
        f.get_originator_token()  # outside a handler
    assert e.value.code == 614
    f.stop_filter()
    assert f.uninstall(str(tmp_path / "fsgate.pkg"), GUID, "", 0) in (False, True)
    assert f.get_driver_status(GUID) == 0
    assert f.get_driver_version(GUID) == 0


def test_originator_token_and_fsgate_error_inside_a_handler(process_filter):
    """Inside a creation event the token is the creating process's (this one); an
    FsgateError raised there is a deliberate result, not reported through on_error."""
    f = process_filter
    tokens, errors = [], []
    seen = threading.Event()

    def on_creation(p):
        tokens.append(f.get_originator_token())
        seen.set()
        raise fsgate.FsgateError(fsgate.ERROR_ACCESS_DENIED, "a notification cannot refuse")

    f.on_process_creation = on_creation
    f.on_error = lambda p: errors.append(p.description)
    f.start_filter(0)
    f.add_filtered_process_by_id(os.getpid(), True)
    assert subprocess.run(["/bin/true"]).returncode == 0
    assert seen.wait(HANG_GUARD_S)
    token = tokens[0]
    assert (token.uid, token.euid, token.gid, token.egid) == (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    assert token.capabilities != 0  # root
    assert errors == []
