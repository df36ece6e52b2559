"""Reports never cut a figure: every table and panel at 60, 80 and 120 columns and piped,
the hidden figures of category_totals, ``--limit`` and plurals."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from eventfold.cli import main
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.text import grouped, plain, plural, signed
from processes import HANG

WIDTHS = (60, 80, 120)
CUT = re.compile(r"\d…|…\d")


def render(renderable: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False)
    console.print(renderable, crop=False)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int, *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", str(width))
    code = main(list(args))
    out = capsys.readouterr().out
    return code, out


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


def assert_whole(output: str, figures: list[str]) -> None:
    """Every figure appears whole, on one line, and nothing numeric was cut."""
    assert not CUT.search(output), output
    for figure in figures:
        assert figure in output, f"{figure!r} is not whole in:\n{output}"


Row = tuple[str, str, str, int | None]  # id, category, value, hour or None


def write(path: Path, rows: Sequence[Row]) -> Path:
    """Rows of (id, category, value, hour or None) as a JSON Lines source."""
    with path.open("w", encoding="utf-8") as f:
        for event_id, category, value, hour in rows:
            doc = json.dumps({"id": event_id, "category": category})[:-1]
            when = "" if hour is None else f', "timestamp": "2026-01-01T{hour:02d}:30:00Z"'
            f.write(doc + f', "value": {value}{when}}}\n')
    return path


CATEGORIES = ["rent", "a category with a rather long name that has to fold", "Überweisung"]
ROWS: list[Row] = [
    (f"evt-{i:06d}", CATEGORIES[i % 3], f"{987654 + i * 7919}.{i % 100:02d}", i % 24)
    for i in range(90)
]
OTHER: Row = ("x-2", "rent", "123456789.5", 3)


@pytest.fixture
def sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """An archive, and a store that missed lines 31..60 of it and saw two events of
    another source (extra)."""
    archive = write(tmp_path / "archive.jsonl", ROWS)
    feed = write(tmp_path / "feed.jsonl", ROWS[:30] + ROWS[60:])
    other = write(tmp_path / "other.jsonl", [OTHER, OTHER])  # recorded once
    store = tmp_path / "store"
    for source in (feed, other):
        assert main(["ingest", str(source), "--store", str(store)]) == 0
    capsys.readouterr()
    return archive, store


def test_grouping_signs_and_plurals() -> None:
    assert grouped("1234567.5") == "1,234,567.5"
    assert grouped("-1234567.50") == "-1,234,567.50"
    assert grouped(1234) == "1,234" and grouped("0.25") == "0.25" and grouped("-") == "-"
    assert grouped("12345678901234567890.123456789") == "12,345,678,901,234,567,890.123456789"
    assert signed("1234.5") == "+1,234.5" and signed(-3) == "-3" and signed("0") == "0"
    assert plural(1, "event") == "1 event" and plural(2, "event") == "2 events"
    assert plural(1, "category", "categories") == "1 category"
    assert plural(12345, "category", "categories") == "12,345 categories"


@pytest.mark.parametrize("width", [30, *WIDTHS])
def test_a_figure_table_never_cuts_a_figure(width: int) -> None:
    totals = ["1,416,569.11", "-31,383.9", "7", "+123,456,789,012.125"]
    rows = [[name, total, "12,345"] for name, total in zip([*CATEGORIES, "x"], totals, strict=True)]
    table = FigureTable([Col("category", "key"), Col("total"), Col("count")], rows, title="t")
    assert_whole(render(table, width), [*totals, "12,345"])


@pytest.mark.parametrize("width", WIDTHS)
def test_totals_align_on_the_decimal_point(width: int) -> None:
    rows = [["a", "1,234.5"], ["b", "12.25"], ["c", "1,000,000"]]
    output = render(FigureTable([Col("category", "key"), Col("total")], rows), width)
    points = {line.index(".") for line in output.splitlines() if re.search(r"\d\.\d", line)}
    assert len(points) == 1, output
    ends = {line.rstrip(" │").rfind("0") for line in output.splitlines() if "1,000,000" in line}
    assert ends and all(e < min(points) for e in ends), output


@pytest.mark.parametrize("width", [40, 60])
def test_a_summary_keeps_checksums_whole(width: int) -> None:
    checksum = "0c07061b06875e5060fc30eeb5b92075ca822b39615f6e60309de051b135aa7c"
    lines = [plain(f"expected checksum: {checksum}"), plain("position 1,234,567 (caught up)")]
    output = render(Summary(lines, title="verify"), width)
    assert_whole(output, [checksum, "1,234,567"])


def test_a_summary_title_is_shown_as_written() -> None:
    """A projection's name (from any installed package) is never markup nor an emoji code."""
    for title in ("[bold]totals[/bold]", "totals:smile:"):
        output = render(Summary([plain("position 1")], title=title), 60)
        assert title in output.splitlines()[0], output


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_report_keeps_every_figure_whole(
    width: int,
    sources: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive, store = sources
    args = ["verify", "--store", str(store), "--source", str(archive)]
    doc = json_of(capsys, *args)
    code, out = run(capsys, monkeypatch, width, *args)
    assert code == 1
    figures = [doc["expected_checksum"], doc["actual_checksum"]]
    for d in doc["differences"]:
        for side in ("expected", "actual"):
            if d[side] is not None:
                figures += [grouped(d[side]["total"]), grouped(d[side]["count"])]
        figures += [signed(d["delta"]["total"]), signed(d["delta"]["count"])]
    figures += [grouped(e["value"]) for e in doc["missing"] + doc["extra"]]
    figures += [grouped(e["line"]) for e in doc["missing"]]
    assert_whole(out, figures)
    for name in CATEGORIES:  # untrusted text may fold, but is never dropped
        assert name.split()[0] in out


def test_piped_output_is_wide_enough_for_the_whole_table(sources: tuple[Path, Path]) -> None:
    archive, store = sources
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    args = ["verify", "--store", str(store), "--source", str(archive)]
    done = subprocess.run(
        [sys.executable, "-m", "eventfold", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert not CUT.search(done.stdout), done.stdout
    assert any(line.startswith("│ rent ") for line in done.stdout.splitlines()), done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 120


@pytest.mark.parametrize("width", WIDTHS)
def test_reconcile_plan_and_gaps_keep_every_figure_whole(
    width: int,
    sources: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive, store = sources
    args = ["reconcile", str(archive), "--store", str(store), "--dry-run"]
    doc = json_of(capsys, *args)
    code, out = run(capsys, monkeypatch, width, *args)
    assert code == 1
    figures = [grouped(p["value"]) for p in doc["plan"]] + [grouped(p["line"]) for p in doc["plan"]]
    assert_whole(out, [*figures, grouped(doc["missing"])])
    assert "1 run of missing events" in out and "in 1 gap" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_state_table_shows_every_figure_of_category_totals(
    width: int,
    sources: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, store = sources
    doc = json_of(capsys, "catchup", "--store", str(store))
    assert set(doc["figures"]) == set(doc["categories"])
    rent = [r for r in ROWS[:30] + ROWS[60:] if r[1] == "rent"] + [OTHER]
    assert doc["figures"]["rent"]["max"] == "123456789.5"
    assert doc["figures"]["rent"]["min"] == min((r[2] for r in rent), key=Decimal)
    hours = sorted(r[3] for r in rent if r[3] is not None)
    assert doc["figures"]["rent"]["first"] == f"2026-01-01T{hours[0]:02d}:30:00+00:00"
    assert doc["figures"]["rent"]["last"] == f"2026-01-01T{hours[-1]:02d}:30:00+00:00"
    code, out = run(capsys, monkeypatch, width, "catchup", "--store", str(store))
    assert code == 0
    figures = [doc["checksum"]]
    for name, v in doc["categories"].items():
        f = doc["figures"][name]
        figures += [grouped(v["count"]), grouped(v["total"]), grouped(f["min"]), grouped(f["max"])]
        figures += [f["first"], f["last"]]
    assert_whole(out, figures)


@pytest.mark.parametrize("width", WIDTHS)
def test_snapshots_status_and_check_keep_every_figure_whole(
    width: int,
    sources: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, store = sources
    assert main(["catchup", "--store", str(store)]) == 0
    capsys.readouterr()
    snapshots = json_of(capsys, "snapshots", "--store", str(store))
    code, out = run(capsys, monkeypatch, width, "snapshots", "--store", str(store))
    assert code == 0
    rows = snapshots["snapshots"]
    assert rows
    assert_whole(out, [s["checksum"] for s in rows] + [grouped(s["position"]) for s in rows])
    status = json_of(capsys, "status", "--store", str(store))
    code, out = run(capsys, monkeypatch, width, "status", "--store", str(store))
    assert code == 0
    assert_whole(out, [grouped(status["bytes"]), grouped(status["events"])])
    code, out = run(capsys, monkeypatch, width, "check", "--store", str(store))
    assert code == 0
    assert_whole(out, [grouped(status["events"])])


def test_limit_lists_events_in_source_order(
    sources: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, store = sources
    base = ["verify", "--store", str(store), "--source", str(archive)]
    default = json_of(capsys, *base)
    assert default["missing_events"] == 30 and len(default["missing"]) == 20
    few = json_of(capsys, *base, "--limit", "3")
    assert [e["line"] for e in few["missing"]] == [31, 32, 33]
    every = json_of(capsys, *base, "--limit", "0")
    assert [e["line"] for e in every["missing"]] == list(range(31, 61))
    assert len(every["extra"]) == every["extra_events"] == 1
    _code, out = run(capsys, monkeypatch, 120, *base, "--limit", "3")
    assert "first 3 of 30 shown (--limit 0 for all)" in out
    assert "evt-000033" not in out and "evt-000032" in out
    plan = json_of(capsys, "reconcile", str(archive), "--store", str(store), "--dry-run")
    assert len(plan["plan"]) == 20
    for limit, length in (("5", 5), ("0", 30)):
        doc = json_of(
            capsys, "reconcile", str(archive), "--store", str(store), "--dry-run", "--limit", limit
        )
        assert len(doc["plan"]) == length and len(doc["before"]["missing"]) == length


def test_extra_events_are_listed_by_source_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two sources of extra events: the samples come by line, not in the order recorded."""
    archive = write(tmp_path / "archive.jsonl", [("a", "rent", "1", None)])
    store = tmp_path / "store"
    for name in ("one", "two"):
        rows: list[Row] = [(f"{name}-{i}", "rent", "2", None) for i in range(5)]
        source = write(tmp_path / f"{name}.jsonl", rows)
        assert main(["ingest", str(source), "--store", str(store)]) == 0
    capsys.readouterr()
    doc = json_of(capsys, "verify", "--store", str(store), "--source", str(archive), "--limit", "4")
    assert [e["line"] for e in doc["extra"]] == [1, 1, 2, 2]


def test_usage_of_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--source", "x", "--limit", "-1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "expected 0 or a positive integer, not '-1'" in err


def test_reports_speak_in_the_singular_of_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write(
        tmp_path / "archive.jsonl", [("a", "rent", "1", None), ("b", "rent", "2", None)]
    )
    feed = write(tmp_path / "feed.jsonl", [("a", "rent", "1", None)])
    store = str(tmp_path / "store")
    assert main(["ingest", str(feed), "--store", store]) == 0
    _code, out = run(capsys, monkeypatch, 120, "rebuild", "--store", store, "--workers", "1")
    assert "1 event applied" in out and "1 worker" in out
    _code, out = run(capsys, monkeypatch, 120, "verify", "--store", store, "--source", str(archive))
    assert "1 category differs" in out and "1 event missing" in out
    _code, out = run(
        capsys, monkeypatch, 120, "reconcile", str(archive), "--store", store, "--dry-run"
    )
    assert "1 run of missing events" in out and "1 missing event in 1 gap" in out
    assert "would replay 1 event;" in out
    assert not re.search(r"\b1 (events|runs|categories|gaps|workers)\b", out)


@pytest.mark.parametrize("width", (60, 80))
def test_the_demo_cuts_no_figure(width: int, tmp_path: Path) -> None:
    """The demo's own data has long totals."""
    done = subprocess.run(
        [sys.executable, "-m", "eventfold", "demo", "--dir", str(tmp_path / "demo")],
        env=dict(os.environ, COLUMNS=str(width)),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "…" not in done.stdout, done.stdout
    checksums = re.findall(r"\b[0-9a-f]{64}\b", done.stdout)
    assert len(checksums) >= 4, done.stdout  # verify, twice: expected and actual, whole
    totals = re.findall(r"\d{1,3}(?:,\d{3})+\.\d+", done.stdout)
    assert len(totals) >= 20, done.stdout
    # Piped, nothing wraps the lines again: each fits the width, or is one unbreakable
    # token (a checksum) or a command to paste, printed whole for the terminal to wrap.
    for line in done.stdout.splitlines():
        token = line.strip()
        pasted = token.startswith(("eventfold ", sys.executable, ".venv/", "("))
        if len(line) > width and not pasted:
            assert re.fullmatch(r"[0-9a-f]{64}", token) or " " not in token, line


@pytest.mark.parametrize("width", [30, 40, *WIDTHS])
def test_a_number_inside_text_is_not_folded(width: int) -> None:
    """A conflict's "category  value  line N" folds between words, never inside the value."""
    said = "a-very-long-category-name  1,234,567,890.125  line 1,234,567"
    columns = [Col("id", "key"), Col("source says", "text"), Col("store says", "text")]
    columns.append(Col("note", "text"))
    table = FigureTable(columns, [["evt-1", said, said, said]] * 2)
    assert_whole(render(table, width), ["1,234,567,890.125", "1,234,567"])
