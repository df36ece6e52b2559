"""Processes started together, and what they cost this machine and the PostgreSQL server.

``run_together`` starts ``eventfold`` commands at once, each a fresh process
whose ``--json`` goes to a file, and reaps them with ``os.wait4``: the wall
time of each (from the common start) and of all, and the CPU seconds of each
(its rusage, which includes the processes it waited for: an ingest's reader
process, a rebuild's workers). Around the run it reads:

- the CPU seconds of the PostgreSQL server's processes, when the server runs
  on this machine: the postmaster and its children (``/proc/PID/stat``:
  ``utime + stime + cutime + cstime``, so a backend that ends during the run
  still counts, in the postmaster's ``cutime`` once it is reaped);
- the WAL bytes the server wrote (``pg_stat_wal.wal_bytes``);
- the share of this machine's core time that was idle (``/proc/stat``).

The server's figures are the whole server's: another client using it at the
same time counts too.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class CommandFailed(RuntimeError):
    """A command exited non-zero; the message holds the command and its stderr's end."""


class ServerUnavailable(RuntimeError):
    """The PostgreSQL server of ``POSTGRES_*`` cannot be reached."""


@dataclass(frozen=True)
class Reading:
    """The machine and the server at one instant."""

    idle_ticks: int  # idle + iowait, all cores (/proc/stat)
    total_ticks: int
    server_cpu: float | None  # seconds; None when the server is not on this machine
    wal_bytes: int | None  # None when pg_stat_wal is missing (PostgreSQL < 14)


@dataclass
class Together:
    """What processes started together did, and what they cost."""

    commands: list[list[str]]
    outputs: list[dict[str, Any]] = field(default_factory=list)  # each one's --json
    walls: list[float] = field(default_factory=list)  # each one's end, from the start
    cpus: list[float] = field(default_factory=list)  # user + system CPU seconds of each
    server_cpu: float | None = None
    wal_bytes: int | None = None
    idle: float = 0.0  # share of the cores' time idle over the run, 0 to 1

    @property
    def wall(self) -> float:
        """Seconds from the start until the last process ended."""
        return max(self.walls)

    @property
    def cpu(self) -> float:
        """CPU seconds of all the eventfold processes."""
        return sum(self.cpus)


class Server:
    """The PostgreSQL server of ``POSTGRES_*``: its version, WAL and (when local) CPU."""

    def __init__(self, env: Mapping[str, str]) -> None:
        import psycopg

        from eventfold.infra.backends.postgres import connection_settings

        self.settings = connection_settings(env)
        try:
            self.conn = psycopg.connect(**self.settings, autocommit=True)
        except psycopg.Error as e:
            where = f"{self.settings['host']}:{self.settings['port']}"
            msg = f"cannot connect to PostgreSQL at {where}: {e}"
            raise ServerUnavailable(msg) from None
        self.version = str(self._one("SHOW server_version"))
        self.postmaster = _parent_postgres(int(self._one("SELECT pg_backend_pid()")))
        self.has_wal_stats = bool(
            self._one("SELECT count(*) FROM pg_catalog.pg_views WHERE viewname = 'pg_stat_wal'")
        )

    def _one(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        assert row is not None, sql
        return row[0]

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def wal_bytes(self) -> int | None:
        """Bytes of WAL the server has written (``pg_stat_wal``), or None."""
        if not self.has_wal_stats:
            return None
        return int(self._one("SELECT wal_bytes FROM pg_stat_wal"))

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the server's processes so far, or None when not on this machine."""
        if self.postmaster is None:
            return None
        ticks = _stat_ticks(self.postmaster)
        if ticks is None:
            return None
        for pid in _children(self.postmaster):
            ticks += _stat_ticks(pid) or 0
        return ticks / TICKS_PER_SECOND

    def close(self) -> None:
        self.conn.close()


def reading(server: Server | None) -> Reading:
    """The machine's core ticks and, with ``server``, its CPU seconds and WAL bytes."""
    wal = None if server is None else server.wal_bytes()
    idle, total = _core_ticks()
    cpu = None if server is None else server.cpu_seconds()
    return Reading(idle, total, cpu, wal)


def run_together(
    commands: list[list[str]], env: Mapping[str, str], server: Server | None = None
) -> Together:
    """Run ``eventfold COMMAND --json --quiet`` for every command at once, in fresh processes.

    ``CommandFailed`` when one exits non-zero (after all have ended). Each
    process's stdout is parsed as its ``--json`` document.
    """
    run = Together(commands)
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        before = reading(server)
        started = time.perf_counter()
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "eventfold", *command, "--json", "--quiet"],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            for command, out, err in zip(commands, outs, errs, strict=True)
        ]
        ended = _reap(children, started)
        after = reading(server)
        _failed(commands, children, errs)
        run.walls = [seconds for seconds, _ in ended]
        run.cpus = [usage.ru_utime + usage.ru_stime for _, usage in ended]
        run.outputs = [_json(out) for out in outs]
    _compare(run, before, after)
    return run


def _reap(
    children: list[subprocess.Popen[bytes]], started: float
) -> list[tuple[float, resource.struct_rusage]]:
    """Wait for every child (in the order they end): its end and its rusage."""
    pending = {child.pid: i for i, child in enumerate(children)}
    ended: dict[int, tuple[float, resource.struct_rusage]] = {}
    try:
        while pending:
            pid, status, usage = os.wait4(-1, 0)
            i = pending.pop(pid, None)
            if i is None:
                continue  # not one of these (none is expected)
            ended[i] = (time.perf_counter() - started, usage)
            children[i].returncode = os.waitstatus_to_exitcode(status)
    finally:
        for pid in pending:  # interrupted: end what this started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return [ended[i] for i in range(len(children))]


def _failed(
    commands: list[list[str]],
    children: list[subprocess.Popen[bytes]],
    errs: Sequence[IO[bytes]],
) -> None:
    for command, child, err in zip(commands, children, errs, strict=True):
        if child.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip()[-2000:]
            msg = f"eventfold {' '.join(command)} exited {child.returncode}: {tail}"
            raise CommandFailed(msg)


def _json(out: IO[bytes]) -> dict[str, Any]:
    out.seek(0)
    return dict(json.loads(out.read()))


def _compare(run: Together, before: Reading, after: Reading) -> None:
    total = after.total_ticks - before.total_ticks
    run.idle = (after.idle_ticks - before.idle_ticks) / total if total else 0.0
    if before.server_cpu is not None and after.server_cpu is not None:
        run.server_cpu = after.server_cpu - before.server_cpu
    if before.wal_bytes is not None and after.wal_bytes is not None:
        run.wal_bytes = after.wal_bytes - before.wal_bytes


def _core_ticks() -> tuple[int, int]:
    """Idle (idle + iowait) and total ticks of all cores (``/proc/stat``'s ``cpu`` line)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]  # user .. steal
    return fields[3] + fields[4], sum(fields)


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (field 3 first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _stat_ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime of a process, in clock ticks."""
    fields = _stat(pid)
    return None if fields is None else sum(int(x) for x in fields[11:15])


def _children(parent: int) -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and int(fields[1]) == parent:
                yield int(name)


def _parent_postgres(backend: int) -> int | None:
    """The postmaster of a backend process, when it runs on this machine."""
    fields = _stat(backend)
    if fields is None or not _is_postgres(backend):
        return None
    parent = int(fields[1])
    return parent if _is_postgres(parent) else None


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except OSError:
        return False
