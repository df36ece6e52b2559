"""``--store`` paths that cannot be a store, runs that fail on their input, and directories
that hold something else: one line naming the path and the problem, exit 2, and nothing
created or left behind."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from uuid import UUID

import pytest

from eventfold.cli import main
from eventfold.infra.storepath import undone_on_failure
from readonly import (
    WAYS,
    make_read_only,
    make_writable,
    mount_available,
    run_read_only,
    tree_digest,
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"e{i}", "category": "rent", "value": i}) + "\n" for i in range(5)
        )
    )
    return path


def commands(store: Path, source: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Every command, given ``store`` as the store."""
    s = str(store)
    migrate = ["migrate", "--from", "file", "--to", "file"]
    return {
        "status": ["status", "--store", s],
        "snapshots": ["snapshots", "--store", s],
        "catchup": ["catchup", "--store", s],
        "rebuild": ["rebuild", "--store", s],
        "follow": ["follow", "--store", s],
        "verify": ["verify", "--source", str(source), "--store", s],
        "reconcile": ["reconcile", str(source), "--store", s],
        "check": ["check", "--store", s],
        "check --repair": ["check", "--repair", "--store", s],
        "ingest": ["ingest", str(source), "--store", s],
        "migrate from": [*migrate, "--store", s, "--to-store", str(tmp_path / "copy")],
        "migrate to": [*migrate, "--store", str(tmp_path / "none"), "--to-store", s],
    }


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("eventfold: ")
    return line


