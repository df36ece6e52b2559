"""Opening a store for `status`, `sources` and `catchup`: what is read to answer them.

The sources a store knows are found from its ingest tracking records, ordered by
the file store's index, without reading the events (`status` of a store of
millions of events); a backend without such an index reads the notifications.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows
from eventfold.application.admin.sources import known_source_ids
from eventfold.application.app import Eventfold
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.tracking import record_name, source_of
from eventfold.domain.model import Source
from eventfold.infra.filestore.recorders import FileApplicationRecorder


def _sources_out_of_id_order(tmp_path: Path) -> list[Path]:
    """Three sources, in an order that is not that of their ids (nor of their tracking
    records' names, which the index checkpoint keeps sorted)."""
    paths = [
        write_rows(tmp_path / f"{name}.jsonl", [(f"{name}{i}", "rent", f"{i}.5") for i in range(3)])
        for name in ("a", "b", "c")
    ]
    by_id = sorted(paths, key=lambda p: str(Source.create_id(os.path.realpath(p))))
    return by_id[::-1]


def test_sources_come_in_the_order_first_seen_whatever_their_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    order = _sources_out_of_id_order(tmp_path)
    for path in order:
        assert run(capsys, "ingest", str(path), "--store", store, "--quiet")[0] == 0
    code, out, _ = run(capsys, "sources", "--store", store, "--quick", "--json")
    assert code == 0
    assert [s["path"] for s in json.loads(out)["sources"]] == [os.path.realpath(p) for p in order]


def test_the_file_store_finds_its_sources_without_reading_the_notifications(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "store")
    order = _sources_out_of_id_order(tmp_path)
    for path in order:
        assert run(capsys, "ingest", str(path), "--store", store, "--quiet")[0] == 0
    with (tmp_path / "c.jsonl").open("a") as f:
        f.write('{"id": "c9", "category": "rent", "value": 1}\n')

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("every notification read to find the sources")

    monkeypatch.setattr(FileApplicationRecorder, "select_notifications", refused)
    code, out, err = run(capsys, "status", "--store", store, "--json")
    assert (code, err) == (0, "")
    sources = json.loads(out)["sources"]
    assert (sources["count"], sources["complete"], sources["grew"]) == (3, 2, 1)
    code, out, _ = run(capsys, "sources", "--store", store, "--json")
    assert code == 0
    assert [s["path"] for s in json.loads(out)["sources"]] == [os.path.realpath(p) for p in order]


def test_a_backend_without_an_index_of_streams_reads_the_notifications(tmp_path: Path) -> None:
    app = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    order = _sources_out_of_id_order(tmp_path)
    with Ingestor(app, str(tmp_path / "state")) as ingestor:
        for path in order:
            ingestor.run(str(path))
    assert app.backend.tracked_originators(source_of) is None
    expected = [Source.create_id(os.path.realpath(p)) for p in order]
    assert known_source_ids(app) == expected


def test_a_tracking_record_name_gives_back_its_source() -> None:
    source_id = Source.create_id("/data/events.jsonl")
    assert source_of(record_name(source_id, 0)) == source_id
    assert source_of(record_name(source_id, 12)) == source_id
    for other in ("eventfold.migrate:/data/events.jsonl", "eventfold.ingest:nope:0", "x"):
        assert source_of(other) is None
    assert source_of(f"eventfold.ingest:{source_id}:") is None


_SHOW_MODULES = (
    "import sys\n"
    "from eventfold.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    "raise SystemExit(code)\n"
)
# Imported by other commands only: each is slow to import, or brings much with it.
_NOT_FOR_OPENING = {
    "importlib.metadata",  # entry points: only for a projection that is not built in
    "rich.progress",  # the progress line: only on a terminal
    "eventfold.application.ingest.run",  # the whole of ingest
    "eventfold.commands.completion_scripts",
    "eventfold.reports.check",
    "tomllib",  # only when there is a configuration file
    "difflib",  # only for a usage error
    "psycopg",  # only on postgres (an extra)
    "numpy",  # only for writing: the index's flushes and the dedup index's filter
}


@pytest.mark.parametrize("command", ["status", "catchup", "snapshots"])
def test_opening_a_store_imports_only_what_the_command_uses(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    source = write_rows(tmp_path / "a.jsonl", [("a1", "rent", "1.5"), ("a2", "food", "2")])
    assert run(capsys, "ingest", str(source), "--store", store, "--quiet")[0] == 0
    assert run(capsys, "rebuild", "--store", store, "--quiet")[0] == 0
    done = subprocess.run(
        [sys.executable, "-c", _SHOW_MODULES, command, "--store", store],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = set(done.stderr.split())
    assert "eventfold.application.app" in imported  # the store was opened
    assert imported & _NOT_FOR_OPENING == set()


def test_a_built_in_projection_is_found_without_reading_the_entry_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventfold.projections import registry

    def broken(group: str) -> Any:
        raise RuntimeError("an installed package's metadata cannot be read")

    monkeypatch.setattr(registry, "entry_points", broken)
    store = str(tmp_path / "store")
    source = write_rows(tmp_path / "a.jsonl", [("a1", "rent", "1.5")])
    assert run(capsys, "ingest", str(source), "--store", store, "--quiet")[0] == 0
    code, out, _ = run(capsys, "catchup", "--store", store, "--json")
    assert code == 0 and json.loads(out)["categories"]["rent"]["count"] == 1
    code, _, err = run(capsys, "catchup", "--store", store, "--projection", "elsewhere")
    assert code == 2 and "metadata cannot be read" in err


def test_a_large_state_shows_its_first_rows_in_order_and_counts_the_rest() -> None:
    import io

    from rich.console import Console

    from eventfold.reports.projection import MAX_ROWS, state_table

    hours = {f"2026-01-01T{h:02d}:00:00+00:00": {"count": 1, "total": "1"} for h in range(24)}
    days = {
        name: {
            hour.replace("01T", f"{d:02d}T"): v for d in range(1, 6) for hour, v in hours.items()
        }
        for name in ("rent", "food")  # 120 rows each, food's first
    }
    console = Console(file=io.StringIO(), width=120)
    console.print(state_table("hourly_totals", {"hours": days}))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    shown = [line for line in lines if "2026-01-" in line]
    assert len(shown) == MAX_ROWS
    assert "food" in shown[0] and "2026-01-01T00:00" in shown[0]
    assert "rent" in shown[120] and "2026-01-01T00:00" in shown[120]
    assert "2026-01-04T07:00" in shown[-1]  # rent's 80th hour
    assert any("40 more rows: use --json for all" in line for line in lines)
