"""A store that cannot be written here (read-only mount, no write permission, root included):
reading commands work and change nothing; commands that write refuse in one line, exit 2.

Each command runs in a subprocess the kernel refuses writes to (``readonly.py``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfold.cli import main
from readonly import (
    WAYS,
    make_read_only,
    make_writable,
    mount_available,
    run_command_read_only,
    run_read_only,
    tree_digest,
)


def _lines(path: Path, prefix: str, count: int, categories: tuple[str, ...]) -> None:
    with path.open("w") as f:
        for i in range(count):
            f.write(
                json.dumps(
                    {"id": f"{prefix}{i}", "category": categories[i % len(categories)], "value": i}
                )
                + "\n"
            )


@pytest.fixture(params=WAYS)
def way(request: pytest.FixtureRequest) -> str:
    if request.param == "mount" and not mount_available():
        pytest.skip("no read-only bind mount here (needs root and unshare -m)")
    return str(request.param)


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """``(first, everything)``: the store holds both; its snapshot only ``first``."""
    first, later, everything = (
        tmp_path / "first.jsonl",
        tmp_path / "later.jsonl",
        tmp_path / "all.jsonl",
    )
    _lines(first, "f", 300, ("rent", "food", "fun"))
    _lines(later, "l", 40, ("food", "travel"))
    everything.write_bytes(first.read_bytes() + later.read_bytes())
    return first, everything


@pytest.fixture
def store(tmp_path: Path, sources: tuple[Path, Path], way: str) -> Iterator[Path]:
    """A store whose snapshot lags (a catch-up has 40 events to apply), made read-only."""
    first, everything = sources
    store = tmp_path / "store"
    assert main(["ingest", str(first), "--store", str(store), "--quiet"]) == 0
    assert main(["catchup", "--store", str(store), "--quiet"]) == 0
    assert main(["ingest", str(everything), "--store", str(store), "--quiet"]) == 0
    if way == "permissions":
        make_read_only(store)
    yield store
    make_writable(store)


READING = {
    "status": ["status", "--json"],
    "snapshots": ["snapshots", "--json"],
    "verify": ["verify", "--source", "{all}", "--json"],
    "verify-checksum": ["verify", "--expected-checksum", "{checksum}"],
    "reconcile-dry-run": ["reconcile", "{all}", "--dry-run", "--json"],
    "catchup": ["catchup", "--json"],
    "check": ["check", "--json"],
    "sources": ["sources", "--json"],
    "quarantine": ["quarantine", "--json"],
}


@pytest.mark.parametrize("name", READING)
def test_reading_commands_work_and_change_nothing(
    name: str,
    way: str,
    store: Path,
    sources: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, everything = sources
    before = tree_digest(store)
    checksum = _writable_checksum(tmp_path, everything, capsys)
    args = [a.format(all=everything, checksum=checksum) for a in READING[name]]
    done = run_read_only(way, store, [*args, "--store", str(store)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no error, no warning (nothing "rebuilt", nothing "damaged")
    if "--json" in args:
        doc = json.loads(done.stdout)
        if name == "status":
            assert doc["events"] == doc["last_notification_id"] > 340
            assert (doc["sources"]["files"], doc["sources"]["complete"]) == (2, 2)
            [projection] = doc["projections"]
            assert projection["lag"] > 0  # the snapshot of the first file, as it is
        elif name == "check":
            assert doc["status"] == "ok"
            assert all(log["index"] in ("ok", "absent") for log in doc["logs"])
        elif name in ("verify", "reconcile-dry-run"):
            assert doc["status"] == "match"  # computed over all 340 events, written nowhere
            assert doc.get("actual_checksum", checksum) == checksum
        elif name == "catchup":
            assert doc["checksum"] == checksum
            assert doc["snapshot_written"] is None
            assert doc["snapshot_not_written_because"] == "the store is read-only"
            assert doc["rebuilt_because"] is None  # a snapshot was used: nothing rebuilt
        elif name == "snapshots":
            assert [s["valid"] for s in doc["snapshots"]] == [True]
        elif name == "sources":
            assert [s["state"] for s in doc["sources"]] == ["complete", "complete"]
            assert all(s["digest_checked"] for s in doc["sources"])
        elif name == "quarantine":
            assert doc == {"lines": [], "count": 0}
    else:
        assert f"MATCH {checksum}" in done.stdout
    assert tree_digest(store) == before


def _writable_checksum(tmp_path: Path, everything: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The checksum of ``everything`` in a writable store of its own (the expected one)."""
    other = tmp_path / "writable"
    assert main(["ingest", str(everything), "--store", str(other), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catchup", "--store", str(other), "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["checksum"])


WRITING = {
    "ingest": ["ingest", "{all}"],
    "rebuild": ["rebuild"],
    "follow": ["follow"],
    "reconcile": ["reconcile", "{all}"],
    "check --repair": ["check", "--repair"],
}


@pytest.mark.parametrize("name", WRITING)
def test_writing_commands_refuse_in_one_line(
    name: str, way: str, store: Path, sources: tuple[Path, Path], tmp_path: Path
) -> None:
    _, everything = sources
    before = tree_digest(store)
    args = [a.format(all=everything) for a in WRITING[name]]
    done = run_read_only(way, store, [*args, "--store", str(store)], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"eventfold: store is read-only: {store} ({name} writes to it)\n"
    assert tree_digest(store) == before


def test_migrate_into_a_read_only_store_refuses(way: str, store: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    if way == "permissions":
        make_read_only(target)
    args = ["migrate", "--from", "file", "--to", "file", "--store", str(store)]
    done = run_read_only(way, target, [*args, "--to-store", str(target)], cwd=tmp_path)
    make_writable(target)
    assert done.returncode == 2
    assert done.stderr == f"eventfold: store is read-only: {target} (migrate writes to it)\n"
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("way", ["permissions"], indirect=True)  # a mount reads every file
def test_check_calls_an_unreadable_file_unreadable_not_damaged(
    store: Path, way: str, tmp_path: Path
) -> None:
    offsets = store / "eventfold_events" / "index" / "offsets"
    offsets.chmod(0)
    done = run_read_only(way, store, ["check", "--store", str(store)], cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.endswith(
        f": {offsets}: cannot be read here (permission denied); check reads every file"
    )
    assert "DAMAGED" not in done.stdout


LIBRARY_USE = """
import sys
from eventsourcing.persistence import OperationalError
from eventfold.infra.errors import StoreReadOnlyError
from eventfold.infra.filestore import FileStoreFactory
from storehelpers import new_events, recorder_of

factory = FileStoreFactory({"FILESTORE_PATH": sys.argv[1]})
recorder = recorder_of(factory)
print(len(recorder.select_notifications(None, 1000)))
try:
    recorder.insert_events(new_events(1))
except StoreReadOnlyError as e:
    assert isinstance(e, OperationalError)  # the library's error for a store that cannot act
    print(e)
factory.close()
"""


def test_the_persistence_module_reads_a_read_only_store_and_refuses_writes(
    way: str, tmp_path: Path
) -> None:
    from storehelpers import factory_for, new_events, recorder_of

    store = tmp_path / "library"
    factory = factory_for(store)
    recorder_of(factory).insert_events(new_events(3))
    factory.close()
    if way == "permissions":
        make_read_only(store)
    tests = str(Path(__file__).parent)
    command = [sys.executable, "-c", LIBRARY_USE, str(store)]
    env = dict(os.environ) | {"PYTHONPATH": tests}
    done = run_command_read_only(way, store, command, env=env)
    make_writable(store)
    assert done.returncode == 0, done.stderr
    count, message = done.stdout.splitlines()
    assert count == "3"
    assert message.startswith(f"{store / 'stored_events'} (writing needs its LOCK file: ")
