"""Faults injected from outside the process: random read, write and fsync failures
(``fiu-run``, Debian's fiu-utils) and a failure at the N-th fsync or rename (``strace -e
inject``). Whatever fails, a run never ends in success with less than the whole source,
and the store it leaves is sound and holds exactly the prefix it says it ingested.

These tests need ``fiu-run`` and ``strace``: skipped, with the reason, when they are
missing; ``.ci/run`` installs them and sets ``EVENTFOLD_REQUIRE_FAULT_TOOLS=1``, so that
in CI they fail rather than skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eventsourcing.application import AggregateNotFoundError

from eventfold.application.app import open_store
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.domain.model import Source
from ingesthelpers import reference_totals, store_totals
from processes import HANG, eventfold

RATES = SampleRates(duplicates=0.03, conflicts=0.01, invalid=0.01)
PROBE = """
import os, sys
name = "{call}".rsplit("/", 1)[-1]
fd = os.open(sys.argv[1], os.O_RDWR)
failed = 0
for _ in range(20000):
    try:
        if name == "read":
            os.lseek(fd, 0, 0); os.read(fd, 10)
        elif name == "pread":
            os.pread(fd, 10, 0)
        elif name == "write":
            os.lseek(fd, 0, 0); os.write(fd, os.pread(fd, 10, 0))
        elif name == "pwrite":
            os.pwrite(fd, os.pread(fd, 10, 0), 0)
        else:
            os.fsync(fd)
    except OSError:
        failed += 1
print("injected" if failed else "none", failed)
"""


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        reason = f"{tool} is not installed (apt-get install fiu-utils strace)"
        if os.environ.get("EVENTFOLD_REQUIRE_FAULT_TOOLS") == "1":
            pytest.fail(f"fault tools required but {reason}")
        pytest.skip(reason)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    with path.open("wb") as f:
        write_sample(f, 20_000, rates=RATES, seed=12)
    return path


def ingested(store: Path, source: Path) -> int:
    """The position the store says the source is ingested to; checks it holds exactly that."""
    if not (store / "eventfold_events").exists():
        return 0
    app = open_store(str(store))
    try:
        try:
            position: int = app.repository.get(Source.create_id(str(source.resolve()))).position
        except AggregateNotFoundError:
            position = 0
        prefix = store.parent / f"{store.name}-prefix.jsonl"
        prefix.write_bytes(source.read_bytes()[:position])
        assert store_totals(app) == reference_totals(prefix), f"{store}: at byte {position}"
        return int(position)
    finally:
        app.close()


def sound_after(store: Path, source: Path, done: subprocess.CompletedProcess[str]) -> None:
    """The rules after a run under faults, and a clean run to the end afterwards."""
    position = ingested(store, source)
    if done.returncode == 0:  # success means the whole source, never a part of it
        assert position == source.stat().st_size, done.stdout
    if (store / "eventfold_events").exists():
        checked = subprocess.run(
            eventfold("check", "--store", str(store), "--json"),
            capture_output=True,
            text=True,
            timeout=HANG,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    again = subprocess.run(
        eventfold("ingest", str(source), "--store", str(store)),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert again.returncode == 0, again.stderr
    assert ingested(store, source) == source.stat().st_size


STARTUP_FAILURE = re.compile(r"\w+Error: \[Errno \d+\]|Fatal Python error")


def fiu(failure: str, probability: float, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with ``failure`` (a fiu failure point) happening at random.

    One point at a time: fiu-run mixes several random points up.
    """
    enable = f"enable_random name={failure},probability={probability}"
    return subprocess.run(
        ["fiu-run", "-x", "-c", enable, *args],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "failures",
    [
        ["posix/io/rw/read", "posix/io/rw/pread"],
        ["posix/io/rw/write", "posix/io/rw/pwrite", "posix/io/sync/fsync"],
    ],
    ids=["reads", "writes"],
)
def test_random_io_failures_never_end_a_run_in_success_with_part_of_the_source(
    tmp_path: Path, source: Path, failures: list[str]
) -> None:
    need("fiu-run")
    scratch = tmp_path / "probe.bin"
    scratch.write_bytes(bytes(100))
    for failure in failures:  # the tool injects here (a probe makes 20,000 such calls)
        probe = fiu(failure, 0.01, sys.executable, "-c", PROBE.format(call=failure), str(scratch))
        # An injected failure may also land in the interpreter's own start-up reads, as
        # any OSError (IsADirectoryError, ...), or as a fatal error of the start-up itself.
        injected = probe.stdout.split()[:1] == ["injected"] or (
            probe.returncode != 0 and bool(STARTUP_FAILURE.search(probe.stderr))
        )
        assert injected, (failure, probe.stdout, probe.stderr)
    for run, probability in enumerate((0.0005, 0.002, 0.005, 0.0005, 0.002, 0.005)):
        store = tmp_path / f"store-{run}"
        failure = failures[run % len(failures)]
        done = fiu(
            failure, probability, *eventfold("ingest", str(source), "--store", str(store), "--json")
        )
        sound_after(store, source, done)


@pytest.mark.slow
@pytest.mark.parametrize("syscall", ["fsync", "rename"])
def test_a_failure_at_each_fsync_or_rename_is_one_line_and_leaves_a_sound_store(
    tmp_path: Path, source: Path, syscall: str
) -> None:
    need("strace")
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"".join(source.read_bytes().splitlines(keepends=True)[:3000]))
    failed = 0
    for when in range(1, 200):
        store = tmp_path / f"store-{when}"
        done = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-o",
                os.devnull,
                "-e",
                f"trace={syscall}",
                "-e",
                f"inject={syscall}:error=EIO:when={when}",
                *eventfold("ingest", str(small), "--store", str(store), "--batch", "500"),
            ],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
        if done.returncode == 0:
            break  # the run makes fewer calls than ``when``: each one has been tried
        failed += 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("eventfold: "), done.stderr
        assert "Input/output error" in lines[0] and "/" in lines[0]  # names the file
        sound_after(store, small, done)
    assert failed >= 3, f"only {failed} {syscall} calls were failed"
