"""Helpers shared by the benchmarks: fresh processes, generated sources, store sizes, the machine.

Every figure a benchmark reports comes from a fresh process (start-up counts
where the wall time is the command's, as a user would see it); ``timed`` runs
a module or a script in one and gives its wall time, its peak RSS and what it
printed.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any

RUN_AND_MEASURE = (
    "import os, runpy, sys\n"
    "kind, target, *sys.argv[1:] = sys.argv[1:]\n"
    "sys.argv[0] = target\n"
    "try:\n"
    "    if kind == '-m':\n"
    "        runpy.run_module(target, run_name='__main__', alter_sys=True)\n"
    "    else:\n"
    "        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))\n"
    "        runpy.run_path(target, run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    if e.code:\n"
    "        raise\n"
    "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
)


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM``, which starts afresh at ``exec``.

    Not ``ru_maxrss``: Linux carries it across ``exec`` from the process that
    forked, so a child would report at least its parent's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    msg = "no VmHWM in /proc/self/status"
    raise RuntimeError(msg)


def timed(kind: str, target: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a fresh process.

    ``kind`` is ``"-m"`` (``target`` a module, as ``python -m``) or ``"path"``
    (a script, its directory first on ``sys.path`` as ``python SCRIPT`` does).
    The process's own peak RSS (as ``peak_rss_mb``), not its children's.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_MEASURE, kind, target, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    rss = float(done.stderr.strip().splitlines()[-1]) / 1024
    return elapsed, rss, done.stdout


def cli(*args: str) -> tuple[float, float, str]:
    """``eventfold ARGS`` in a fresh process: wall seconds, peak RSS (MB), stdout."""
    return timed("-m", "eventfold", *args)


def write_source(path: str, count: int, **options: Any) -> str:
    """A ``write_sample`` source of ``count`` lines at ``path`` (options as ``write_sample``'s)."""
    # Imported here: a peer that imports this module for ``timed`` does not load eventfold.
    from eventfold.application.demo.sample import write_sample

    with open(path, "wb", buffering=1 << 20) as f:
        write_sample(f, count, **options)
    return path


def copy_prefix(source: str, path: str, lines: int) -> str:
    """The first ``lines`` lines of ``source`` at ``path``.

    ``write_sample`` writes line by line from one seed, so the first n lines
    of a longer sample are the sample of n lines: one generated source serves
    every smaller size.
    """
    with open(source, "rb", buffering=1 << 20) as f, open(path, "wb", buffering=1 << 20) as out:
        out.writelines(islice(f, lines))
    return path


def gzip1_bytes(path: str) -> int:
    """The size of ``path`` compressed as ``gzip -1`` would (zlib level 1, gzip framing)."""
    counter = _Counter()
    with open(path, "rb") as f, gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=1) as z:
        while block := f.read(1 << 20):
            z.write(block)
    return counter.size


class _Counter:
    """A write-only file that only counts the bytes written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def store_parts(store: str) -> dict[str, int]:
    """Bytes of every file under ``store``, by part, largest first.

    A part is a directory relative to the store (``dedup/``,
    ``eventfold_events/index/``); a directory's log segments (``*.seg``) are a
    part of their own. Sizes are the files' lengths (``st_size``): what the
    store holds, independent of the file system's block size.
    """
    parts: dict[str, int] = {}
    for directory, _, files in os.walk(store):
        relative = os.path.relpath(directory, store)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in files:
            size = os.stat(os.path.join(directory, name)).st_size
            part = f"{prefix}*.seg" if name.endswith(".seg") else (prefix or "(top level)")
            parts[part] = parts.get(part, 0) + size
    return dict(sorted(parts.items(), key=lambda item: -item[1]))


@dataclass(frozen=True)
class Machine:
    """What the figures were measured on."""

    cores: int
    memory_gib: float
    python: str
    eventsourcing: str
    commit: str
    load: str
    date: str

    def describe(self) -> str:
        return (
            f"{self.date}; nproc {self.cores}, {self.memory_gib:.1f} GiB, Python {self.python}, "
            f"eventsourcing {self.eventsourcing}, eventfold at {self.commit}; "
            f"load average {self.load}"
        )


def machine() -> Machine:
    """The machine, the interpreter, the library's version and the code's commit."""
    memory = 0.0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / (1024 * 1024)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        ["git", "-C", root, "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Machine(
        cores=len(os.sched_getaffinity(0)),
        memory_gib=memory,
        python=platform.python_version(),
        eventsourcing=importlib.metadata.version("eventsourcing"),
        commit=done.stdout.strip() or "unknown",
        load=" ".join(f"{value:.2f}" for value in os.getloadavg()),
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
    )
