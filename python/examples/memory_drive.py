"""A virtual drive that keeps its files and directories in memory.

Run as root: ``python memory_drive.py MOUNTING_POINT`` (an empty directory), then use the
directory with any program; Ctrl-C unmounts. ``MemoryDrive`` is also imported by the tests.
"""

import errno
import os
import signal
import sys
import threading
from datetime import datetime, timezone

import fsgate


class Node:
    """A file (``data``) or a directory (``children``: names)."""

    def __init__(self, is_dir: bool, mode: int) -> None:
        self.is_dir = is_dir
        self.mode = mode
        self.data = bytearray()
        self.children = set()
        self.target = None  # a symbolic link's
        self.eas = {}
        now = datetime.now(timezone.utc)
        self.created = self.accessed = self.written = self.changed = now

    def fill(self, p) -> None:
        """Reports this node's metadata in a get-info or listing params object."""
        if self.is_dir:
            p.attributes = fsgate.FILE_ATTRIBUTE_DIRECTORY
        elif self.target is not None:
            p.attributes = fsgate.FILE_ATTRIBUTE_REPARSE_POINT
        else:
            p.attributes = fsgate.FILE_ATTRIBUTE_NORMAL
        p.mode = self.mode
        p.size = len(self.data) if self.target is None else len(os.fsencode(self.target))
        p.creation_time, p.last_access_time = self.created, self.accessed
        p.last_write_time, p.change_time = self.written, self.changed


def split(path: str):
    parent, _, name = path.rpartition("/")
    return parent or "/", name


class MemoryDrive:
    """The drive: ``nodes`` maps full paths to nodes; one lock guards the tree."""

    def __init__(self, kernel_opens_files: bool = False) -> None:
        self.nodes = {"/": Node(True, 0o755)}
        self.lock = threading.Lock()
        self.drive = d = fsgate.VirtualDrive()
        if kernel_opens_files:  # as `fsgate mount memory`: open and close cost no event
            d.config("KernelOpensFiles=true")
            d.config("FireCleanupEvents=false")
        d.on_get_file_info = self.get_file_info
        d.on_create_file = self.create_file
        d.on_open_file = self.open_file
        d.on_read_file = self.read_file
        d.on_write_file = self.write_file
        d.on_set_file_size = self.set_file_size
        d.on_set_file_attributes = self.set_file_attributes
        d.on_enumerate_directory = self.enumerate_directory
        d.on_is_directory_empty = self.is_directory_empty
        d.on_rename_or_move_file = self.rename_or_move_file
        d.on_delete_file = self.delete_file
        d.on_create_symbolic_link = self.create_symbolic_link
        d.on_get_symbolic_link_target = lambda p: setattr(p, "target", self.nodes[p.file_name].target)
        d.on_get_ea = self.get_ea
        d.on_set_ea = lambda p: self.nodes[p.file_name].eas.__setitem__(p.name, p.value)
        d.on_list_eas = lambda p: setattr(p, "names", list(self.nodes[p.file_name].eas))
        d.on_remove_ea = self.remove_ea

    def get_file_info(self, p) -> None:
        node = self.nodes.get(p.file_name)
        if node is not None:
            p.file_exists = True
            node.fill(p)

    def create_file(self, p) -> None:
        parent, name = split(p.file_name)
        with self.lock:
            if parent not in self.nodes:
                p.result_code = fsgate.ERROR_PATH_NOT_FOUND
                return
            node = Node(bool(p.attributes & fsgate.FILE_ATTRIBUTE_DIRECTORY), p.mode)
            self.nodes[p.file_name] = node
            self.nodes[parent].children.add(name)
        p.file_context = node
        p.info_filled = True  # a new empty object, as the library assumes: no get-info event

    def open_file(self, p) -> None:
        if p.file_context is None:
            p.file_context = self.nodes[p.file_name]

    def read_file(self, p) -> None:
        data = p.file_context.data
        chunk = data[p.position : p.position + p.bytes_to_read]
        p.buffer[: len(chunk)] = chunk
        p.bytes_read = len(chunk)

    def write_file(self, p) -> None:
        node = p.file_context
        with self.lock:
            if len(node.data) < p.position:
                node.data.extend(bytes(p.position - len(node.data)))
            node.data[p.position : p.position + p.bytes_to_write] = p.buffer
            node.written = node.changed = datetime.now(timezone.utc)
        p.bytes_written = p.bytes_to_write

    def set_file_size(self, p) -> None:
        node = p.file_context or self.nodes[p.file_name]  # open, maybe deleted, or by name
        with self.lock:
            del node.data[p.size :]
            node.data.extend(bytes(p.size - len(node.data)))

    def set_file_attributes(self, p) -> None:
        node = self.nodes[p.file_name]
        if p.mode is not None:
            node.mode = p.mode
        for name in ("creation_time", "last_access_time", "last_write_time", "change_time"):
            value = getattr(p, name)
            if value is not None:
                setattr(node, {"creation_time": "created", "last_access_time": "accessed",
                               "last_write_time": "written", "change_time": "changed"}[name], value)

    def enumerate_directory(self, p) -> None:
        if p.enumeration_context is None:
            p.enumeration_context = iter(sorted(self.nodes[p.directory_name].children))
        name = next(p.enumeration_context, None)
        if name is not None:
            p.file_found = True
            p.file_name = name
            self.nodes[os.path.join(p.directory_name, name)].fill(p)

    def is_directory_empty(self, p) -> None:
        p.is_empty = not self.nodes[p.directory_name].children

    def rename_or_move_file(self, p) -> None:
        old, new = p.file_name, p.new_file_name
        with self.lock:
            if new in self.nodes:
                self._remove(new)
            for path in [k for k in self.nodes if k == old or k.startswith(old + "/")]:
                self.nodes[new + path[len(old):]] = self.nodes.pop(path)
            self.nodes[split(old)[0]].children.discard(split(old)[1])
            self.nodes[split(new)[0]].children.add(split(new)[1])

    def delete_file(self, p) -> None:
        with self.lock:
            self._remove(p.file_name)

    def create_symbolic_link(self, p) -> None:
        node = Node(False, 0o777)
        node.target = p.target
        with self.lock:
            self.nodes[p.file_name] = node
            parent, name = split(p.file_name)
            self.nodes[parent].children.add(name)

    def get_ea(self, p) -> None:
        value = self.nodes[p.file_name].eas.get(p.name)
        if value is None:
            p.result_code = -errno.ENODATA
        else:
            p.value = value

    def remove_ea(self, p) -> None:
        if self.nodes[p.file_name].eas.pop(p.name, None) is None:
            p.result_code = -errno.ENODATA

    def _remove(self, path: str) -> None:
        del self.nodes[path]
        parent, name = split(path)
        self.nodes[parent].children.discard(name)


if __name__ == "__main__":
    # Ctrl-C and SIGTERM unmount. They are blocked in this thread before the drive starts its
    # threads, which inherit the mask, and this thread waits for them with sigwait: a signal
    # the kernel handed to a worker thread would be noted by Python without waking this one.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    memory = MemoryDrive(kernel_opens_files=True)
    memory.drive.mount(sys.argv[1])
    print(f"serving {sys.argv[1]}; Ctrl-C unmounts")
    try:
        signal.sigwait(stop_signals)
    finally:
        memory.drive.unmount()
