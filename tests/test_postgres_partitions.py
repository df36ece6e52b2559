"""Partitions on PostgreSQL: each partition parses its share into its own tables, and the
join makes one log of them in the files' order.

Every case compares with an independent reference (``application/proving/reference.py``
over the files in order) and with one ingest of the same files into a file store. These
tests need a PostgreSQL server (the ``postgres`` fixture).
"""

from __future__ import annotations

import gzip
import json
import random
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_app
from eventfold.application.proving.reference import expected_from_sources
from eventfold.cli import main
from ingesthelpers import store_totals
from processes import HANG, armed, assert_killed_at, started


def cli(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, dict[str, Any]]:
    """``eventfold COMMAND --json`` in this process: its exit code and document."""
    code = main([*shlex.split(command), "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def write_files(directory: Path, files: int, lines: int, seed: int) -> list[Path]:
    """``files`` sources over one pool of ids: an id comes again in the same file and in
    others, mostly with the same content (a duplicate), sometimes not (a conflict); a few
    lines are invalid; every other file is gzip-compressed."""
    rng = random.Random(seed)
    pool = lines * files // 2
    paths = []
    for f in range(files):
        rows = []
        for _ in range(lines):
            n = rng.randrange(pool)
            if rng.random() < 0.02:
                rows.append('{"id": "broken", "value": }')
                continue
            value = f"{n % 89}.{n % 7}" if rng.random() < 0.9 else f"{rng.randrange(500)}.25"
            category = f"c{n % 13}" if rng.random() < 0.97 else f"other{rng.randrange(3)}"
            when = f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"
            rows.append(
                json.dumps({"id": f"e{n}", "category": category, "occurred_at": when})[:-1]
                + f', "value": {value}}}'
            )
        text = ("\n".join(rows) + "\n").encode()
        path = directory / (f"part-{f:02d}.jsonl" + (".gz" if f % 2 else ""))
        path.write_bytes(gzip.compress(text) if f % 2 else text)
        paths.append(path)
    return paths


def start(paths: list[Path], store: Path, k: int, n: int, env: dict[str, str] | None = None) -> Any:
    names = " ".join(str(p) for p in paths)
    return started(f"ingest {names} --partition {k}/{n} --store {store} --batch 40 --json", env)


def finished(process: Any) -> dict[str, Any]:
    out, err = process.communicate(timeout=HANG)
    assert process.returncode == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def killed(process: Any, point: str, count: int) -> None:
    out, err = process.communicate(timeout=HANG)
    assert_killed_at(
        subprocess.CompletedProcess(process.args, process.returncode, out, err), point, count
    )


def one_store_of(
    paths: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """The same files ingested once into a file store: its checksums and source counts."""
    files = tmp_path / "one-file-store"
    names = " ".join(str(p) for p in paths)
    assert main(shlex.split(f"ingest {names} --store {files} --backend file --quiet")) == 0
    return figures(capsys, f"--store {files} --backend file")


def figures(capsys: pytest.CaptureFixture[str], where: str) -> dict[str, Any]:
    _, totals = cli(capsys, f"rebuild {where}")
    _, hourly = cli(capsys, f"rebuild --projection hourly_totals {where}")
    _, sources = cli(capsys, f"sources {where}")
    keys = ("read", "ingested", "duplicates", "conflicts", "quarantined")
    return {
        "checksum": totals["checksum"],
        "hourly": hourly["checksum"],
        "totals": {k: sources["totals"][k] for k in keys},
        "files": sorted(
            (s["path"], tuple(s[k] for k in keys if k in s)) for s in sources["sources"]
        ),
    }


def notifications(app: Any) -> Iterator[Any]:
    start = 0
    while page := app.recorder.select_notifications(start, 1000, inclusive_of_start=False):
        yield from page
        start = page[-1].id


def reference(paths: list[Path]) -> dict[str, tuple[int, Any]]:
    expected = expected_from_sources([str(p) for p in paths])
    return {name: (count, total) for name, (count, total) in expected.totals.items()}


@pytest.mark.parametrize("count", [2, 4])
def test_partitions_killed_mid_ingest_and_mid_join_give_one_ingest_s_store(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], count: int
) -> None:
    """N partitions in parallel over files that repeat ids across files (and so across
    partitions); partition 1 is killed after a commit of its first file (2) or inside one
    (4), then, rerun, killed inside its first join's transaction, then rerun to the end."""
    paths = write_files(tmp_path, files=2 * count, lines=300, seed=count)
    machines = [tmp_path / f"machine-{k}" for k in range(1, count + 1)]
    point = "ingest.after-commit" if count == 2 else "partition.inside-commit"
    first = start(paths, machines[0], 1, count, armed(point, 3))  # all N started together
    others = [start(paths, machines[k - 1], k, count) for k in range(2, count + 1)]
    killed(first, point, 3)
    for document in map(finished, others):
        assert document["partition"] in {f"{k}/{count}" for k in range(2, count + 1)}
        assert document["join"]["waiting_on"] == f"1/{count}"  # its first file is not read
    _, status = cli(capsys, f"status --store {machines[1]}")
    assert status["partitions"]["waiting_on"] == f"1/{count}"
    assert status["partitions"]["waiting_because"] == "not read"  # partition 1 is not running
    assert status["partitions"]["events_waiting"] > 0
    sources = " ".join(f"--source {p}" for p in paths)
    code = main(shlex.split(f"verify {sources} --store {machines[1]} --json"))
    warning = capsys.readouterr().err
    assert code == 1 and "wait in partition tables" in warning, warning  # not yet in the log
    killed(
        start(paths, machines[0], 1, count, armed("join.before-commit", 1)), "join.before-commit", 1
    )
    last = finished(start(paths, machines[0], 1, count))
    assert last["join"]["waiting_file"] is None
    _, status = cli(capsys, f"status --store {machines[0]}")
    assert status["partitions"] == {
        "count": count,
        "files_planned": 2 * count,
        "files_joined": 2 * count,
        "events_waiting": 0,
        "waiting_file": None,
        "waiting_on": None,
        "waiting_because": None,
    }
    app = open_app(str(machines[0]))
    try:
        assert store_totals(app) == reference(paths)  # every id once, the first occurrence
        held = sum(1 for _ in notifications(app))  # the join killed midway took ids it left
        assert status["events"] == held < status["last_notification_id"]
    finally:
        app.close()
    assert figures(capsys, f"--store {machines[0]}") == one_store_of(paths, tmp_path, capsys)
    for projection in ("category_totals", "hourly_totals"):
        code, verified = cli(
            capsys, f"verify --projection {projection} {sources} --store {machines[1]}"
        )
        assert (code, verified["status"]) == (0, "match"), verified


def test_the_earliest_occurrence_wins_when_the_later_one_commits_first(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    early, late = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    early.write_text('{"id": "x", "category": "c", "value": 1}\n' * 2)
    late.write_text(
        '{"id": "x", "category": "c", "value": 2}\n{"id": "y", "category": "c", "value": 5}\n'
    )
    paths = [early, late]
    second = finished(start(paths, tmp_path / "m2", 2, 2))  # b.jsonl is partition 2's
    assert second["files_of_this_partition"] == 1
    assert second["join"]["waiting_on"] == "1/2"
    first = finished(start(paths, tmp_path / "m1", 1, 2))
    assert (first["join"]["duplicates"], first["join"]["conflicts"]) == (1, 1)  # a: x again
    _, rebuilt = cli(capsys, f"rebuild --store {tmp_path / 'm1'}")
    assert rebuilt["categories"]["c"]["count"] == 2 and rebuilt["categories"]["c"]["total"] == "6"
    _, sources = cli(capsys, f"sources --store {tmp_path / 'm1'}")
    counts = {
        Path(s["path"]).name: (s["ingested"], s["duplicates"], s["conflicts"])
        for s in sources["sources"]
    }
    assert counts == {"a.jsonl": (1, 1, 0), "b.jsonl": (1, 0, 1)}
    one = one_store_of(paths, tmp_path, capsys)
    assert figures(capsys, f"--store {tmp_path / 'm1'}") == one
    _, explained = cli(capsys, f"explain c --store {tmp_path / 'm1'}")
    conflicts = explained["set_aside"]["conflicts"]
    assert [(c["later"]["value"], c["first"]["value"]) for c in conflicts] == [("2", "1")]
    migrated = tmp_path / "migrated"
    command = f"migrate --from postgres --to file --store {tmp_path / 'm1'} --to-store {migrated}"
    code, copy = cli(capsys, command)
    assert (code, copy["status"]) == (0, "match"), copy
    assert figures(capsys, f"--store {migrated} --backend file") == one


def test_a_store_keeps_its_number_of_partitions(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_files(tmp_path, files=2, lines=20, seed=5)
    names = " ".join(str(p) for p in paths)
    finished(start(paths, tmp_path / "m1", 1, 2))
    refusals = {
        f"ingest {names} --partition 1/3": "this store has 2 partitions: start each worker "
        "with --partition K/2, not 1/3",
        f"ingest {names}": "this store has 2 partitions: ingest would write to its log beside "
        "them; ingest with --partition K/2",
        f"reconcile {names}": "this store has 2 partitions: reconcile would write",
        f"ingest {paths[0]} --partition 2/2": f"{paths[1]} is partition 2/2's in the ingest "
        "under way and not read yet: give it too",
        f"ingest {names} --partition 2/2 --rescan": "--rescan cannot be combined with --partition",
    }
    for command, message in refusals.items():
        code = main([*shlex.split(command), "--store", str(tmp_path / "m2")])
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert (
        main(shlex.split(f"ingest {names} --partition 2/2 --store {tmp_path / 'm2'} --quiet")) == 0
    )
    quiet = capsys.readouterr().out
    assert "ingest 1 file: read 20" in quiet and "; joined " in quiet, quiet
    _, status = cli(capsys, f"status --store {tmp_path / 'm1'}")
    assert status["partitions"]["files_joined"] == 2


def test_a_store_ingested_without_partitions_refuses_them(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_files(tmp_path, files=1, lines=20, seed=6)
    assert main(shlex.split(f"ingest {paths[0]} --store {tmp_path / 'm'} --quiet")) == 0
    capsys.readouterr()
    code = main(shlex.split(f"ingest {paths[0]} --store {tmp_path / 'm'} --partition 1/2"))
    err = capsys.readouterr().err
    assert code == 2 and "holds events ingested without --partition" in err, err
    _, status = cli(capsys, f"status --store {tmp_path / 'm'}")
    assert status["partitions"] is None


def test_a_file_that_vanished_is_passed_over_and_new_files_wait_for_the_plan(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_files(tmp_path, files=3, lines=30, seed=8)
    finished(start(paths, tmp_path / "m1", 1, 2))
    owned = [p for p in paths if p.name != paths[0].name]  # partition 2's, as planned
    _, status = cli(capsys, f"status --store {tmp_path / 'm1'}")
    assert status["partitions"]["waiting_file"] == str(owned[0])
    owned[0].unlink()  # retention took it before partition 2 read it
    (tmp_path / "later").mkdir()
    new = write_files(tmp_path / "later", files=1, lines=10, seed=9)
    refused = main(
        shlex.split(
            f"ingest {paths[0]} {owned[1]} {new[0]} --partition 2/2 --store {tmp_path / 'm2'}"
        )
    )
    assert refused == 2 and f"{new[0]} is not in the ingest under way" in capsys.readouterr().err
    code = main(
        shlex.split(
            f"ingest {paths[0]} {owned[1]} --partition 2/2 --store {tmp_path / 'm2'} --json"
        )
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 2 and [r["source"] for r in document["refused"]] == [str(owned[0])]
    assert document["join"]["waiting_file"] is None  # the plan is done: it no longer waits
    for k in (1, 2):
        finished(start([*paths[:1], owned[1], new[0]], tmp_path / f"m{k}", k, 2))
    _, status = cli(capsys, f"status --store {tmp_path / 'm1'}")
    assert (
        status["partitions"]["waiting_file"] is None and status["partitions"]["files_planned"] == 3
    )
    app = open_app(str(tmp_path / "m1"))
    try:
        assert store_totals(app) == reference([paths[0], owned[1], new[0]])
    finally:
        app.close()
