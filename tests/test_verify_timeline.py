"""``verify --by hour|day``: where in time the store and the evidence part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run


def day_of_events(path: Path, skip_hours: tuple[int, ...] = ()) -> Path:
    """Four events an hour, 08:00 to 19:45 on 2026-11-30, values 1.25 each; plus two
    events without a timestamp. ``skip_hours`` leaves those hours out (a gap)."""
    lines = []
    for hour in range(8, 20):
        for quarter in range(4):
            event_id = f"h{hour}q{quarter}"
            if hour in skip_hours:
                continue
            stamp = f"2026-11-30T{hour:02d}:{quarter * 15:02d}:00Z"
            category = "food" if quarter % 2 else "rent"
            lines.append(
                f'{{"id": "{event_id}", "category": "{category}", "value": 1.25, '
                f'"timestamp": "{stamp}"}}'
            )
    lines += [
        '{"id": "u1", "category": "rent", "value": 2}',
        '{"id": "u2", "category": "x", "value": 3}',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def timeline_of(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "verify", *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)["timeline"]


def test_a_gap_in_the_afternoon_is_named_by_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = day_of_events(tmp_path / "bus.jsonl")
    gap = day_of_events(tmp_path / "worker-feed.jsonl", skip_hours=(14, 15))
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(gap), "--store", store)[0] == 0
    code, timeline = timeline_of(capsys, str(full), "--store", store, "--by", "hour")
    assert code == 1 and timeline["by"] == "hour"
    bad = {b["bucket"]: b for b in timeline["buckets"] if b["status"] != "match"}
    assert list(bad) == ["2026-11-30T14:00:00+00:00", "2026-11-30T15:00:00+00:00"]
    for bucket in bad.values():
        assert bucket["delta"] == {"count": -4, "total": "-5"}
        assert bucket["actual"] == {"count": 0, "total": "0"}
        (origin,) = bucket["missing_from"]
        assert origin["source"] == str(full.resolve()) and origin["events"] == 4
    assert bad["2026-11-30T14:00:00+00:00"]["missing_from"][0]["first_line"] == 25
    assert bad["2026-11-30T15:00:00+00:00"]["missing_from"][0]["last_line"] == 32
    assert (timeline["first_bad"], timeline["last_bad"]) == (
        "2026-11-30T14:00:00+00:00",
        "2026-11-30T15:00:00+00:00",
    )
    assert len(timeline["buckets"]) == 13 and timeline["buckets"][-1]["bucket"] == "none"
    assert timeline["without_timestamp"] == {"expected": 2, "actual": 2}
    code, out, _ = run(capsys, "verify", str(full), "--store", store, "--by", "hour")
    assert "by hour: 2 buckets of 13 differ, first 2026-11-30 14:00, last 2026-11-30 15:00" in out
    assert "2026-11-30 14:00: 4 events missing" in out and "lines 25-28" in out
    assert "░" in out and "events without a timestamp: 2 expected, 2 in the store" in out


def test_by_day_and_extra_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = day_of_events(tmp_path / "bus.jsonl")
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(full), "--store", store)[0] == 0
    late = tmp_path / "late.jsonl"
    late.write_text(
        '{"id": "z", "category": "fun", "value": 9.5, "timestamp": "2026-12-01T01:00:00Z"}\n'
    )
    assert run(capsys, "ingest", str(late), "--store", store)[0] == 0
    code, timeline = timeline_of(capsys, str(full), "--store", store, "--by", "day")
    assert code == 1
    assert [(b["bucket"], b["status"]) for b in timeline["buckets"]] == [
        ("2026-11-30", "match"),
        ("2026-12-01", "changed"),
        ("none", "match"),
    ]
    extra = timeline["buckets"][1]
    assert extra["delta"] == {"count": 1, "total": "9.5"}
    assert extra["extra_from"] == [
        {"source": str(late.resolve()), "events": 1, "first_line": 1, "last_line": 1}
    ]


def test_by_hour_from_an_hourly_expected_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = day_of_events(tmp_path / "bus.jsonl")
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(full), "--store", store)[0] == 0
    rows = ["category,hour,count,total"]
    for hour in range(8, 20):
        for category in ("rent", "food"):
            total = "2.5" if (hour, category) != (9, "food") else "3.75"  # 09:00 differs
            rows.append(f"{category},2026-11-30T{hour:02d}:00:00+00:00,2,{total}")
    rows += ["rent,none,1,2", "x,none,1,3"]
    expected = tmp_path / "hourly.csv"
    expected.write_text("\n".join(rows) + "\n")
    args = ("--store", store, "--projection", "hourly_totals", "--expected", str(expected))
    code, timeline = timeline_of(capsys, *args, "--by", "hour")
    assert (
        code == 1 and timeline["first_bad"] == timeline["last_bad"] == "2026-11-30T09:00:00+00:00"
    )
    code, out, err = run(
        capsys, "verify", "--store", store, "--expected-checksum", "0" * 64, "--by", "day"
    )
    assert out == ""
    assert code == 2 and "--by day needs hours on both sides" in err


def test_by_hour_narrowed_to_a_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = day_of_events(tmp_path / "bus.jsonl")
    gap = day_of_events(tmp_path / "feed.jsonl", skip_hours=(10,))
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(gap), "--store", store)[0] == 0
    args = (str(full), "--store", store, "--by", "hour", "--category", "food")
    code, timeline = timeline_of(capsys, *args)
    assert code == 1
    (bad,) = [b for b in timeline["buckets"] if b["status"] != "match"]
    assert bad["bucket"] == "2026-11-30T10:00:00+00:00"
    assert bad["delta"] == {"count": -2, "total": "-2.5"}  # food's two events of 10:00 only
