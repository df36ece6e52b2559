"""Every persisted structure whose answer can change a total is verified before it is trusted.

A byte flipped in any file of a store never gives a wrong total with exit 0:
what is derived from the log (store index, dedup index, projection snapshots)
is verified on use and rebuilt from the log with a warning; damage to the log
itself stops the command with exit 3, naming the file and byte offset. ``check``
finds each of them and names the file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.proving.reference import expected_from_source
from eventfold.cli import main
from eventfold.infra.filestore.runs import ENTRY_SIZE, HEADER_SIZE
from eventfold.projections.base import state_checksum
from storehelpers import commit_offsets, flip_byte, segment

RATES = SampleRates(duplicates=0.05, conflicts=0.02, invalid=0.02)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    out = captured.out.strip()
    return code, json.loads(out) if out else None, captured.err


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A store of 3,000 lines with several index runs, a dedup index and snapshots."""
    monkeypatch.setenv("FILESTORE_INDEX_INTERVAL", "700")
    source = tmp_path / "events.jsonl"
    with source.open("wb") as f:
        write_sample(f, 3000, rates=RATES, seed=4)
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    assert run(capsys, "rebuild", "--store", str(store), "--snapshot-every", "500")[0] == 0
    return store


def expected_checksum(source: Path) -> str:
    return state_checksum(expected_from_source(str(source)).canonical())


