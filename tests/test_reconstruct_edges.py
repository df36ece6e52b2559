"""``eventfold reconstruct`` at its edges: a summary row of no events, the figures of
held events once retired, untrusted text, a window over a reconstructed period, sources
that lost the period too, ``--quiet``, periods given with an offset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from summaryhelpers import Event, write

PERIOD = "2026-11-30T12:00Z/2026-11-30T15:00Z"
KEPT: list[Event] = [
    ("1", "rent", "1200.00", "2026-11-30T09:15:00Z"),
    ("2", "fun", "3", "2026-11-30T10:00:00Z"),
    ("3", "fun", "4", "2026-11-30T16:00:00Z"),
    ("4", "food", "2", "2026-11-30T11:00:00Z"),
]
FOUND: list[Event] = [  # the afternoon, found later
    ("5", "fun", "99", "2026-11-30T13:00:00Z"),
    ("6", "fun", "0.5", "2026-11-30T14:00:00Z"),
    ("7", "rent", "7", "2026-11-30T12:30:00Z"),
]


def doc(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "store")
    doc(capsys, "ingest", str(write(tmp_path / "kept.jsonl", KEPT)), "--store", path)
    return path


def summary(tmp_path: Path, text: str) -> str:
    path = tmp_path / "summary.csv"
    path.write_text("category,count,total\n" + text)
    return str(path)


def make(capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str, rows: str) -> Any:
    """``reconstruct`` of the summary ``rows`` over ``PERIOD``: its JSON document."""
    return doc(
        capsys,
        "reconstruct",
        "--from",
        summary(tmp_path, rows),
        "--period",
        PERIOD,
        "--store",
        store,
    )


def test_a_row_of_no_events_is_shown_as_resting_on_the_reconstruction(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fun had no event that afternoon, say the books: its events found later are held,
    and every report says fun's total rests on R1."""
    made = make(capsys, tmp_path, store, "fun,0,0\nrent,1,7\n")
    assert [r["category"] for r in made["rows"]] == ["fun", "rent"]
    doc(capsys, "ingest", str(write(tmp_path / "found.jsonl", FOUND)), "--store", store)
    caught = doc(capsys, "catchup", "--store", store)
    assert caught["categories"]["fun"] == {"count": 2, "total": "7"}
    assert caught["figures"]["fun"]["reconstructed_count"] == 0
    assert caught["figures"]["fun"]["reconstructed_total"] == "0"
    assert "reconstructed_count" not in caught["figures"]["food"]
    code, out, _ = run(capsys, "catchup", "--store", store)
    assert code == 0 and "2 totals rest in part on reconstructions" in " ".join(out.split())


def test_once_retired_the_figures_count_the_events_it_held(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """min, max, first and last of a category after retirement are those of all its raw
    events, as a store that never lost any has them, however it is folded."""
    make(capsys, tmp_path, store, "fun,2,100\nrent,1,7\n")
    doc(capsys, "ingest", str(write(tmp_path / "found.jsonl", FOUND)), "--store", store)
    doc(capsys, "catchup", "--store", store)
    doc(capsys, "reconstruct", "--retire", "R1", "--store", store)
    whole = str(tmp_path / "whole")
    doc(capsys, "ingest", str(write(tmp_path / "all.jsonl", KEPT + FOUND)), "--store", whole)
    truth = doc(capsys, "rebuild", "--store", whole)
    assert truth["figures"]["fun"]["max"] == "99"
    caught = doc(capsys, "catchup", "--store", store)
    assert (caught["checksum"], caught["figures"]) == (truth["checksum"], truth["figures"])
    for workers in ("1", "2"):
        rebuilt = doc(capsys, "rebuild", "--store", store, "--workers", workers)
        assert (rebuilt["checksum"], rebuilt["figures"]) == (truth["checksum"], truth["figures"])


def test_notes_names_and_messages_show_control_characters_escaped(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTFOLD_USER", "ana\x1b[31m")
    code, out, err = run(
        capsys,
        "reconstruct",
        "--from",
        summary(tmp_path, "new\x1b[2Jcat,1,5\n"),
        "--period",
        PERIOD,
        "--note",
        "bye\x1b[2J\nnext line",
        "--store",
        store,
    )
    assert code == 0, err
    code, listed, _ = run(capsys, "reconstruct", "--list", "--store", store)
    for text in (out, listed):
        assert "\x1b" not in text
        assert "by ana\\x1b[31m: bye\\x1b[2J\\nnext line" in text
    doc(capsys, "catchup", "--store", store)
    code, _, err = run(capsys, "explain", "newcat", "--store", store)
    assert code == 2 and "\x1b" not in err and "new\\x1b[2Jcat" in err


def test_a_window_over_sources_names_the_reconstructions_it_does_not_count(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make(capsys, tmp_path, store, "fun,2,100\n")
    kept = str(tmp_path / "kept.jsonl")
    window = ("--since", "2026-11-30T11:00Z", "--until", "2026-11-30T18:00Z")
    verified = doc(capsys, "verify", "--source", kept, *window, "--store", store)
    assert (verified["status"], verified["window_reconstructions"]) == ("match", ["R1"])
    code, out, _ = run(capsys, "verify", "--source", kept, *window, "--store", store)
    assert code == 0 and "reconstructions R1 stand for events in it" in " ".join(out.split())
    before = ("--since", "2026-11-30T08:00Z", "--until", "2026-11-30T12:00Z")
    verified = doc(capsys, "verify", "--source", kept, *before, "--store", store)
    assert verified["window_reconstructions"] == []


def test_sources_that_lost_the_period_too_are_not_weighed_against_the_summary(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The surviving source has no event in the period: nothing there to prefer to the
    summary, so verify does not suggest retiring it; the found events differ from it, so
    verify does."""
    make(capsys, tmp_path, store, "fun,2,100\nrent,1,7\n")
    kept = str(tmp_path / "kept.jsonl")
    code, out, _ = run(capsys, "verify", "--source", kept, "--store", store)
    assert code == 0 and "--retire" not in out
    found = str(write(tmp_path / "found.jsonl", FOUND))
    code, out, _ = run(capsys, "verify", "--source", kept, "--source", found, "--store", store)
    assert "differ from the summaries (1 part)" in " ".join(out.split())


def test_quiet_gives_one_line_and_periods_are_kept_in_utc(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "reconstruct",
        "--from",
        summary(tmp_path, "fun,2,100\n"),
        "--period",
        "2026-11-30T14:00+02:00/2026-11-30T17:00+02:00",
        "--store",
        store,
        "--quiet",
    )
    assert (code, err) == (0, "")
    assert out == (
        "reconstruction R1 made: 2026-11-30T12:00:00+00:00/2026-11-30T15:00:00+00:00, "
        "1 category, 2 events, total 100\n"
    )
    (listed,) = doc(capsys, "reconstruct", "--list", "--store", store)["reconstructions"]
    assert (listed["start"], listed["end"]) == (
        "2026-11-30T12:00:00+00:00",
        "2026-11-30T15:00:00+00:00",
    )
