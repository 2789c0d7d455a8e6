"""The Python virtual drive through the kernel: a MemoryDrive (python/examples) mounted on a
temporary directory, used with ordinary file operations from this process (the os calls
release the GIL, so the drive's handlers run meanwhile) and from child processes.

Run as root (FUSE mounts with allow_other need it): ``scripts/test-python.sh``.
"""

import errno
import gc
import os
import subprocess
import sys
import threading
import weakref

import pytest

import fsgate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from memory_drive import MemoryDrive  # noqa: E402

# A guard against a hang, never a timing assertion: how long to wait for the kernel's
# asynchronous RELEASE before reporting that a context was never released.
HANG_GUARD_S = 120


def mounted(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


@pytest.fixture
def mountpoint(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    yield str(mp)
    if mounted(str(mp)):  # a test failed before unmounting: never leave a mount behind
        subprocess.run(["umount", "-l", str(mp)], check=False)


@pytest.fixture
def memory(mountpoint):
    drive = MemoryDrive()
    drive.drive.mount(mountpoint)
    try:
        yield drive, mountpoint
    finally:
        drive.drive.unmount()
    assert not mounted(mountpoint)


def test_names_and_aliases():
    assert fsgate.CBFS is fsgate.VirtualDrive
    assert fsgate.CBFSCreateFileEventParams is fsgate.CreateFileParams
    assert fsgate.CBFSReadFileEventParams is fsgate.ReadFileParams
    assert "on_create_file" in fsgate.VirtualDrive.EVENTS
    drive = fsgate.CBFS()
    assert drive.on_create_file is None
    drive.on_create_file = print
    assert drive.on_create_file is print
    del drive.on_create_file
    assert drive.on_create_file is None


def test_write_then_read_bytes(memory):
    _, mp = memory
    data = bytes(range(256)) * 1000 + b"tail"
    with open(f"{mp}/blob", "wb") as f:
        f.write(data)
    assert os.stat(f"{mp}/blob").st_size == len(data)
    with open(f"{mp}/blob", "rb") as f:
        assert f.read() == data
    # another process sees the same bytes
    out = subprocess.run(["cat", f"{mp}/blob"], capture_output=True, check=True).stdout
    assert out == data
    # a write at an offset and a truncate
    with open(f"{mp}/blob", "r+b") as f:
        f.seek(3)
        f.write(b"XYZ")
        f.truncate(8)
    with open(f"{mp}/blob", "rb") as f:
        assert f.read() == data[:3] + b"XYZ" + data[6:8]


def test_listing_names(memory):
    _, mp = memory
    os.mkdir(f"{mp}/dir")
    for name in ("b", "a", "c.txt"):
        with open(f"{mp}/dir/{name}", "wb") as f:
            f.write(name.encode())
    assert sorted(os.listdir(f"{mp}/dir")) == ["a", "b", "c.txt"]
    assert os.listdir(mp) == ["dir"]
    ls = subprocess.run(["ls", "-1", f"{mp}/dir"], capture_output=True, check=True, text=True)
    assert ls.stdout.split() == ["a", "b", "c.txt"]
    assert os.path.isdir(f"{mp}/dir") and os.path.isfile(f"{mp}/dir/a")


def test_non_utf8_names_round_trip(memory):
    _, mp = memory
    name = b"\xff\xfe-not-utf8"
    fd = os.open(os.path.join(mp.encode(), name), os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"x")
    os.close(fd)
    assert os.listdir(mp.encode()) == [name]
    assert os.stat(os.path.join(mp.encode(), name)).st_size == 1


def test_rename(memory):
    _, mp = memory
    os.mkdir(f"{mp}/from")
    os.mkdir(f"{mp}/to")
    with open(f"{mp}/from/f", "wb") as f:
        f.write(b"moved")
    os.rename(f"{mp}/from/f", f"{mp}/to/g")
    with pytest.raises(FileNotFoundError):
        os.stat(f"{mp}/from/f")
    with open(f"{mp}/to/g", "rb") as f:
        assert f.read() == b"moved"
    assert os.listdir(f"{mp}/from") == [] and os.listdir(f"{mp}/to") == ["g"]
    os.rename(f"{mp}/to", f"{mp}/renamed")  # a directory with its contents
    with open(f"{mp}/renamed/g", "rb") as f:
        assert f.read() == b"moved"


def test_delete(memory):
    _, mp = memory
    os.mkdir(f"{mp}/d")
    with open(f"{mp}/d/f", "wb") as f:
        f.write(b"x")
    with pytest.raises(OSError) as e:
        os.rmdir(f"{mp}/d")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(f"{mp}/d/f")
    os.rmdir(f"{mp}/d")
    assert os.listdir(mp) == []
    with pytest.raises(FileNotFoundError):
        os.stat(f"{mp}/d")


def test_result_code_fails_the_open(memory):
    drive, mp = memory
    for name in ("denied", "readonly", "fine"):
        with open(f"{mp}/{name}", "wb") as f:
            f.write(b"x")
    base = drive.open_file

    def open_file(p):
        if p.file_name == "/denied":
            p.result_code = fsgate.ERROR_ACCESS_DENIED  # a reference code ...
        elif p.file_name == "/readonly":
            p.result_code = -errno.EROFS  # ... or a negated errno
        else:
            base(p)

    drive.drive.on_open_file = open_file
    with pytest.raises(OSError) as e:
        open(f"{mp}/denied", "rb")
    assert e.value.errno == errno.EACCES
    with pytest.raises(OSError) as e:
        open(f"{mp}/readonly", "rb")
    assert e.value.errno == errno.EROFS
    with open(f"{mp}/fine", "rb") as f:
        assert f.read() == b"x"
    # from another process too
    cat = subprocess.run(["cat", f"{mp}/denied"], capture_output=True, text=True)
    assert cat.returncode != 0 and "Permission denied" in cat.stderr


def test_exception_in_a_handler_is_eio_and_fires_on_error(memory):
    drive, mp = memory
    with open(f"{mp}/boom", "wb") as f:
        f.write(b"data")
    errors = []
    base = drive.read_file

    def read_file(p):
        if p.file_name == "/boom":
            raise ValueError("the handler failed on purpose")
        base(p)

    drive.drive.on_error = lambda p: errors.append((p.error_code, p.description))
    drive.drive.on_read_file = read_file
    with pytest.raises(OSError) as e:
        with open(f"{mp}/boom", "rb") as f:
            f.read()
    assert e.value.errno == errno.EIO
    assert len(errors) >= 1
    code, description = errors[0]
    assert code == 31  # ERROR_GEN_FAILURE, the code of EIO
    assert "on_read_file" in description and "the handler failed on purpose" in description


def test_fsgate_error_and_os_error_in_a_handler_carry_their_code(memory):
    """A deliberate failure raised in a handler reaches the caller with its code, like
    ``result_code``, and is not reported through ``on_error``."""
    drive, mp = memory
    for name in ("denied", "busy", "gone", "fine"):
        with open(f"{mp}/{name}", "wb") as f:
            f.write(b"x")
    errors = []
    base = drive.open_file

    def open_file(p):
        if p.file_name == "/denied":
            raise fsgate.FsgateError(fsgate.ERROR_ACCESS_DENIED, "not for you")
        if p.file_name == "/busy":
            raise fsgate.FsgateError(-errno.EBUSY, "in use")  # a negated errno, as result_code
        if p.file_name == "/gone":
            raise FileNotFoundError(errno.ENOENT, "vanished")
        base(p)

    drive.drive.on_error = lambda p: errors.append(p.description)
    drive.drive.on_open_file = open_file
    expected = {"denied": errno.EACCES, "busy": errno.EBUSY, "gone": errno.ENOENT}
    # A child process sees the errno of each code.
    script = (
        "import os, sys\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        os.close(os.open(os.path.join(sys.argv[1], name), os.O_RDONLY))\n"
        "        print(name, 0)\n"
        "    except OSError as e:\n"
        "        print(name, e.errno)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, mp, *expected, "fine"],
        capture_output=True, text=True, check=True,
    )
    seen = dict(line.split() for line in child.stdout.splitlines())
    assert seen == {**{k: str(v) for k, v in expected.items()}, "fine": "0"}
    assert errors == []


def test_originator_and_handle_creator_tokens(memory):
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"x")
    tokens = []
    base = drive.open_file

    def open_file(p):
        base(p)
        if p.file_name == "/f":
            d = drive.drive
            tokens.append((d.get_originator_token(), d.get_handle_creator_token(p.handle_info)))

    drive.drive.on_open_file = open_file
    child = subprocess.run(
        # Another user, kept able to reach the file under pytest's private directory by
        # CAP_DAC_READ_SEARCH (bit 2) alone.
        ["setpriv", "--reuid=4242", "--regid=4343", "--clear-groups",
         "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "cat", f"{mp}/f"],
        capture_output=True, check=True,
    )
    assert child.stdout == b"x"
    assert len(tokens) == 1
    for token in tokens[0]:
        assert (token.uid, token.euid, token.gid, token.egid, token.groups) == (
            4242, 4242, 4343, 4343, [],
        )
        assert token.capabilities == 1 << 2
    with pytest.raises(fsgate.FsgateError) as e:
        drive.drive.get_originator_token()  # outside a handler
    assert e.value.code == 614


def test_buffer_is_released_after_the_handler(memory):
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"abc")
    kept = []
    base = drive.read_file

    def read_file(p):
        kept.append(p.buffer)
        base(p)

    drive.drive.on_read_file = read_file
    with open(f"{mp}/f", "rb") as f:
        assert f.read() == b"abc"
    assert kept
    with pytest.raises(ValueError):
        kept[0][0]  # the view was released when the handler returned


def test_contexts_are_released_after_close(memory):
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"abc")

    class Context:
        pass

    released = threading.Event()
    refs = []
    base = drive.open_file

    def open_file(p):
        base(p)
        if p.file_name == "/f":
            ctx = Context()
            refs.append(weakref.ref(ctx, lambda _: released.set()))
            p.handle_context = ctx

    seen = []
    drive.drive.on_open_file = open_file
    drive.drive.on_cleanup_file = lambda p: seen.append(p.handle_context)
    fd = os.open(f"{mp}/f", os.O_RDONLY)
    assert os.read(fd, 3) == b"abc"
    os.close(fd)
    assert len(refs) == 1
    assert seen and isinstance(seen[0], Context)  # the stored context came back
    seen.clear()
    gc.collect()
    assert released.wait(HANG_GUARD_S), "the handle context was never released"
    assert refs[0]() is None


