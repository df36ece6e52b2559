"""Running a command on a store it cannot write: a real read-only condition, root included.

Two ways, each the kernel's own refusal (nothing in eventfold is told about it):

- ``permissions``: the store's files and directories lose their write bits
  (``chmod -R a-w``). Root ignores permission bits, so as root the command runs
  without the capabilities that let it (``CAP_DAC_OVERRIDE``,
  ``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``, dropped from its bounding set before
  ``exec``): it stays root, and is refused like any user (``EACCES``).
  Dropping to an unprivileged user instead would not do here: the interpreter
  may live where only root can read it (``/root/.pyenv``).
- ``mount``: the store is bind-mounted read-only in a mount namespace of the
  command's own (``unshare -m``): writes fail with ``EROFS``. Needs root and a
  kernel that allows it; ``mount_available()`` says.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from processes import HANG, eventfold

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
WAYS = ("permissions", "mount")


def make_read_only(path: Path) -> None:
    """Remove every write bit under ``path`` (``path`` included)."""
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)


def make_writable(path: Path) -> None:
    """Give the owner back its write bits (so that the test's directory can be removed)."""
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


def _without_override() -> None:  # pragma: no cover - runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@cache
def mount_available() -> bool:
    """Whether a read-only bind mount in a private mount namespace can be made here."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", _mounting(str(probe)) + "true"],
        capture_output=True,
        timeout=HANG,
        check=False,
    )
    return done.returncode == 0


def _mounting(path: str) -> str:
    quoted = "'" + path.replace("'", "'\\''") + "'"
    return f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} {quoted} && "


def run_read_only(
    way: str,
    directory: Path,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``eventfold ARGS`` in a subprocess that cannot write ``directory`` (``way``: one of
    ``WAYS``). With ``permissions`` the caller has made it read-only (``make_read_only``)."""
    return run_command_read_only(way, directory, eventfold(*args), cwd=cwd, env=env)


def run_command_read_only(
    way: str,
    directory: Path,
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``run_read_only`` for any command line (``[sys.executable, "-c", CODE]``)."""
    command = list(command)
    env = (dict(os.environ) if env is None else env) | {"COLUMNS": "200"}
    if way == "mount":
        script = _mounting(str(directory)) + 'exec "$@"'
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *command]
        preexec = None
    else:
        assert way == "permissions", way
        preexec = _without_override if os.geteuid() == 0 else None
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
        cwd=cwd,
        env=env,
        preexec_fn=preexec,
    )


def tree_digest(path: Path) -> dict[str, str]:
    """Every entry under ``path``: its kind, size and content digest (files)."""
    found: dict[str, str] = {}
    for p in sorted(path.rglob("*")):
        key = str(p.relative_to(path))
        if p.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found