@pytest.mark.parametrize("name", list(commands(Path("s"), Path("e"), Path("t"))))
def test_a_file_as_store_is_named_as_such_by_every_command(
    name: str, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "notes.txt"
    store.write_text("not a store\n")
    assert main(commands(store, source, tmp_path)[name]) == 2
    line = one_error_line(capsys)
    assert line.endswith(f"{store}: a file, not a store directory"), line
    assert store.read_text() == "not a store\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "notes.txt"]


@pytest.mark.parametrize("name", ["status", "ingest", "verify", "check", "migrate to"])
def test_a_path_through_a_file_names_the_file(
    name: str, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    store = file / "store"
    assert main(commands(store, source, tmp_path)[name]) == 2
    line = one_error_line(capsys)
    assert line.endswith(f"{store}: cannot be a store directory ({file} is a file)"), line


@pytest.mark.parametrize("way", WAYS)
def test_a_store_that_cannot_be_created_is_said_so_by_ingest_and_status(
    way: str, source: Path, tmp_path: Path
) -> None:
    if way == "mount" and not mount_available():
        pytest.skip("no read-only bind mount here (needs root and unshare -m)")
    parent = tmp_path / "locked"
    parent.mkdir()
    store = parent / "deep" / "store"
    if way == "permissions":
        make_read_only(parent)
    expected = f"{store}: no such store, and none can be created there ({parent} is not writable)"
    for args in (["ingest", str(source)], ["status"]):
        done = run_read_only(way, parent, [*args, "--store", str(store)], cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.endswith(expected), line  # status no longer advises an ingest that fails
    make_writable(parent)
    assert list(parent.iterdir()) == []


def _bad_sources(tmp_path: Path) -> dict[str, Path]:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    empty = tmp_path / "no-sources"  # a directory with no source file in it
    empty.mkdir(exist_ok=True)
    (empty / "notes.txt").write_text("not a source\n")
    return {"missing": tmp_path / "missing.jsonl", "binary": binary, "directory": empty}


@pytest.mark.parametrize("problem", ["missing", "binary", "directory"])
@pytest.mark.parametrize("before", ["nothing", "empty directory", "other files", "a store"])
def test_an_ingest_that_fails_on_its_input_leaves_no_new_store(
    problem: str,
    before: str,
    source: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "stores" / "here"
    if before != "nothing":
        store.mkdir(parents=True)
    if before == "other files":
        (store / "notes.txt").write_text("mine\n")
    if before == "a store":
        assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    existed = _without_lock_contents(tree_digest(tmp_path / "stores")) if store.exists() else None
    capsys.readouterr()
    bad = _bad_sources(tmp_path)[problem]
    assert main(["ingest", str(bad), "--store", str(store)]) == 2
    line = one_error_line(capsys)
    assert str(bad) in line or bad.name in line
    if existed is None:
        assert not (tmp_path / "stores").exists()
    else:
        assert _without_lock_contents(tree_digest(tmp_path / "stores")) == existed
    assert main(["status", "--store", str(store), "--json"]) == (0 if before == "a store" else 2)


def _without_lock_contents(tree: dict[str, str]) -> dict[str, str]:
    """A writer rewrites its pid into a LOCK file it takes: the file, not its content."""
    return {k: "lock" if k.endswith("LOCK") else v for k, v in tree.items()}


def test_a_run_refused_after_the_store_was_opened_removes_the_new_store(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "new" / "store"
    args = ["ingest", str(source), "--store", str(store), "--rescan", "--partition", "1/2"]
    assert main(args) == 2
    assert "--rescan cannot be combined with --partition" in one_error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_an_unreadable_source_leaves_no_new_store(source: Path, tmp_path: Path) -> None:
    source.chmod(0)
    store = tmp_path / "new"
    done = run_read_only("permissions", source, ["ingest", str(source), "--store", str(store)])
    source.chmod(0o644)
    assert done.returncode == 2, done.stderr
    assert f"{source.name}: cannot read the source (Permission denied)" in done.stderr
    assert not store.exists()


def _library_sqlite_store(directory: Path) -> None:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(directory / "app.db")}
    app: Application[UUID] = Application(env=env)
    app.save(Aggregate())
    app.close()


def _other_file_store(directory: Path) -> None:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    class Accounts(Application[UUID]):
        pass

    env = {"PERSISTENCE_MODULE": "eventfold.infra.filestore", "FILESTORE_PATH": str(directory)}
    app = Accounts(env=env)
    app.save(Aggregate())
    app.close()


@pytest.mark.parametrize(
    ("holding", "named"),
    [("other files", "notes.txt"), ("sqlite", "app.db"), ("filestore", "accounts_events/")],
)
@pytest.mark.parametrize(
    "name", ["status", "snapshots", "catchup", "verify", "reconcile", "ingest"]
)
def test_a_directory_of_another_application_is_not_a_store_and_stays_as_it_was(
    holding: str,
    named: str,
    name: str,
    source: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "theirs"
    store.mkdir()
    if holding == "other files":
        (store / "notes.txt").write_text("mine\n")
    elif holding == "sqlite":
        _library_sqlite_store(store)
    else:
        _other_file_store(store)
    before = tree_digest(store)
    assert main(commands(store, source, tmp_path)[name]) == 2
    line = one_error_line(capsys)
    assert f"{store}: not an eventfold store (no eventfold_events/ in it; it holds " in line
    assert named in line, line
    assert tree_digest(store) == before


def test_status_advice_on_an_empty_directory_is_true(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "empty"
    store.mkdir()
    assert main(["status", "--store", str(store)]) == 2
    line = one_error_line(capsys)
    assert line.endswith(
        f"{store}: not an eventfold store (an empty directory; eventfold ingest creates one)"
    )
    assert list(store.iterdir()) == []
    assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    assert main(["status", "--store", str(store)]) == 0


def test_what_another_process_uses_is_never_removed(tmp_path: Path) -> None:
    store = tmp_path / "new"
    with pytest.raises(RuntimeError), undone_on_failure(str(store), "eventfold_events"):
        (store / "eventfold_events").mkdir(parents=True)
        lock = store / "eventfold_events" / "LOCK"
        lock.write_text("")
        other = os.open(lock, os.O_RDWR)  # another open file: flock treats it as another holder
        fcntl.flock(other, fcntl.LOCK_EX)
        raise RuntimeError("the run failed")
    assert lock.exists()
    os.close(other)
    with pytest.raises(RuntimeError), undone_on_failure(str(store), "eventfold_events"):
        raise RuntimeError("a store that existed is left as it was")
    assert lock.exists()


def test_demo_given_a_file_or_a_path_through_one_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert main(["demo", "--dir", str(file)]) == 2
    assert one_error_line(capsys).endswith(
        f"{file}: a file; the demo needs a new or empty directory"
    )
    assert main(["demo", "--dir", str(file / "demo")]) == 2
    line = one_error_line(capsys)
    assert line.endswith(f"{file / 'demo'}: cannot create the directory (Not a directory)")
    assert file.read_text() == "x"
