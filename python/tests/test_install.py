"""The installer functions against a temporary installation root."""

import pytest

import fsgate

GUID = "{3C1F9A2E-7B44-4D0A-9E21-5F6A7B8C9D0E}"


def test_install_status_version_uninstall(tmp_path):
    package = tmp_path / "fsgate.pkg"
    version = fsgate.build_package(str(package), "/bin/true")
    root = str(tmp_path / "root")
    assert fsgate.get_driver_status(GUID, root=root) == 0  # not present
    assert fsgate.get_driver_version(GUID, root=root) == 0
    with pytest.raises(fsgate.FsgateError) as e:
        fsgate.verify_installed(GUID, root=root)
    assert e.value.code == 2  # ERROR_FILE_NOT_FOUND: not installed
    assert fsgate.install(str(package), GUID, "", 0, root=root) in (False, True)
    fsgate.verify_installed(GUID, root=root)
    assert fsgate.get_driver_status(GUID, root=root) in (1, 4)  # stopped or running
    parts = [int(p) for p in version.split(".")]
    packed = fsgate.get_driver_version(GUID, root=root)
    assert [(packed >> s) & 0xFFFF for s in (48, 32, 16, 0)] == parts
    fsgate.uninstall(str(package), GUID, "", 0, root=root)
    assert fsgate.get_driver_status(GUID, root=root) == 0
    with pytest.raises(fsgate.FsgateError) as e:
        fsgate.install(str(tmp_path / "missing.pkg"), GUID, "", 0, root=root)
    assert e.value.code == 2
