"""The postgres backend: the same commands, the same checksums, state shared in the database.

These tests need a PostgreSQL server (the ``postgres`` fixture: skipped with
the reason when none is configured, failed in CI where ``.ci/run`` starts one).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_app
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.projecting import (
    ProjectionBusyError,
    Projector,
    snapshots_of,
)
from eventfold.cli import main
from eventfold.projections.builtin import CategoryTotals
from processes import HANG, Following, eventfold, run_until_failpoint

# No conflicts: a conflict straddling the gap is a real difference that reconcile keeps.
RATES = SampleRates(duplicates=0.03, invalid=0.02, out_of_order=0.2)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1])  # after any earlier output


def sources(tmp_path: Path, lines: int) -> tuple[Path, Path]:
    """A source, and the same source with a slice of 200 lines missing (a worker's gap)."""
    full = tmp_path / "full.jsonl"
    with full.open("wb") as f:
        write_sample(f, lines, rates=RATES, seed=5)
    rows = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"".join(rows[:1000] + rows[1200:]))
    return full, partial


def ingest_with_a_kill(source: Path, store: Path) -> None:
    """Run ``eventfold ingest`` until it kills itself after its 40th commit, then to the end."""
    run_until_failpoint(
        eventfold("ingest", str(source), "--store", str(store), "--batch", "5", "--json"),
        "ingest.after-commit",
        40,
    )
    app = open_app(str(store))
    try:
        assert (app.recorder.max_notification_id() or 0) > 0
    finally:
        app.close()
    assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0


def story(
    capsys: pytest.CaptureFixture[str], full: Path, partial: Path, store: Path, *backend: str
) -> dict[str, Any]:
    """Rebuild, verify (a gap), reconcile, catch up, verify again: what each says."""
    s = ["--store", str(store), *backend]
    _, rebuilt = run(capsys, "rebuild", *s)
    before_code, before = run(capsys, "verify", "--source", str(full), *s)
    reconcile_code, reconciled = run(capsys, "reconcile", str(full), *s)
    _, caught_up = run(capsys, "catchup", *s)
    after_code, after = run(capsys, "verify", "--source", str(full), *s)
    _, status = run(capsys, "status", *s)
    return {
        "rebuilt": rebuilt["checksum"],
        "before": (before_code, before["status"]),
        "missing": len(before["events"]["missing_ids"]) if before.get("events") else None,
        "reconcile": (reconcile_code, reconciled["replayed"]),
        "caught_up": (caught_up["checksum"], caught_up["events_applied"]),
        "after": (after_code, after["status"], after["actual_checksum"]),
        "status": status,
    }


def test_the_story_on_postgres_gives_the_file_stores_checksums(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full, partial = sources(tmp_path, 3000)
    ingest_with_a_kill(partial, tmp_path / "pg-local")
    on_postgres = story(capsys, full, partial, tmp_path / "pg-local")
    assert (
        main(
            [
                "ingest",
                str(partial),
                "--store",
                str(tmp_path / "files"),
                "--backend",
                "file",
                "--quiet",
            ]
        )
        == 0
    )
    on_files = story(capsys, full, partial, tmp_path / "files", "--backend", "file")

    assert on_postgres["rebuilt"] == on_files["rebuilt"]
    assert on_postgres["before"] == on_files["before"] == (1, "mismatch")
    assert on_postgres["reconcile"] == on_files["reconcile"]
    assert on_postgres["reconcile"][1] > 150  # the missing slice, less its repeats and bad lines
    assert on_postgres["after"] == on_files["after"]
    assert on_postgres["after"][:2] == (0, "match")
    assert on_postgres["caught_up"][0] == on_files["caught_up"][0]
    status = on_postgres["status"]
    assert status["backend"] == "postgres" and on_files["status"]["backend"] == "file"
    (row,) = status["projections"]
    assert (row["name"], row["lag"]) == ("category_totals", 0)


def test_projection_snapshots_are_shared_through_the_database(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second machine (another local directory) catches up from the first one's snapshot."""
    full, _ = sources(tmp_path, 500)
    first, second = tmp_path / "machine-1", tmp_path / "machine-2"
    assert main(["ingest", str(full), "--store", str(first), "--quiet"]) == 0
    _, rebuilt = run(capsys, "rebuild", "--store", str(first))
    _, caught_up = run(capsys, "catchup", "--store", str(second))
    assert caught_up["events_applied"] == 0
    assert caught_up["snapshot_used"]["position"] == rebuilt["snapshot_written"]["position"]
    assert caught_up["checksum"] == rebuilt["checksum"]
    assert caught_up["snapshot_used"]["path"].startswith("postgres:")
    assert not os.path.exists(second / "projections")


def test_one_writer_per_projection_across_machines(
    postgres: dict[str, str], tmp_path: Path
) -> None:
    full, _ = sources(tmp_path, 300)
    assert main(["ingest", str(full), "--store", str(tmp_path / "a"), "--quiet"]) == 0
    app = open_app(str(tmp_path / "a"))
    try:
        held = snapshots_of(app, CategoryTotals()).try_lock()
        assert held is not None
        try:
            with pytest.raises(ProjectionBusyError, match="PostgreSQL session"):
                Projector(app, str(tmp_path / "b"), CategoryTotals()).rebuild()
        finally:
            held()
        assert Projector(app, str(tmp_path / "b"), CategoryTotals()).rebuild().events_applied
    finally:
        app.close()


def test_a_postgres_backend_without_settings_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    code = main(["status", "--store", str(tmp_path), "--backend", "postgres"])
    err = capsys.readouterr().err
    assert code == 2
    assert "POSTGRES_DBNAME" in err and "Traceback" not in err
    monkeypatch.setenv("EVENTFOLD_BACKEND", "oracle")
    assert main(["status", "--store", str(tmp_path)]) == 2
    assert "unknown backend 'oracle'" in capsys.readouterr().err


def test_follow_on_postgres_sees_another_processs_commits(
    postgres: dict[str, str], tmp_path: Path
) -> None:

    source, local = tmp_path / "s.jsonl", tmp_path / "local"
    with source.open("wb") as f:
        write_sample(f, 100, seed=3)
    assert main(["ingest", str(source), "--store", str(local), "--quiet"]) == 0
    app = open_app(str(local))
    projector = Projector(app, str(local), CategoryTotals(), snapshot_every=75)
    with Following(projector) as follower:
        with source.open("ab") as f:
            write_sample(f, 300, seed=4, first_id=1000)
        command = eventfold("ingest", str(source), "--store", str(local), "--batch", "50")
        subprocess.run(command, check=True, capture_output=True, timeout=HANG)
        follower.wait_for_count(400, "follow to see the events another process ingested")
    try:
        assert (
            follower.report.checksum
            == Projector(app, str(local), CategoryTotals()).rebuild().checksum
        )
    finally:
        app.close()


def test_an_unreachable_database_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in (
        ("POSTGRES_DBNAME", "eventfold"),
        ("POSTGRES_HOST", "127.0.0.1"),
        ("POSTGRES_PORT", "1"),
        ("POSTGRES_USER", "eventfold"),
        ("POSTGRES_PASSWORD", "x"),
        ("POSTGRES_CONNECT_TIMEOUT", "2"),
    ):
        monkeypatch.setenv(key, value)
    code = main(["status", "--store", str(tmp_path), "--backend", "postgres"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("eventfold: database unavailable: ") and err.count("\n") == 1
