"""Proving on PostgreSQL gives what it gives on the file store: expected files, the
timeline, shadow rebuilds and generations, states as of a point, ``diff``.

Needs a PostgreSQL server (the ``postgres`` fixture: skipped without one, a
failure in CI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run

EVENTS = [
    ("1", "rent", "1200.00", "2026-11-30T09:15:00Z"),
    ("2", "food", "12.50", "2026-11-30T09:40:00Z"),
    ("3", "food", "7.25", "2026-11-30T14:05:00Z"),
    ("4", "fun", "30", "2026-11-30T14:59:59Z"),
    ("5", "fun", "1.10", "2026-11-30T16:00:00Z"),
]


def write(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    path.write_text(
        "".join(
            f'{{"id": "{i}", "category": "{c}", "value": {v}, "timestamp": "{t}"}}\n'
            for i, c, v, t in rows
        )
    )
    return path


def doc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def proving(capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str, *backend: str) -> Any:
    """What the proving commands say of one store, backend-neutral."""
    full = write(tmp_path / "bus.jsonl", EVENTS)
    feed = write(tmp_path / f"feed{backend}.jsonl", [e for e in EVENTS if e[0] != "3"])
    at = ("--store", store, *backend)
    assert run(capsys, "ingest", str(feed), *at)[0] == 0
    expected = tmp_path / "worker.csv"
    expected.write_text("name,amount\nrent,1200\nfood,19.75\nfun,31.1\n")
    found: dict[str, Any] = {}
    code, verified = doc(
        capsys, "verify", *at, "--expected", str(expected), "--key", "name", "--total-col", "amount"
    )
    found["expected"] = (code, [(d["category"], d["delta"]) for d in verified["differences"]])
    code, timed = doc(capsys, "verify", str(full), *at, "--by", "hour")
    found["by"] = (code, timed["timeline"]["first_bad"], timed["timeline"]["last_bad"])
    assert run(capsys, "rebuild", *at)[0] == 0
    changed = ("--projection", "userprojections:WithoutRent")
    code, compared = doc(capsys, "rebuild", *at, "--compare", *changed)
    found["compare"] = (code, compared["compare"]["switched"], compared["compare"]["differing"])
    listed = doc(capsys, "generations", *at)[1]["generations"]
    found["generations"] = [(g["current"], g["position"] is not None) for g in listed]
    status = doc(capsys, "status", *at)[1]
    last = status["last_notification_id"]
    found["as_of_time"] = doc(capsys, "rebuild", *at, "--as-of", "2026-11-30T12:00Z")[1][
        "categories"
    ]
    position = doc(capsys, "rebuild", *at, "--as-of", f"@{last}")[1]
    found["as_of_end"] = position["checksum"] == verified["actual_checksum"]
    changes = doc(capsys, "diff", "2026-11-30T12:00Z", "now", *at)[1]
    found["diff"] = [(d["category"], d["delta"]) for d in changes["differences"]]
    return found


def test_proving_on_postgres_equals_the_file_store(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    on_postgres = proving(capsys, tmp_path, str(tmp_path / "pg-local"))
    on_files = proving(capsys, tmp_path, str(tmp_path / "files"), "--backend", "file")
    assert on_postgres == on_files
    assert on_postgres["expected"] == (1, [("food", {"count": None, "total": "-7.25"})])
    assert on_postgres["by"] == (1, "2026-11-30T14:00:00+00:00", "2026-11-30T14:00:00+00:00")
    assert on_postgres["compare"] == (1, False, 1)
    assert on_postgres["generations"] == [(True, True), (False, True)]
    assert set(on_postgres["as_of_time"]) == {"rent", "food"}
    assert on_postgres["as_of_end"]
    assert [c for c, _ in on_postgres["diff"]] == ["fun"]
