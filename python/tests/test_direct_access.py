"""DirectAccess on a real loop device: sectors written and read back from Python, compared
with the bytes the backing image holds, and the documented errors. Run as root.
"""

import os
import subprocess
import sys

import pytest

import fsgate

GUID = "{3C1F9A2E-7B44-4D0A-9E21-5F6A7B8C9D0E}"
SECTOR = 512


@pytest.fixture
def direct(tmp_path, monkeypatch):
    """A DirectAccess initialized against fsgate installed under a temporary root."""
    monkeypatch.setenv("FSGATE_ROOT", str(tmp_path / "root"))
    package = str(tmp_path / "fsgate.pkg")
    fsgate.build_package(package, "/bin/true")
    d = fsgate.CBDirect()
    d.install(package, GUID, "", 0)
    d.initialize(GUID)
    return d


@pytest.fixture
def loop_device(tmp_path):
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(1 << 20)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield device, image
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_sectors_round_trip(direct, loop_device):
    device, image = loop_device
    pattern = bytes((i * 7) % 256 for i in range(2 * SECTOR))
    with direct.open_volume(device, fsgate.GENERIC_READ | fsgate.GENERIC_WRITE, False) as h:
        assert direct.get_sector_size(h) == SECTOR
        assert direct.get_sector_count(h) == (1 << 20) // SECTOR
        direct.write_sectors(h, 3, 2, pattern)  # bytes: written in place
        direct.write_sectors(h, 10, 1, bytearray(b"\xab" * SECTOR))  # bytearray: in place
        back = bytearray(2 * SECTOR)
        direct.read_sectors(h, 3, 2, back)  # filled in place
        assert bytes(back) == pattern
        view = memoryview(bytearray(SECTOR))
        direct.read_sectors(h, 10, 1, view)  # another writable buffer
        assert bytes(view) == b"\xab" * SECTOR
    with open(device, "rb") as f:  # what any other reader of the device sees
        f.seek(3 * SECTOR)
        assert f.read(2 * SECTOR) == pattern
    subprocess.run(["losetup", "-d", device], check=True)
    data = image.read_bytes()
    assert data[3 * SECTOR : 5 * SECTOR] == pattern
    assert data[10 * SECTOR : 11 * SECTOR] == b"\xab" * SECTOR
    assert data[: 3 * SECTOR] == bytes(3 * SECTOR)


