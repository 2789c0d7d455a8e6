"""fsgate's Python edition: event-driven virtual drives on FUSE with the reference's names.

``from fsgate import VirtualDrive`` (fsgate's name) and ``from fsgate import CBFS`` (the
reference's) give the same class; its ``on_*`` properties take the handlers, each called
with a params object (``CreateFileParams``, alias ``CBFSCreateFileEventParams``, ...).
Every failing method raises ``FsgateError`` with ``code`` and ``message``.
"""

from . import _fsgate
from ._errors import FsgateError
from ._fsgate import *  # noqa: F401,F403  (the params classes and their CBFS aliases)


def _event_property(name: str) -> property:
    return property(
        lambda self: self.get_event_hook(name),
        lambda self, handler: self.set_event_hook(name, handler),
        lambda self: self.set_event_hook(name, None),
        f"The ``{name}`` handler: a callable taking the event's params object, or None.",
    )


class VirtualDrive(_fsgate.VirtualDrive):
    """An event-driven virtual filesystem (the reference's ``CBFS``)."""


class ProcessFilter(_fsgate.ProcessFilter):
    """Process and thread events from the kernel (the reference's ``CBProcess``)."""


class _Installation:
    """The reference's installation members of the file monitor and filter, over the
    installer functions (the installation root is ``$FSGATE_ROOT``, else ``/``). fanotify
    needs no driver, so the classes start without ``initialize``; it checks that fsgate is
    installed for the product, as the reference's does. ``altitude`` is kept and reported
    only: fanotify has no filter stack to place the listener in."""

    _altitude = "0"

    def initialize(self, product_guid: str) -> None:
        """Raises ``FsgateError`` (2 not installed, 340 older than this library) unless fsgate
        is installed for ``product_guid``."""
        _fsgate.verify_installed(product_guid)

    def install(self, cab_file_name: str, product_guid: str, path_to_install: str = "",
                flags: int = 0, altitude: str = "") -> bool:
        """Installs fsgate's system files from a package; whether a reboot is needed."""
        if altitude:
            self.altitude = altitude
        return _fsgate.install(cab_file_name, product_guid, path_to_install, flags)

    def uninstall(self, cab_file_name: str, product_guid: str, installed_path: str = "",
                  flags: int = 0) -> bool:
        """Removes the product's installation; whether a reboot is needed."""
        return _fsgate.uninstall(cab_file_name, product_guid, installed_path, flags)

    def get_driver_status(self, product_guid: str) -> int:
        """0 not present, 1 stopped, 4 running."""
        return _fsgate.get_driver_status(product_guid)

    def get_driver_version(self, product_guid: str) -> int:
        """The installed version, four 16-bit parts in 64 bits; 0 when not installed."""
        return _fsgate.get_driver_version(product_guid)

    @property
    def altitude(self) -> str:
        """The altitude (decimal digits), kept and reported only."""
        return self._altitude

    @altitude.setter
    def altitude(self, value: str) -> None:
        if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20):
            raise FsgateError(87, f"invalid altitude: {value!r} is not a decimal altitude")
        self._altitude = value


class FileMonitor(_Installation, _fsgate.FileMonitor):
    """Notifications of file operations on whole mounts (the reference's ``CBMonitor``)."""


class FileFilter(_Installation, _fsgate.FileFilter):
    """Access rules and control events on whole mounts (the reference's ``CBFilter``)."""


for _class in (VirtualDrive, ProcessFilter, FileMonitor, FileFilter):
    for _name in _class.EVENTS:
        setattr(_class, _name, _event_property(_name))
del _class, _name

CBFS = VirtualDrive
CBProcess = ProcessFilter
CBMonitor = FileMonitor
CBFilter = FileFilter

# Notification flags of ``FileMonitor.add_filter_rule``.
FS_NE_CREATE = 0x1
FS_NE_OPEN = 0x2
FS_NE_READ = 0x4
FS_NE_WRITE = 0x8
FS_NE_RENAME = 0x10
FS_NE_DELETE = 0x20
FS_NE_SET_ATTRIBUTES = 0x40
FS_NE_CLOSE = 0x400
FS_NE_EXECUTE = 0x1_0000_0000
FS_NE_ALL = 0x1_0000_047F
FS_NE_NONE = 0

# Access flags of ``FileFilter.add_filter_rule`` (enforced without a handler; a denied call
# fails with ``EPERM``). Delete and rename protection are served by the overlay backend,
# which the filter then picks when it starts.
ACCESS_NONE = 0
ACCESS_READ_ONLY = 0x1
ACCESS_WRITE_ONLY = 0x2
ACCESS_DELETE_PROTECT = 0x4
ACCESS_EXECUTE_PROTECT = 0x8
ACCESS_RENAME_PROTECT = 0x40
ACCESS_DENY_ALL = 0x1000

# Control flags of ``FileFilter.add_filter_rule``: which ``on_before_*`` events fire.
FS_CE_NONE = 0
FS_CE_BEFORE_CREATE = 0x1
FS_CE_BEFORE_OPEN = 0x4
FS_CE_BEFORE_READ = 0x10
FS_CE_REPARSE_FILENAME = 0x4000_0000
FS_CE_BEFORE_EXECUTE = 0x100_0000_0000


class DirectAccess(_fsgate.DirectAccess):
    """Direct access to disks, volumes and image files (the reference's ``CBDirect``)."""


CBDirect = DirectAccess
CBDirectErrorEventParams = ErrorParams  # noqa: F405

# The process filter's ``EventsToFire`` setting (``config("EventsToFire=-1")``).
PROC_EVT_NONE = 0
PROC_EVT_PROCESS_CREATION = 0x1
PROC_EVT_PROCESS_TERMINATION = 0x2
PROC_EVT_THREAD_CREATION = 0x8
PROC_EVT_THREAD_TERMINATION = 0x10
PROC_EVT_ALL = -1

# ``desired_access`` of ``open_volume`` and ``create_file``.
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000

# ``creation_disposition`` of ``DirectAccess.create_file``.
CREATE_NEW = 1
CREATE_ALWAYS = 2
OPEN_EXISTING = 3
OPEN_ALWAYS = 4
TRUNCATE_EXISTING = 5

# Win32-style codes handlers use in ``result_code`` (negated errnos work too).
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_FILE_EXISTS = 80
ERROR_INVALID_PARAMETER = 87
ERROR_DIR_NOT_EMPTY = 145
ERROR_ALREADY_EXISTS = 183

# ``route_to_file`` flag: the routed handle still fires its cleanup and close events.
ROUTE_CLOSE_EVENT = 0x1

# Flags of ``attributes`` (and of the ``add_filter_rule_ex`` qualifiers, where hidden
# means a name starting with a dot).
FILE_ATTRIBUTE_READONLY = 0x1
FILE_ATTRIBUTE_HIDDEN = 0x2
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_NORMAL = 0x80
FILE_ATTRIBUTE_REPARSE_POINT = 0x400

__all__ = sorted(n for n in globals() if not n.startswith("_"))
