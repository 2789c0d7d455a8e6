"""The benchmark's memory filesystem written the way a user of mfusepy (the maintained
ctypes binding of libfuse's high-level API, https://pypi.org/project/mfusepy/) would: the
same behaviour as ``python/examples/memory_drive.py`` (files in ``bytearray``s, directories
as name sets, times and modes), with mfusepy's defaults.

    python mfusepy_memory.py MOUNTING_POINT      # foreground; unmount with fusermount -u
"""

import errno
import stat
import sys
import threading
import time

import mfusepy as fuse


class Node:
    def __init__(self, mode: int) -> None:
        now = time.time_ns()
        self.mode = mode
        self.data = bytearray()
        self.children = set()
        self.times = [now, now, now]  # atime, mtime, ctime, in nanoseconds


class Memory(fuse.Operations):
    use_ns = True  # times in integer nanoseconds, as mfusepy recommends

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.nodes = {"/": Node(stat.S_IFDIR | 0o755)}

    def _node(self, path: str) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise fuse.FuseOSError(errno.ENOENT)
        return node

    @staticmethod
    def _split(path: str):
        parent, _, name = path.rpartition("/")
        return parent or "/", name

    def getattr(self, path, fh=None):
        with self.mutex:
            n = self._node(path)
            return {
                "st_mode": n.mode,
                "st_nlink": 2 if stat.S_ISDIR(n.mode) else 1,
                "st_size": len(n.data),
                "st_atime": n.times[0],
                "st_mtime": n.times[1],
                "st_ctime": n.times[2],
            }

    def readdir(self, path, fh):
        with self.mutex:
            return [".", ".."] + sorted(self._node(path).children)

    def _add(self, path: str, mode: int) -> None:
        with self.mutex:
            parent, name = self._split(path)
            if path in self.nodes:
                raise fuse.FuseOSError(errno.EEXIST)
            self._node(parent).children.add(name)
            self.nodes[path] = Node(mode)

    def create(self, path, mode, fi=None):
        self._add(path, stat.S_IFREG | (mode & 0o7777))
        return 0

    def mkdir(self, path, mode):
        self._add(path, stat.S_IFDIR | (mode & 0o7777))

    def open(self, path, flags):
        with self.mutex:
            self._node(path)
        return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            return bytes(self._node(path).data[offset : offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            n = self._node(path)
            if offset > len(n.data):
                n.data.extend(bytes(offset - len(n.data)))
            n.data[offset : offset + len(data)] = data
            n.times[1] = time.time_ns()
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            n = self._node(path)
            del n.data[length:]
            n.data.extend(bytes(length - len(n.data)))

    def _remove(self, path: str) -> None:
        with self.mutex:
            n = self._node(path)
            if n.children:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            parent, name = self._split(path)
            self.nodes[parent].children.discard(name)
            del self.nodes[path]

    def unlink(self, path):
        self._remove(path)

    def rmdir(self, path):
        self._remove(path)

    def rename(self, old, new):
        with self.mutex:
            n = self._node(old)
            op, oname = self._split(old)
            np_, nname = self._split(new)
            self._node(np_).children.add(nname)
            self.nodes[op].children.discard(oname)
            self.nodes[new] = n
            del self.nodes[old]

    def chmod(self, path, mode):
        with self.mutex:
            n = self._node(path)
            n.mode = (n.mode & ~0o7777) | (mode & 0o7777)

    def chown(self, path, uid, gid):
        pass

    def utimens(self, path, times=None):
        with self.mutex:
            n = self._node(path)
            now = time.time_ns()
            atime, mtime = times if times else (now, now)
            n.times[0], n.times[1] = atime, mtime

    def release(self, path, fh):
        return 0


if __name__ == "__main__":
    fuse.FUSE(Memory(), sys.argv[1], foreground=True)