def test_a_failing_open_releases_what_it_stored(memory):
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"x")

    class Context:
        pass

    released = threading.Event()
    refs = []

    def open_file(p):
        ctx = Context()
        refs.append(weakref.ref(ctx, lambda _: released.set()))
        p.handle_context = ctx
        p.result_code = fsgate.ERROR_ACCESS_DENIED

    drive.drive.on_open_file = open_file
    with pytest.raises(PermissionError):
        open(f"{mp}/f", "rb")
    assert len(refs) == 1
    assert released.wait(HANG_GUARD_S), "the failed open's context was never released"


def test_handlers_see_names_as_os_fsdecode_gives_them(memory):
    drive, mp = memory
    seen = []
    base = drive.create_file

    def create_file(p):
        seen.append(p.file_name)
        base(p)

    drive.drive.on_create_file = create_file
    raw = b"caf\xc3\xa9-\xff"  # UTF-8 then a byte that is not
    os.close(os.open(os.path.join(mp.encode(), raw), os.O_CREAT | os.O_WRONLY))
    assert seen == ["/" + os.fsdecode(raw)]
    assert seen[0].startswith("/café-")
    assert os.listdir(mp.encode()) == [raw]


def test_volume_size_and_attributes(memory):
    drive, mp = memory

    def get_volume_size(p):
        p.total_sectors, p.available_sectors = 1000, 250
        p.total_files, p.free_files = 50, 40

    drive.drive.on_get_volume_size = get_volume_size
    st = os.statvfs(mp)
    assert (st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize) == (1000 * 512, 250 * 512)
    assert (st.f_files, st.f_ffree) == (50, 40)
    with open(f"{mp}/f", "wb") as f:
        f.write(b"x")
    os.chmod(f"{mp}/f", 0o640)
    os.utime(f"{mp}/f", (1_000_000_000, 1_500_000_000))
    st = os.stat(f"{mp}/f")
    assert (st.st_mode & 0o7777, st.st_mtime, st.st_atime) == (0o640, 1_500_000_000, 1_000_000_000)
    os.mkdir(f"{mp}/d", 0o700)
    assert os.stat(f"{mp}/d").st_mode & 0o7777 == 0o700


