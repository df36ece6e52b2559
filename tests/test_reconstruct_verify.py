"""``verify`` over a store with a reconstruction: totals resting on a summary are said so.

A day of events with the afternoon lost: the store and the surviving source both lack
it, a summary of the afternoon stands for it. Against the surviving source, against
the full source (the afternoon found again) and against the worker's own totals, the
report marks every total that rests on the summary, and shows the summary beside the
raw events the sources hold in its period.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run

START = datetime(2026, 11, 30, 8, tzinfo=UTC)
PERIOD = "2026-11-30T13:00Z/2026-11-30T17:00Z"
AFTERNOON = (datetime(2026, 11, 30, 13, tzinfo=UTC), datetime(2026, 11, 30, 17, tzinfo=UTC))


def day() -> list[dict[str, Any]]:
    """Every 20 minutes from 08:00 to 19:40, two categories; values in cents."""
    rows = []
    for i in range(36):
        when = START + timedelta(minutes=20 * i)
        rows.append(
            {
                "id": f"e{i}",
                "category": "rent" if i % 3 else "food",
                "value": f"{i}.{i % 7}5",
                "timestamp": when.isoformat(),
            }
        )
    return rows


def lost(row: dict[str, Any]) -> bool:
    when = datetime.fromisoformat(row["timestamp"])
    return AFTERNOON[0] <= when < AFTERNOON[1]


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    with path.open("w") as f:
        for row in rows:
            value = row.pop("value")
            f.write(json.dumps(row)[:-1] + f', "value": {value}}}\n')
            row["value"] = value
    return str(path)


def sums(rows: list[dict[str, Any]]) -> dict[str, tuple[int, Decimal]]:
    found: dict[str, tuple[int, Decimal]] = {}
    for row in rows:
        n, t = found.get(row["category"], (0, Decimal(0)))
        found[row["category"]] = (n + 1, t + Decimal(row["value"]))
    return found


@pytest.fixture
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return build(tmp_path, capsys)


def build(tmp_path: Path, capsys: pytest.CaptureFixture[str], *at: str) -> dict[str, Any]:
    """The store of the surviving events, R1 made from the afternoon's summary (``at``:
    the backend's options)."""
    rows = day()
    kept = [r for r in rows if not lost(r)]
    afternoon = [r for r in rows if lost(r)]
    store = str(tmp_path / "store")
    survived = write(tmp_path / "survived.jsonl", kept)
    assert run(capsys, "ingest", survived, "--store", store, *at, "--quiet")[0] == 0
    summary = tmp_path / "afternoon.csv"
    summary.write_text(
        "category,count,total\n"
        + "".join(f"{c},{n},{t}\n" for c, (n, t) in sorted(sums(afternoon).items()))
    )
    made = run(
        capsys, "reconstruct", "--from", str(summary), "--period", PERIOD, "--store", store, *at
    )
    assert made[0] == 0, made[2]
    return {
        "store": store,
        "survived": survived,
        "full": write(tmp_path / "full.jsonl", rows),
        "summary": str(summary),
        "rows": rows,
        "afternoon": afternoon,
        "tmp": tmp_path,
    }