def one(pattern: str) -> Callable[[Path], tuple[Path, int]]:
    """The first file matching ``pattern`` in the store, and a byte in the middle of it."""

    def pick(store: Path) -> tuple[Path, int]:
        path = sorted(store.glob(pattern))[0]
        size = path.stat().st_size
        if path.name.startswith("run-"):
            return path, HEADER_SIZE + ((size - HEADER_SIZE) // ENTRY_SIZE // 3) * ENTRY_SIZE + 5
        if path.name == "offsets":
            return path, (size // 8 // 2) * 8 + 2  # a middle event's position
        return path, size // 2

    return pick


DERIVED = {
    "store index run": one("eventfold_events/index/run-*.idx"),
    "store index offsets": one("eventfold_events/index/offsets"),
    "store index checkpoint": one("eventfold_events/index/CHECKPOINT"),
    "dedup run": one("dedup/run-*.idx"),
    "dedup filter": one("dedup/bloom-*"),
    "dedup checkpoint": one("dedup/CHECKPOINT"),
    "projection snapshot": one("projections/category_totals/gen-*/snap-*.json"),
}


@pytest.mark.parametrize("kind", DERIVED)
def test_a_flipped_byte_in_a_derived_structure_is_found_and_rebuilt_never_trusted(
    store: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = store.parent / "events.jsonl"
    path, offset = DERIVED[kind](store)
    flip_byte(path, offset)

    code, doc, _ = run(capsys, "check", "--store", str(store))
    assert code == 3 and doc["status"] == "damaged"
    named = [p["file"] for log in doc["logs"] for p in log["problems"]]
    named += [log["index"] for log in doc["logs"]]
    named += [p["file"] for d in doc["derived"] for p in d["problems"]]
    assert any(str(path) in text for text in named), named

    # A renamed copy of the source: every id is already recorded, nothing counts twice.
    copy = store.parent / "renamed.jsonl"
    shutil.copy(source, copy)
    code, ingested, _ = run(capsys, "ingest", str(copy), "--store", str(store))
    assert code == 0 and ingested["ingested"] == 0
    code, verified, _ = run(capsys, "verify", "--store", str(store), "--source", str(source))
    assert (code, verified["status"]) == (0, "match")
    assert verified["actual_checksum"] == expected_checksum(source)
    assert verified["duplicated_events"] == 0
    code, rebuilt, _ = run(capsys, "rebuild", "--store", str(store))
    assert code == 0 and rebuilt["checksum"] == expected_checksum(source)

    code, doc, _ = run(capsys, "check", "--repair", "--store", str(store))
    assert code == 0, doc
    assert run(capsys, "check", "--store", str(store))[0] == 0


def test_a_flipped_byte_in_the_log_is_exit_3_naming_file_and_offset(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = segment(store, log="eventfold_events")
    commit = commit_offsets(seg)[1]
    flip_byte(seg, commit + 300)
    code, doc, _ = run(capsys, "check", "--store", str(store))
    assert code == 3
    (problem,) = [p for log in doc["logs"] for p in log["problems"]]
    assert problem["file"] == str(seg) and problem["offset"] >= commit
    for command in (["rebuild"], ["verify", "--source", str(store.parent / "events.jsonl")]):
        code, _, err = run(capsys, *command, "--store", str(store))
        assert code == 3, command
        assert err.startswith(f"eventfold: damaged store: {seg}: byte offset ")
        assert err.count("\n") == 1


def test_verify_names_an_id_recorded_twice_as_a_duplicate_in_the_store(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventfold.application.app import open_store
    from eventfold.domain.model import Category

    source = store.parent / "events.jsonl"
    first = json.loads(source.read_bytes().splitlines()[0])
    app = open_store(str(store))
    try:  # what a broken dedup index once did: the same id recorded a second time
        category: Category = app.repository.get(Category.create_id(first["category"]))
        category.record(
            first["id"], first["category"], category.total * 0 + 1, None, str(source), 1, 0
        )
        app.save(category)
    finally:
        app.close()
    code, doc, _ = run(capsys, "verify", "--store", str(store), "--source", str(source))
    assert code == 1
    assert doc["duplicated_events"] == 1 and doc["duplicated"][0]["id"] == first["id"]
    assert (doc["missing_events"], doc["extra_events"]) == (0, 0)
    (difference,) = doc["differences"]
    assert difference["category"] == first["category"] and difference["delta"]["count"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("point", ["file.before-rename", "file.after-rename", "log.after-write"])
def test_what_a_crash_at_any_rename_or_write_leaves_is_never_called_damage(
    tmp_path: Path, point: str
) -> None:
    """Kill an ingest at the 1st, 2nd, ... pass through ``point`` until a run passes it no
    more (so every such point of the run is tried); after each kill ``check`` says the
    store is sound, and ingest resumes to the reference totals."""
    import subprocess

    from processes import HANG, armed, eventfold, killed_at

    source = tmp_path / "events.jsonl"
    with source.open("wb") as f:
        write_sample(f, 1500, rates=RATES, seed=8)
    env = armed(point, 1) | {"FILESTORE_INDEX_INTERVAL": "400"}
    plain = {k: v for k, v in env.items() if k != "EVENTFOLD_FAILPOINT"}
    kills = 0
    for count in range(1, 200):
        store = tmp_path / f"store-{count}"
        done = subprocess.run(
            eventfold("ingest", str(source), "--store", str(store), "--batch", "100"),
            env=env | {"EVENTFOLD_FAILPOINT": f"{point}@{count}"},
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
        if done.returncode == 0:
            break  # the run passes the point fewer than ``count`` times: all were tried
        assert killed_at(done, point, count), done.stderr
        kills += 1
        checked = subprocess.run(
            eventfold("check", "--store", str(store), "--json"),
            env=plain,
            capture_output=True,
            text=True,
            timeout=HANG,
        )
        assert checked.returncode == 0, f"after a kill at {point}@{count}: {checked.stdout}"
        resumed = subprocess.run(
            eventfold("ingest", str(source), "--store", str(store)),
            env=plain,
            capture_output=True,
            text=True,
            timeout=HANG,
        )
        assert resumed.returncode == 0, resumed.stderr
        code = subprocess.run(
            eventfold("verify", "--store", str(store), "--source", str(source)),
            env=plain,
            capture_output=True,
            timeout=HANG,
        ).returncode
        assert code == 0, f"after a kill at {point}@{count}"
    assert kills >= 3  # the run passed the point several times, and each was tried