def test_volume_events(mountpoint):
    drive = fsgate.VirtualDrive()
    drive.app_state = "drives take attributes of their own"
    fired = []
    drive.on_get_volume_label = lambda p: setattr(p, "buffer", "pylabel")
    drive.on_get_volume_id = lambda p: setattr(p, "volume_id", 0x1234)
    drive.on_mount = lambda p: fired.append(("mount", p.mounting_point))
    drive.on_unmount = lambda p: fired.append(("unmount", p.mounting_point))
    drive.mount(mountpoint)
    try:
        real = os.path.realpath(mountpoint)
        with open("/proc/self/mountinfo") as f:
            line = next(line for line in f if line.split()[4] == real)
        assert line.split(" - ")[1].split()[1] == "pylabel"  # the label is the source name
        assert fired == [("mount", real)]
    finally:
        drive.unmount()
    assert fired == [("mount", real), ("unmount", real)]


def test_symbolic_links_and_extended_attributes(memory):
    _, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"through the link")
    os.symlink("f", f"{mp}/link")
    assert os.readlink(f"{mp}/link") == "f"
    assert os.path.islink(f"{mp}/link")
    with open(f"{mp}/link", "rb") as f:
        assert f.read() == b"through the link"
    os.setxattr(f"{mp}/f", "user.comment", b"\x00binary\xff")
    assert os.getxattr(f"{mp}/f", "user.comment") == b"\x00binary\xff"
    assert os.listxattr(f"{mp}/f") == ["user.comment"]
    os.removexattr(f"{mp}/f", "user.comment")
    with pytest.raises(OSError) as e:
        os.getxattr(f"{mp}/f", "user.comment")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:  # on_create_hard_link is unset: EPERM
        os.link(f"{mp}/f", f"{mp}/hard")
    assert e.value.errno == errno.EPERM


