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


class FileMonitor(_fsgate.FileMonitor):
    """Notifications of file operations on whole mounts (the reference's ``CBMonitor``)."""


for _class in (VirtualDrive, ProcessFilter, FileMonitor):
    for _name in _class.EVENTS:
        setattr(_class, _name, _event_property(_name))
del _class, _name

CBFS = VirtualDrive
CBProcess = ProcessFilter
CBMonitor = FileMonitor

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

# ``desired_access`` of ``open_volume``.
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000

# Win32-style codes handlers use in ``result_code`` (negated errnos work too).
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_PARAMETER = 87
ERROR_DIR_NOT_EMPTY = 145
ERROR_ALREADY_EXISTS = 183

# ``route_to_file`` flag: the routed handle still fires its cleanup and close events.
ROUTE_CLOSE_EVENT = 0x1

# Flags of ``attributes``.
FILE_ATTRIBUTE_READONLY = 0x1
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_NORMAL = 0x80
FILE_ATTRIBUTE_REPARSE_POINT = 0x400

__all__ = [n for n in dir(_fsgate) if not n.startswith("_")] + [
    "CBFS",
    "CBProcess",
    "CBMonitor",
    "FileMonitor",
    "FS_NE_CREATE",
    "FS_NE_OPEN",
    "FS_NE_READ",
    "FS_NE_WRITE",
    "FS_NE_RENAME",
    "FS_NE_DELETE",
    "FS_NE_SET_ATTRIBUTES",
    "FS_NE_CLOSE",
    "FS_NE_EXECUTE",
    "FS_NE_ALL",
    "PROC_EVT_NONE",
    "PROC_EVT_PROCESS_CREATION",
    "PROC_EVT_PROCESS_TERMINATION",
    "PROC_EVT_THREAD_CREATION",
    "PROC_EVT_THREAD_TERMINATION",
    "PROC_EVT_ALL",
    "ProcessFilter",
    "CBDirect",
    "CBDirectErrorEventParams",
    "DirectAccess",
    "GENERIC_READ",
    "GENERIC_WRITE",
    "VirtualDrive",
    "FsgateError",
    "ERROR_FILE_NOT_FOUND",
    "ERROR_PATH_NOT_FOUND",
    "ERROR_ACCESS_DENIED",
    "ERROR_INVALID_PARAMETER",
    "ERROR_DIR_NOT_EMPTY",
    "ERROR_ALREADY_EXISTS",
    "ROUTE_CLOSE_EVENT",
    "FILE_ATTRIBUTE_READONLY",
    "FILE_ATTRIBUTE_DIRECTORY",
    "FILE_ATTRIBUTE_NORMAL",
    "FILE_ATTRIBUTE_REPARSE_POINT",
]
