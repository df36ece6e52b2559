"""`eventfold rebuild`, `catchup` and `snapshots`: JSON documents, reports, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eventfold.cli import main
from eventfold.projections.builtin import CategoryTotals


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"id": 1, "category": "rent", "value": 10.50, "timestamp": "2026-01-01T10:00:00Z"}\n'
        '{"id": 2, "category": "[b]food[/b]", "value": 2}\n'
        '{"id": 3, "category": "rent", "value": 0.50}\n',
        encoding="utf-8",
    )
    store = tmp_path / "store"
    assert main(["ingest", str(source), "--store", str(store)]) == 0
    capsys.readouterr()
    return store


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rebuild_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "rebuild", "--store", str(store))
    assert doc["projection"] == "category_totals"
    assert (doc["from_position"], doc["events_applied"]) == (0, 3)
    assert doc["categories"] == {
        "rent": {"count": 2, "total": "11"},
        "[b]food[/b]": {"count": 1, "total": "2"},
    }
    assert doc["snapshot_used"] is None
    assert doc["snapshot_written"]["position"] == doc["position"]
    assert len(doc["checksum"]) == 64


def test_catchup_json_names_the_snapshot_used(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rebuilt = run_json(capsys, "rebuild", "--store", str(store), "--workers", "2")
    caught = run_json(capsys, "catchup", "--store", str(store))
    assert caught["snapshot_used"]["position"] == rebuilt["position"]
    assert (caught["events_applied"], caught["checksum"]) == (0, rebuilt["checksum"])
    listing = run_json(capsys, "snapshots", "--store", str(store))
    assert [s["valid"] for s in listing["snapshots"]] == [True]


def test_hourly_totals_by_name(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "rebuild", "--store", str(store), "--projection", "hourly_totals")
    assert doc["hours"]["rent"]["2026-01-01T10:00:00+00:00"] == {"count": 1, "total": "10.5"}


def test_human_report_shows_state_and_summary(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rebuild", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    for text in ("[b]food[/b]", "rent", "checksum", "position", "snapshot written"):
        assert text in out
    assert re.search(r"applied in \d+\.\d\d[\xa0 ]s", out)  # the glue, never shown escaped
    assert "\\x" not in out


def test_usage_errors_exit_2(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rebuild", "--store", str(store), "--projection", "nope"]) == 2
    assert "no projection named 'nope'" in capsys.readouterr().err
    assert main(["catchup", "--store", str(tmp_path / "missing")]) == 2
    assert main(["rebuild", "--store", str(store), "--projection", "os:path"]) == 2


def test_keep_snapshots(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    more = store.parent / "more.jsonl"
    for i in range(4):
        more.write_text(f'{{"id": "m{i}", "category": "rent", "value": 1}}\n', encoding="utf-8")
        assert main(["ingest", str(more), "--store", str(store), "--rescan"]) == 0
        assert main(["catchup", "--store", str(store), "--keep-snapshots", "2"]) == 0
    capsys.readouterr()
    listing = run_json(capsys, "snapshots", "--store", str(store))
    assert len(listing["snapshots"]) == 2


def test_projections_from_entry_points(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    from eventfold.projections import registry

    entry = EntryPoint(
        "counted", "eventfold.projections.builtin:CategoryTotals", "eventfold.projections"
    )

    class Renamed(CategoryTotals):
        name = "counted"

    monkeypatch.setattr(
        registry, "entry_points", lambda group: [entry] if group == entry.group else []
    )
    monkeypatch.setattr(EntryPoint, "load", lambda self: Renamed)
    assert "counted" in registry.available()
    doc = run_json(capsys, "rebuild", "--store", str(store), "--projection", "counted")
    assert doc["projection"] == "counted" and doc["categories"]["rent"]["count"] == 2