def test_link_events_answer_the_kernel_with_their_info(memory):
    """A link handler that fills ``info`` and sets ``info_filled`` answers the kernel itself:
    the new name's attributes are the handler's, and no ``on_get_file_info`` follows."""
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"0123456789")
    base_symlink, base_info = drive.create_symbolic_link, drive.get_file_info
    asked = []

    def create_symbolic_link(p):
        base_symlink(p)
        if p.file_name == "/filled":
            p.attributes = fsgate.FILE_ATTRIBUTE_REPARSE_POINT
            p.size, p.mode, p.uid, p.gid = len(p.target), 0o777, 4242, 4343
            p.info_filled = True

    def create_hard_link(p):
        node = drive.nodes[p.file_name]
        drive.nodes[p.link_name] = node
        drive.nodes["/"].children.add(p.link_name[1:])
        p.attributes, p.size, p.mode = fsgate.FILE_ATTRIBUTE_NORMAL, len(node.data), 0o600
        p.hard_link_count, p.uid, p.gid = 2, 4444, 4545
        p.info_filled = True

    def get_file_info(p):
        base_info(p)
        asked.append((p.file_name, p.file_exists))  # the negative lookup before a create is False

    drive.drive.on_create_symbolic_link = create_symbolic_link
    drive.drive.on_create_hard_link = create_hard_link
    drive.drive.on_get_file_info = get_file_info
    os.symlink("f", f"{mp}/filled")
    os.link(f"{mp}/f", f"{mp}/hard")
    link, hard = os.lstat(f"{mp}/filled"), os.lstat(f"{mp}/hard")
    assert (link.st_uid, link.st_gid, link.st_size) == (4242, 4343, 1)
    assert (hard.st_uid, hard.st_gid, hard.st_size, hard.st_nlink) == (4444, 4545, 10, 2)
    assert hard.st_mode & 0o777 == 0o600
    assert ("/filled", True) not in asked and ("/hard", True) not in asked
    # Without info_filled the library asks on_get_file_info for the new name.
    os.symlink("f", f"{mp}/asked")
    os.lstat(f"{mp}/asked")
    assert ("/asked", True) in asked