def test_errors_carry_the_reference_codes(direct, loop_device, tmp_path):
    device, _ = loop_device
    with pytest.raises(fsgate.FsgateError) as e:
        fsgate.DirectAccess().open_volume(device, fsgate.GENERIC_READ)
    assert e.value.code == 21  # ERROR_NOT_READY: not initialized
    with pytest.raises(fsgate.FsgateError) as e:
        direct.open_volume(str(tmp_path / "missing"), fsgate.GENERIC_READ)
    assert e.value.code == 2  # ERROR_FILE_NOT_FOUND
    h = direct.open_volume(device, fsgate.GENERIC_READ)
    with pytest.raises(fsgate.FsgateError) as e:
        direct.read_sectors(h, 0, 2, bytearray(SECTOR))
    assert e.value.code == 122  # ERROR_INSUFFICIENT_BUFFER
    with pytest.raises(fsgate.FsgateError) as e:
        direct.read_sectors(h, (1 << 20) // SECTOR, 1, bytearray(SECTOR))
    assert e.value.code == 87  # ERROR_INVALID_PARAMETER: past the end
    with pytest.raises(fsgate.FsgateError) as e:
        direct.write_sectors(h, 0, 1, bytes(SECTOR))
    assert e.value.code == 5  # ERROR_ACCESS_DENIED: opened read-only
    h.close()
    with pytest.raises(fsgate.FsgateError) as e:
        direct.get_sector_count(h)
    assert e.value.code == 6  # ERROR_INVALID_HANDLE: closed


def test_volume_as_a_stream(direct, loop_device):
    device, image = loop_device
    size = 1 << 20
    with direct.open_volume_as_stream(device, fsgate.GENERIC_READ | fsgate.GENERIC_WRITE) as s:
        assert isinstance(s, fsgate.CBFSDirectStream)
        assert s.length == size and s.readable() and s.seekable() and s.writeable()
        assert s.seek(1000) == 1000
        assert s.write(b"unaligned bytes") == 15  # not sector-aligned: read-modify-write
        assert s.tell() == 1015
        assert s.seek(-15, 1) == 1000
        assert s.read(15) == b"unaligned bytes"
        buf = bytearray(5)
        s.seek(1010)
        assert s.readinto(buf) == 5 and bytes(buf) == b"bytes"
        s.seek(-3, 2)
        assert s.read() == bytes(3)
        with pytest.raises(fsgate.FsgateError) as e:
            s.truncate(10)
        assert e.value.code == 50  # ERROR_NOT_SUPPORTED: a volume's length is fixed
    assert s.closed
    with pytest.raises(fsgate.FsgateError) as e:
        s.read(1)
    assert e.value.code == 6  # ERROR_INVALID_HANDLE
    subprocess.run(["losetup", "-d", device], check=True)
    assert image.read_bytes()[1000:1015] == b"unaligned bytes"


def test_sector_reader_example(direct, loop_device, monkeypatch):
    device, _ = loop_device
    with direct.open_volume(device, fsgate.GENERIC_READ | fsgate.GENERIC_WRITE) as h:
        direct.write_sectors(h, 1, 1, b"sector one says hi".ljust(SECTOR, b"\0"))
    monkeypatch.setenv("FSGATE_PRODUCT_GUID", GUID)
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "sector_reader.py")
    out = subprocess.run(
        [sys.executable, example, device, "1", "1"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == SECTOR // 16
    assert out[0] == (
        "0000000200  73 65 63 74 6f 72 20 6f 6e 65 20 73 61 79 73 20  sector one says "
    )


def test_create_file_delete_file_and_streams(direct, tmp_path):
    path = str(tmp_path / "direct.bin")
    fd = direct.create_file(path, fsgate.GENERIC_READ | fsgate.GENERIC_WRITE, fsgate.CREATE_NEW)
    try:
        assert os.write(fd, b"written through a direct handle") == 31
    finally:
        os.close(fd)
    with pytest.raises(fsgate.FsgateError) as e:
        direct.create_file(path, fsgate.GENERIC_READ, fsgate.CREATE_NEW)  # exists
    assert e.value.code == 80
    stream = direct.create_file_as_stream(path, fsgate.GENERIC_READ, fsgate.OPEN_EXISTING)
    try:
        assert stream.read(7) == b"written"
    finally:
        stream.close()
    with open(path, "rb") as holder:
        holders = direct.delete_file(path, True)
        assert (os.getpid(), holder.fileno()) in holders
        assert holder.read() == b"written through a direct handle"  # still readable, nameless
    assert not os.path.exists(path)
    with pytest.raises(fsgate.FsgateError) as e:
        direct.delete_file(path)
    assert e.value.code == 2
    with pytest.raises(fsgate.FsgateError) as e:
        fsgate.CBDirect().create_file(path, fsgate.GENERIC_READ, fsgate.CREATE_NEW)
    assert e.value.code == 21  # not initialized


def test_open_memory(direct):
    """Physical memory through /proc/kcore or /dev/mem; a kernel offering neither, or one that
    refuses the read, answers with the documented codes instead."""
    try:
        memory = direct.open_memory()
    except fsgate.FsgateError as e:
        assert e.code in (50, 1314), e
        return
    assert memory.source in ("kcore", "mem")
    assert memory.ranges and memory.size >= sum(length for _, length in memory.ranges[:1])
    start, length = memory.ranges[0]
    try:
        data = memory.read(start, 64)
    except fsgate.FsgateError as e:
        assert e.code == 1314, e  # CONFIG_STRICT_DEVMEM
    else:
        assert len(data) == min(64, length)
    with pytest.raises(fsgate.FsgateError) as e:
        memory.read(memory.size + (1 << 30), 8)
    assert e.value.code == 87
    stream = direct.open_memory_as_stream()
    stream.close()
