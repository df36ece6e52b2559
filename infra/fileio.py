"""The few file-system calls the store makes, in one place.

Every write and fsync of the store goes through this module, so that the
durability rules live here and tests can inject faults (ENOSPC, EIO) by
replacing ``pwrite`` or ``fsync``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os

from eventfold.infra import failpoints
from eventfold.infra.errors import EventfoldError

pwrite = os.pwrite
fsync = os.fsync
READ_ONLY_ERRNOS = frozenset((errno.EROFS, errno.EACCES, errno.EPERM))
Bytes = bytes | bytearray | mmap.mmap


def is_read_only(error: OSError) -> bool:
    """Whether ``error`` says that a file cannot be written here (a read-only file
    system, or no permission), as opposed to a failing device or a full disk."""
    return error.errno in READ_ONLY_ERRNOS


def write_all(fd: int, data: Bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``, looping over short writes."""
    view = memoryview(data)
    while view:
        written = pwrite(fd, view, offset)
        if written <= 0:  # pragma: no cover - a zero-length write means no space
            raise OSError(28, "No space left on device (short write)")
        view = view[written:]
        offset += written


def fsync_dir(path: str) -> None:
    """Make a directory entry (a created, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


class FileWriteError(OSError, EventfoldError):
    """A write to one of the store's files failed: says which file, and what was done."""

    label = "write failed"

    def __init__(self, error: OSError, operation: str, path: str) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.operation, self.path = operation, path

    def __str__(self) -> str:
        return f"{self.operation} {self.path} failed: {self.strerror} (errno {self.errno})"


def atomic_write(path: str, data: Bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, directory fsync.

    On failure the temporary file is removed and ``FileWriteError`` names ``path``.
    """
    tmp = f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data, 0)
            fsync(fd)
        finally:
            os.close(fd)
        failpoints.reach("file.before-rename")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileWriteError(e, "writing", path) from e
    failpoints.reach("file.after-rename")
    try:
        fsync_dir(os.path.dirname(path) or ".")
    except OSError as e:
        raise FileWriteError(e, "syncing the directory of", path) from e


def remove_temporary(directory: str) -> None:
    """Delete ``*.tmp`` files that a crash or a failed write left in ``directory``."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))


def read_exact(fd: int, size: int, offset: int) -> bytes:
    """Read up to ``size`` bytes at ``offset`` (fewer only at end of file)."""
    chunks = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def try_flock(path: str) -> int | None:
    """Take an exclusive ``flock`` on ``path`` (created if missing) and write our pid.

    Returns the descriptor that holds the lock (closing it releases the lock),
    or None when another process holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def flock_holder(path: str) -> str:
    """`` (pid N)`` naming the process that wrote itself into a lock file, or ``""``."""
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid else ""