def test_routed_handles_fire_no_read_or_write_events(mountpoint, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    content = b"served from the real file " * 4096
    (real / "data").write_bytes(content)
    drive = fsgate.VirtualDrive()
    data_events = []

    def get_file_info(p):
        path = real / p.file_name.lstrip("/")
        if p.file_name != "/" and path.exists():
            p.file_exists = True
            p.size = path.stat().st_size

    def create_file(p):
        p.route_to_file(f"{real}{p.file_name}")
        p.info_filled = True

    def open_file(p):
        if p.file_name != "/":
            p.route_to_file(f"{real}{p.file_name}", fsgate.ROUTE_CLOSE_EVENT)

    drive.on_get_file_info = get_file_info
    drive.on_create_file = create_file
    drive.on_open_file = open_file
    drive.on_read_file = lambda p: data_events.append(("read", p.file_name))
    drive.on_write_file = lambda p: data_events.append(("write", p.file_name))
    drive.mount(mountpoint)
    try:
        assert drive.route_mode in ("passthrough", "library")
        with open(f"{mountpoint}/data", "rb") as f:
            assert f.read() == content
        with open(f"{mountpoint}/new", "wb") as f:
            f.write(b"lands in the real directory")
        assert (real / "new").read_bytes() == b"lands in the real directory"
        with open(f"{mountpoint}/new", "rb") as f:
            assert f.read() == b"lands in the real directory"
        assert data_events == []
        with pytest.raises(OSError) as e:  # a route to a file that cannot be opened
            os.unlink(real / "data")
            open(f"{mountpoint}/data", "rb")
        assert e.value.errno == errno.ENOENT
    finally:
        drive.unmount()


def test_copy_file_range_reaches_the_handler(memory):
    drive, mp = memory
    copies = []

    def copy_file_range(p):
        source, target = p.file_context.data, drive.nodes[p.target_file_name].data
        chunk = bytes(source[p.position : p.position + p.length])
        target[p.target_position : p.target_position + len(chunk)] = chunk
        p.bytes_copied = len(chunk)
        copies.append((p.file_name, p.target_file_name, len(chunk)))

    drive.drive.on_copy_file_range = copy_file_range
    with open(f"{mp}/src", "wb") as f:
        f.write(b"0123456789")
    with open(f"{mp}/src", "rb") as src, open(f"{mp}/dst", "wb") as dst:
        assert os.copy_file_range(src.fileno(), dst.fileno(), 6, 2, 0) == 6
    assert copies == [("/src", "/dst", 6)]
    with open(f"{mp}/dst", "rb") as f:
        assert f.read() == b"234567"


def test_handle_creator(memory):
    drive, mp = memory
    with open(f"{mp}/f", "wb") as f:
        f.write(b"x")
    creators = []
    base = drive.open_file

    def open_file(p):
        base(p)
        if p.file_name == "/f":
            d = drive.drive
            creators.append(
                (d.get_handle_creator_process_id(p.handle_info),
                 d.get_handle_creator_process_name(p.handle_info),
                 p.handle_info.handle_id != 0)
            )

    drive.drive.on_open_file = open_file
    child = subprocess.Popen(["cat", f"{mp}/f"], stdout=subprocess.PIPE)
    assert child.communicate()[0] == b"x"
    assert creators == [(child.pid, "cat", True)]


def test_reference_style_sequence(mountpoint, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    memory = MemoryDrive()
    cbfs = memory.drive
    cbfs.initialize("")
    cbfs.create_storage()
    cbfs.mount_media(0)
    cbfs.add_mounting_point(mountpoint)
    try:
        assert cbfs.active
        cbfs.add_mounting_point(str(second))
        with open(f"{mountpoint}/x", "wb") as f:
            f.write(b"both")
        with open(f"{second}/x", "rb") as f:
            assert f.read() == b"both"
        assert [str(p) for p in cbfs.mounting_points] == [
            os.path.realpath(mountpoint),
            os.path.realpath(second),
        ]
        cbfs.delete_mounting_point(str(second))
        assert not mounted(str(second))
    finally:
        cbfs.unmount_media(True)
        if mounted(str(second)):
            subprocess.run(["umount", "-l", str(second)], check=False)
    assert not cbfs.active and not mounted(mountpoint)


def test_bad_arguments_raise_fsgate_error(mountpoint, tmp_path):
    drive = fsgate.VirtualDrive()
    with pytest.raises(fsgate.FsgateError) as e:
        drive.mount(str(tmp_path / "missing"))
    assert e.value.code == 3  # ERROR_PATH_NOT_FOUND
    assert "missing" in e.value.message
    full = tmp_path / "full"
    full.mkdir()
    (full / "f").write_bytes(b"")
    with pytest.raises(fsgate.FsgateError) as e:
        drive.mount(str(full))
    assert e.value.code == 145  # ERROR_DIR_NOT_EMPTY
    with pytest.raises(fsgate.FsgateError) as e:
        drive.on_read_file = 42
    assert e.value.code == fsgate.ERROR_INVALID_PARAMETER
    with pytest.raises(fsgate.FsgateError) as e:
        drive.set_event_hook("on_no_such_event", print)
    assert e.value.code == fsgate.ERROR_INVALID_PARAMETER
    with pytest.raises(fsgate.FsgateError) as e:
        drive.mount(mountpoint, 10)  # a timeout below 3 s
    assert e.value.code == 1292  # ERROR_IMPLEMENTATION_LIMIT
    with pytest.raises(fsgate.FsgateError) as e:
        drive.notify_file_change("/x")
    assert e.value.code == 21  # ERROR_NOT_READY: not mounted
    drive.mount(mountpoint)
    try:
        with pytest.raises(fsgate.FsgateError) as e:
            drive.mount(mountpoint)
        assert e.value.code == 1230  # ERROR_CONNECTION_ACTIVE
    finally:
        drive.unmount()
    assert isinstance(e.value, Exception) and str(e.value).endswith("(code 1230)")
