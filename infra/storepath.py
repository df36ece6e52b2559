"""The directory a store is given as: whether it can be one, be written, be created.

Each check returns why not, as one line naming the path, or None. None of them
changes anything. ``undone_on_failure`` removes what a failed run created.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator

from eventfold.infra import fileio
from eventfold.infra.filestore.scan import SEGMENT_SUFFIX

SHOWN_ENTRIES = 3  # entries of a foreign directory named in a message


def path_problem(store: str) -> str | None:
    """Why ``store`` can never be a store directory (a file, or a path through a file)."""
    if os.path.isdir(store):
        return None
    if os.path.islink(store) and not os.path.exists(store):
        return f"{store}: a symbolic link to nothing ({os.readlink(store)})"
    if os.path.lexists(store):
        return f"{store}: a file, not a store directory"
    ancestor = _existing_ancestor(store)
    if not os.path.isdir(ancestor):
        return f"{store}: cannot be a store directory ({ancestor} is a file)"
    return None


def creation_problem(store: str) -> str | None:
    """Why the missing directory ``store`` cannot be created here, or None."""
    if os.path.lexists(store):
        return None
    ancestor = _existing_ancestor(store)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{store}: no such store, and none can be created there ({ancestor} is not writable)"
    return None


def create(store: str) -> str | None:
    """Create the directory ``store`` (and its parents) if missing; why it failed, or None."""
    try:
        os.makedirs(store, exist_ok=True)
    except OSError as e:
        return f"{store}: cannot create the store directory ({e.strerror or e})"
    return None


def unwritable_part(store: str) -> str | None:
    """The first part of the existing store ``store`` that cannot be written here (a
    read-only file system, no write permission): the directory itself, one of its
    directories or their lock files; None when it can be written, or does not exist."""
    if not os.path.isdir(store):
        return None
    if not os.access(store, os.W_OK | os.X_OK):
        return store
    for entry in sorted(os.scandir(store), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if not os.access(entry.path, os.W_OK | os.X_OK):
            return entry.path
        lock = os.path.join(entry.path, "LOCK")
        if os.path.exists(lock) and not os.access(lock, os.W_OK):
            return lock
    return None


def unreadable_part(store: str) -> str | None:
    """The first file or directory in ``store`` that cannot be read here, or None."""
    for root, dirs, files in os.walk(store):
        dirs.sort()
        for name in dirs:
            if not os.access(os.path.join(root, name), os.R_OK | os.X_OK):
                return os.path.join(root, name)
        for name in sorted(files):
            if not os.access(os.path.join(root, name), os.R_OK):
                return os.path.join(root, name)
    return None


def contents(store: str) -> str:
    """A few of the entries of directory ``store``, for a message: ``a/, b.txt, ...``."""
    names = sorted(
        f"{e.name}/" if e.is_dir(follow_symlinks=False) else e.name for e in os.scandir(store)
    )
    shown = ", ".join(names[:SHOWN_ENTRIES])
    more = len(names) - SHOWN_ENTRIES
    return shown + (f" and {more:,} more" if more > 0 else "")


@contextlib.contextmanager
def undone_on_failure(store: str, marker: str) -> Iterator[None]:
    """Run something that may create a store in ``store``; if it raises before the store's
    log (``marker``, the log that makes a directory a store) holds a commit, remove what
    it created: the directories it made, or the entries it added to a directory that
    held no store.

    A directory that already held a store is left as it is, and so is a new store that
    holds commits (what was committed stands: the next run resumes there). Nothing is
    removed while another process holds one of the new lock files (it uses the store).
    """
    path = os.path.abspath(store)
    try:
        if os.path.isdir(os.path.join(path, marker)):
            new: tuple[str | None, set[str]] | None = None
        else:
            created = None if os.path.lexists(path) else _topmost_missing(path)
            exists = created is None and os.path.isdir(path)
            new = created, set(os.listdir(path)) if exists else set()
    except OSError:  # cannot tell what is new: then nothing is removed
        new = None
    try:
        yield
    except Exception:
        if new is not None:
            with contextlib.suppress(OSError):  # best effort: the run's own error is the news
                _undo(path, marker, *new)
        raise


def _undo(path: str, marker: str, created: str | None, before: set[str]) -> None:
    if _holds_commits(os.path.join(path, marker)):
        return
    if created is not None:
        _remove_unused([created])
    elif os.path.isdir(path):
        added = sorted(set(os.listdir(path)) - before)
        _remove_unused([os.path.join(path, name) for name in added])


def _remove_unused(paths: list[str]) -> None:
    """Remove ``paths`` unless another process holds a lock file in them."""
    held: list[int] = []
    try:
        for lock in _lock_files(paths):
            try:
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # in use by another process: leave it
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        with contextlib.suppress(OSError):
            fileio.fsync_dir(os.path.dirname(paths[0]) if paths else ".")
    finally:
        for fd in held:
            os.close(fd)


def _holds_commits(log_dir: str) -> bool:
    """Whether the log in ``log_dir`` has a segment with anything in it."""
    try:
        entries = list(os.scandir(log_dir))
    except OSError:
        return False
    return any(e.name.endswith(SEGMENT_SUFFIX) and e.stat().st_size > 0 for e in entries)


def _lock_files(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            for root, _, names in os.walk(path):
                if "LOCK" in names:
                    yield os.path.join(root, "LOCK")


def _existing_ancestor(path: str) -> str:
    """The nearest ancestor of ``path`` that exists (the path itself if it does)."""
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _topmost_missing(path: str) -> str:
    """The first directory that creating ``path`` (and its parents) would make."""
    current = path
    while not os.path.lexists(os.path.dirname(current)):
        current = os.path.dirname(current)
    return current
