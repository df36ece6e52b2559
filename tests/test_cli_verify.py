"""`eventfold verify`, `reconcile` and `demo`: reports, JSON, exit codes."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows
from processes import HANG

ROWS = [(i, ["rent", "food", "fun"][i % 3], f"{i}.25") for i in range(60)]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "archive.jsonl", ROWS)


@pytest.fixture
def store(tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store that missed the slice of events 20..29 of the archive."""
    feed = write_rows(tmp_path / "feed.jsonl", ROWS[:20] + ROWS[30:])
    assert run(capsys, "ingest", str(feed), "--store", str(tmp_path / "store"))[0] == 0
    return tmp_path / "store"


def test_missing_slice_is_a_mismatch_with_per_category_deltas(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", "--store", str(store), "--source", str(archive), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["status"] == "mismatch" and doc["missing_events"] == 10
    assert (doc["extra_events"], doc["conflicting_events"]) == (0, 0)
    deltas = {d["category"]: d["delta"] for d in doc["differences"]}
    missing = {c: [r for r in ROWS[20:30] if r[1] == c] for c in ("rent", "food", "fun")}
    for category, rows in missing.items():
        total = sum(float(v) for _, _, v in rows)
        assert deltas[category]["count"] == -len(rows)
        assert float(deltas[category]["total"]) == -total
        diff = next(d for d in doc["differences"] if d["category"] == category)
        assert diff["status"] == "changed"
    assert doc["expected_checksum"] != doc["actual_checksum"]


def test_extra_and_changed_events_are_reported(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_rows(tmp_path / "other.jsonl", ROWS[:20] + ROWS[30:] + [(999, "new", "5")])
    changed = [(i, c, "0" if i == 5 else v) for i, c, v in ROWS[:20] + ROWS[30:]]
    source = write_rows(tmp_path / "changed.jsonl", changed)
    assert run(capsys, "ingest", str(other), "--store", str(store))[0] == 0
    code, out, _ = run(capsys, "verify", "--store", str(store), "--source", str(source), "--json")
    doc = json.loads(out)
    assert code == 1
    assert (doc["missing_events"], doc["extra_events"], doc["conflicting_events"]) == (0, 1, 1)
    statuses = {d["category"]: d["status"] for d in doc["differences"]}
    assert statuses == {"new": "extra", "fun": "changed"}
    assert doc["conflicting"][0]["id"] == "5"


def test_reconcile_repairs_and_a_second_run_replays_nothing(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "reconcile", str(archive), "--store", str(store), "--dry-run", "--json"
    )
    dry = json.loads(out)
    assert (code, dry["missing"], dry["replayed"]) == (1, 10, 0)
    where = str(archive.resolve())
    assert dry["gaps"] == [{"first_line": 21, "last_line": 30, "events": 10, "source": where}]
    code, out, _ = run(capsys, "reconcile", str(archive), "--store", str(store), "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["replayed"]) == (0, "match", 10)
    assert doc["before"]["status"] == "mismatch" and doc["after"]["status"] == "match"
    code, out, _ = run(capsys, "reconcile", str(archive), "--store", str(store), "--json")
    again = json.loads(out)
    assert (code, again["missing"], again["replayed"], again["after"]) == (0, 0, 0, None)
    code, out, _ = run(capsys, "reconcile", str(archive), "--store", str(store))
    assert "nothing to replay" in out and "MATCH" in out


def test_expected_checksum_and_expected_document(
    store: Path, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "rebuild", "--store", str(store), "--json")
    rebuilt = json.loads(out)
    reference = rebuilt["checksum"]
    assert run(capsys, "verify", "--store", str(store), "--expected-checksum", reference)[0] == 0
    wrong = "0" * 64
    code, out, _ = run(capsys, "verify", "--store", str(store), "--expected-checksum", wrong)
    assert code == 1 and "MISMATCH" in out
    document = tmp_path / "expected.json"
    document.write_text(json.dumps(rebuilt))
    assert run(capsys, "verify", "--store", str(store), "--expected", str(document))[0] == 0
    rebuilt["categories"]["rent"]["total"] = "1"
    document.write_text(json.dumps(rebuilt))
    code, out, _ = run(
        capsys, "verify", "--store", str(store), "--expected", str(document), "--json"
    )
    assert code == 1
    assert [d["category"] for d in json.loads(out)["differences"]] == ["rent"]


def test_hostile_category_names_print_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["[bold red]x[/bold red]", "\x1b[31mred\x1b[0m", "[link=http://e.vil]y[/link]"]
    source = write_rows(tmp_path / "s.jsonl", [(i, n, "1") for i, n in enumerate(names)])
    archive = write_rows(tmp_path / "a.jsonl", [(i, n, "2") for i, n in enumerate(names)])
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    code, out, _ = run(capsys, "verify", "--store", str(store), "--source", str(archive))
    assert code == 1
    assert "[bold red]x[/bold red]" in out
    assert "\\x1b[31mred\\x1b[0m" in out and "\x1b" not in out
    assert "[link=http://e.vil]y[/link]" in out


def test_html_and_svg_reports_are_written(
    store: Path, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html, svg = tmp_path / "report.html", tmp_path / "report.svg"
    code, _, _ = run(
        capsys,
        "verify",
        "--store",
        str(store),
        "--source",
        str(archive),
        "--html",
        str(html),
        "--svg",
        str(svg),
        "--all",
    )
    assert code == 1
    text = html.read_text()
    assert "<html" in text.lower() and "MISMATCH" in text and "rent" in text
    assert svg.read_text().lstrip().startswith("<svg")


def test_usage_errors_exit_2(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "verify", "--store", str(store), "--source", str(tmp_path / "none.jsonl")
    )
    assert (code, out) == (2, "") and "none.jsonl" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:  # a malformed argument: a usage error
        run(capsys, "verify", "--store", str(store), "--expected-checksum", "xyz")
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith("not 'xyz'\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert run(capsys, "verify", "--store", str(store), "--expected", str(bad))[0] == 2
    code, out, err = run(capsys, "verify", "--store", str(store))  # no expected state
    assert (code, out) == (2, "") and "verify needs one of --source FILE" in err


def test_quiet_prints_only_the_result(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "verify", "--store", str(store), "--source", str(archive), "--quiet"
    )
    assert code == 1 and out.startswith("MISMATCH") and out.count("\n") <= 3 and err == ""


def test_the_demo_tells_the_story_and_every_command_it_suggests_runs_as_printed(
    tmp_path: Path,
) -> None:
    """As ``make demo`` runs it: the venv's script by a relative path, the venv not on PATH."""
    script = Path(sys.executable).with_name("eventfold")
    assert script.is_file(), "eventfold is not installed beside this interpreter"
    cwd = script.parent.parent.parent  # where .venv/bin/eventfold is a relative path
    env = dict(
        os.environ,
        COLUMNS="400",  # no panel wraps a suggested command
        PATH=os.pathsep.join(
            p
            for p in os.environ["PATH"].split(os.pathsep)
            if Path(p).resolve() != script.parent.resolve()
        ),
    )

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        """``command`` as a user types it, from the clone, the venv not on PATH."""
        return subprocess.run(
            command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG
        )

    done = shell(f"{os.path.relpath(script, cwd)} demo --dir {shlex.quote(str(tmp_path / 'demo'))}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    for text in (
        "killed after",
        "resumes",
        "catch up",
        "MISMATCH",
        "replayed",
        "MATCH",
        "the totals are proved",
    ):
        assert text in done.stdout
    explore = done.stdout.split("explore it:\n", 1)[1].splitlines()
    suggested = [line.strip() for line in explore if not line.strip().startswith("(")]
    suggested += [m.strip() for m in re.findall(r"│ (.*) replays what is missing", done.stdout)]
    assert len(suggested) == 5
    for command in suggested:
        assert command.startswith(os.path.relpath(script, cwd) + " "), command
        ran = shell(command)
        assert ran.returncode == 0, f"{command}: {ran.stdout}{ran.stderr}"


def test_every_command_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from eventfold.cli import build_parser

    parser = build_parser()
    commands: Any = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert "example" in (sub.epilog or ""), name
    assert "example" in (parser.epilog or "")


def test_reconcile_catches_up_every_projection(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "rebuild", "--store", str(store), "--projection", "hourly_totals")
    code, out, _ = run(capsys, "reconcile", str(archive), "--store", str(store), "--json")
    assert (code, json.loads(out)["projections_caught_up"]) == (0, ["hourly_totals"])
    code, out, _ = run(capsys, "status", "--store", str(store), "--json")
    lags = {p["name"]: p["lag"] for p in json.loads(out)["projections"]}
    assert code == 0 and lags == {"category_totals": 0, "hourly_totals": 0}


def test_status_report(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--store", str(store), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["projections"] == [] and doc["events"] > 50 and doc["bytes"] > 0
    run(capsys, "rebuild", "--store", str(store))
    code, out, _ = run(capsys, "status", "--store", str(store))
    assert code == 0 and "category_totals" in out and "1 valid of 1" in out


def test_damaged_store_exits_3_for_every_reader(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from storehelpers import flip_byte, segment

    flip_byte(segment(store, log="eventfold_events"), 100)
    for args in (
        ["rebuild"],
        ["catchup"],
        ["status"],
        ["verify", "--source", str(archive)],
        ["reconcile", str(archive)],
    ):
        code, _, err = run(capsys, *args, "--store", str(store))
        assert code == 3, args
        assert "damaged store" in err and "00000001.seg" in err
