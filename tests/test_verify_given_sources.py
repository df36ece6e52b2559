"""`verify` and `reconcile` over many sources say what is true and suggest what the user
gave: next steps name the sources as given (not each file), an empty source list is one
clear error, both sides of a conflicting event name their file, a reconcile that leaves
only extra events says only that, and a malformed checksum is a usage error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from htmlparse import parse

from clihelpers import run, write_rows

ERROR = "eventfold: unusable source: "


@pytest.fixture
def here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Working in ``tmp_path``, started as ``.venv/bin/eventfold``: ``clean/`` holds four
    files (two in ``clean/sub/``) of five events each; the store ``wf`` holds the first."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/eventfold"])
    monkeypatch.setenv("COLUMNS", "400")  # the terminal's lines are not folded
    for n, name in enumerate(["clean/p1.jsonl", "clean/p2.jsonl", "clean/sub/p3.jsonl"]):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        write_rows(Path(name), [(n * 10 + i, "ab"[i % 2], f"{i}.5") for i in range(5)])
    write_rows(Path("clean/sub/p4.jsonl"), [(30 + i, "c", "1") for i in range(5)])
    assert run(capsys, "ingest", "clean/p1.jsonl", "--store", "wf", "--quiet")[0] == 0
    return tmp_path.resolve()


def one_line(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_verify_suggests_reconcile_of_the_sources_as_given_not_each_file(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = ("clean/", "-r", "--order", "mtime", "--force")
    code, out, _ = run(capsys, "verify", *given, "--store", "wf", "--html", "v.html")
    assert code == 1
    step = [line for line in out.splitlines() if "eventfold reconcile" in line]
    assert len(step) == 1 and "p2.jsonl" not in step[0]
    shown = ".venv/bin/eventfold reconcile clean/ -r --order mtime --force --store wf replays"
    assert shown in one_line(step[0])
    page = Path("v.html").read_text(encoding="utf-8")
    shared = f"eventfold reconcile {here / 'clean'} -r --order mtime --force --store {here / 'wf'}"
    assert f"<code>{shared}</code>" in page and "p2.jsonl" not in parse(page).texts["next"]
    assert "<dt>source</dt>" not in page  # no row per file: the sources as given, and a count
    facts = one_line(parse(page).visible)
    assert f"sources {here / 'clean'} -r --order mtime --force files read 4" in facts


def test_reconcile_json_next_step_names_the_list_given_not_its_files(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("list.txt").write_text("clean/sub\nclean/p2.jsonl\n")
    write_rows(Path("stray.jsonl"), [(99, "z", "7")])
    assert run(capsys, "ingest", "stray.jsonl", "--store", "wf", "--quiet")[0] == 0
    code, out, _ = run(capsys, "reconcile", "--sources-from", "list.txt", "--store", "wf", "--json")
    assert code == 1
    step = json.loads(out)["unresolved"]["next_step"]
    wanted = f"`eventfold verify --sources-from {here / 'list.txt'} --store {here / 'wf'}`"
    assert wanted in step and "p3.jsonl" not in step


def test_reconcile_leaving_only_extra_events_says_only_that(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(Path("stray.jsonl"), [(99, "z", "7")])
    assert run(capsys, "ingest", "stray.jsonl", "--store", "wf", "--quiet")[0] == 0
    code, out, _ = run(capsys, "reconcile", "clean/", "--store", "wf", "--html", "r.html")
    assert code == 1
    terminal = one_line(out)
    assert "2 sources, as given: clean/ before:" in terminal  # not each file's name
    shown = " ".join(parse(Path("r.html").read_text(encoding="utf-8")).texts["next"].split())
    for text in (terminal, shown):
        assert "not done: 1 extra event (in the store, not in the sources): reconcile" in text
        assert "conflicting event" not in text and "both versions" not in text
        assert "next: see the extra events with" in text
    assert ".venv/bin/eventfold verify --source clean/ --store wf (each with the file" in terminal
    code, out, _ = run(capsys, "reconcile", "clean/", "--store", "wf", "--json")
    left = json.loads(out)["unresolved"]
    assert (left["conflicting_events"], left["extra_events"]) == (0, 1)
    assert left["next_step"].startswith("see the extra events with `eventfold verify --source ")
    assert "both versions" not in left["next_step"]


@pytest.mark.parametrize("command", ["verify", "reconcile"])
def test_an_empty_source_list_is_one_clear_line(
    here: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    Path("empty.txt").write_text("\n\n")
    code, out, err = run(capsys, command, "--sources-from", "empty.txt", "--store", "wf")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(ERROR) and "empty.txt" in err, err
    assert "names no source" in err


def test_both_sides_of_a_conflicting_event_name_their_file(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(Path("other.jsonl"), [(0, "a", "99")])  # id 0 is 0.5 in clean/p1.jsonl
    code, out, _ = run(capsys, "verify", "other.jsonl", "clean/p2.jsonl", "--store", "wf")
    assert code == 1
    row = [one_line(line) for line in out.splitlines() if "99" in line and "│ 0 " in line]
    stored = f"a 0.5 {here / 'clean' / 'p1.jsonl'} line 1"
    assert row == [f"0 a 99 {here / 'other.jsonl'} line 1 {stored}"]


def test_a_malformed_expected_checksum_is_a_usage_error(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(capsys, "verify", "--expected-checksum", "abc", "--store", "wf")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(
        "eventfold: usage: argument --expected-checksum: expected a SHA-256 in hex "
        "(64 hex digits), not 'abc'\n"
    )
    code, out, _ = run(capsys, "verify", "clean/p1.jsonl", "--store", "wf", "--json")
    assert code == 0
    checksum = json.loads(out)["actual_checksum"]
    given = f" {checksum.upper()} "  # case and surrounding spaces do not matter
    assert run(capsys, "verify", "--expected-checksum", given, "--store", "wf")[0] == 0