def test_verify_against_the_surviving_source_marks_every_total_resting_on_the_summary(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "verify", "--source", world["survived"], "--store", world["store"], "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "match"
    assert doc["resting_rows"] == 2
    (r1,) = doc["reconstructions"]
    assert (r1["id"], r1["start"], r1["end"]) == (
        "R1",
        AFTERNOON[0].isoformat(),
        AFTERNOON[1].isoformat(),
    )
    expected = sums(world["afternoon"])
    for row in r1["rows"]:
        n, t = expected[row["category"]]
        assert (row["count"], Decimal(row["total"])) == (n, t)
        assert (row["source_count"], row["source_total"]) == (0, "0")  # the sources lost it too
    code, out, _ = run(capsys, "verify", "--source", world["survived"], "--store", world["store"])
    assert code == 0
    assert "resting in part on reconstructions (R1)" in out
    assert "totals resting on reconstructions" in out


def test_the_afternoon_found_again_is_shown_beside_the_summary_not_counted(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "verify", "--source", world["full"], "--store", world["store"], "--json"
    )
    doc = json.loads(out)
    # the store lacks the afternoon's events (missing), but its totals count the summary
    assert doc["missing_events"] == len(world["afternoon"])
    assert (code, doc["status"]) == (0, "match"), err
    expected = sums(world["afternoon"])
    for row in doc["reconstructions"][0]["rows"]:
        n, t = expected[row["category"]]
        assert (row["source_count"], Decimal(row["source_total"])) == (n, t)
        assert Decimal(row["difference"]) == 0


def test_a_wrong_summary_against_the_workers_totals_is_a_mismatch_on_the_resting_rows(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    worker = world["tmp"] / "worker.csv"
    truth = sums(world["rows"])
    worker.write_text(
        "category,count,total\n" + "".join(f"{c},{n},{t}\n" for c, (n, t) in truth.items())
    )
    code, out, _ = run(
        capsys, "verify", "--expected", str(worker), "--store", world["store"], "--json"
    )
    assert code == 0
    assert json.loads(out)["resting_rows"] == 2
    # retire, then make it again from a summary that is 1 off for rent
    assert run(capsys, "reconstruct", "--retire", "R1", "--store", world["store"])[0] == 0
    afternoon = sums(world["afternoon"])
    wrong = world["tmp"] / "wrong.csv"
    wrong.write_text(
        "category,count,total\n"
        f"food,{afternoon['food'][0]},{afternoon['food'][1]}\n"
        f"rent,{afternoon['rent'][0]},{afternoon['rent'][1] + 1}\n"
    )
    made = run(
        capsys, "reconstruct", "--from", str(wrong), "--period", PERIOD, "--store", world["store"]
    )
    assert made[0] == 0, made[2]
    code, out, _ = run(capsys, "verify", "--expected", str(worker), "--store", world["store"])
    assert code == 1
    assert "rests on" in out and "R2" in out
    code, out, _ = run(
        capsys, "verify", "--expected", str(worker), "--store", world["store"], "--json"
    )
    doc = json.loads(out)
    assert [d["key"] for d in doc["differences"]] == [{"category": "rent"}]
    assert doc["differences"][0]["delta"]["total"] == "1"


def test_after_retiring_no_total_rests_on_a_reconstruction(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "reconstruct", "--retire", "R1", "--store", world["store"])[0] == 0
    code, out, _ = run(
        capsys, "verify", "--source", world["survived"], "--store", world["store"], "--json"
    )
    doc = json.loads(out)
    assert (code, doc["resting_rows"], doc["reconstructions"]) == (0, 0, [])


def test_the_html_page_has_the_reconstruction_section(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    page = world["tmp"] / "report.html"
    code = run(
        capsys,
        "verify",
        "--source",
        world["survived"],
        "--store",
        world["store"],
        "--html",
        str(page),
        "--all",
    )[0]
    html = page.read_text()
    assert code == 0
    assert 'id="reconstruction-table"' in html
    assert "rest in part on reconstructions" in html
    assert "<th" in html and "rests on" in html


def test_hourly_totals_stay_raw(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A summary of a period has no hours: hourly_totals shows the raw events only, so it
    matches the surviving source hour by hour and rests on nothing."""
    code, out, _ = run(
        capsys,
        "verify",
        "--source",
        world["survived"],
        "--projection",
        "hourly_totals",
        "--store",
        world["store"],
        "--json",
    )
    doc = json.loads(out)
    assert (code, doc["status"], doc["resting_rows"]) == (0, "match", 0)


def test_verify_explain_and_events_say_the_same_on_postgres(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The afternoon found again and ingested: on PostgreSQL as on files, verify marks the
    totals resting on R1 and sets the found events beside its summary, explain splits
    rent's total into raw events counted and the summary, events marks the held ones."""

    def seen(root: Path, *at: str) -> dict[str, Any]:
        root.mkdir()
        w = build(root, capsys, *at)
        store = ("--store", w["store"], *at)
        found = write(root / "afternoon.jsonl", w["afternoon"])
        assert run(capsys, "ingest", found, *store, "--quiet")[0] == 0
        code, out, err = run(
            capsys, "verify", "--source", w["survived"], "--source", found, *store, "--json"
        )
        assert code == 0, err
        verified = json.loads(out)
        code, out, err = run(capsys, "explain", "rent", *store, "--json")
        assert code == 0, err
        explained = json.loads(out)
        code, out, err = run(capsys, "events", "--category", "rent", *store, "--json")
        assert code == 0, err
        listed = json.loads(out)
        rows = verified["reconstructions"][0]["rows"]
        return {
            "verify": (verified["status"], verified["resting_rows"], verified["actual_checksum"]),
            "parts": [(r["category"], r["source_count"], r["difference"]) for r in rows],
            "explain": (explained["counted"], explained["held"], explained["reconstructed"]),
            "held_by": sorted(
                (e["event_id"], e["held_by"]) for e in listed["events"] if e["held_by"] is not None
            ),
        }

    on_postgres = seen(tmp_path / "pg")
    on_files = seen(tmp_path / "files", "--backend", "file")
    assert on_postgres == on_files
    afternoon_rent = [r["id"] for r in day() if lost(r) and r["category"] == "rent"]
    assert on_files["verify"][:2] == ("match", 2)
    assert [i for i, _ in on_files["held_by"]] == sorted(afternoon_rent)
