"""What a report says to do next, alike in the terminal, the HTML page and ``--json``:
conflicts left by reconcile, conflicting events found by verify, and commands a
reader elsewhere can paste (``eventfold``, absolute store and source)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from htmlparse import Page, parse

from eventfold.cli import main

LINES = "".join(f'{{"id": {i}, "category": "{"ab"[i % 2]}", "value": {i}.5}}\n' for i in range(10))
CONFLICTING = '{"id": 0, "category": "a", "value": 99}\n{"id": 2, "category": "a", "value": 98}\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture
def here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Working in ``tmp_path`` with a relative store ``wf`` holding events 0, 2, 4, 6, 8,
    started as ``.venv/bin/eventfold`` (as ``make demo`` starts it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/eventfold"])
    monkeypatch.setenv("COLUMNS", "400")  # the terminal's lines are not folded
    Path("feed.jsonl").write_text("".join(LINES.splitlines(keepends=True)[::2]))
    Path("other.jsonl").write_text(CONFLICTING)
    Path("all.jsonl").write_text(LINES)
    assert run(capsys, "ingest", "feed.jsonl", "--store", "wf", "--quiet")[0] == 0
    return tmp_path.resolve()


def next_part(page: Page) -> str:
    return " ".join(page.texts["next"].split())


def test_reconcile_html_carries_what_is_not_done_the_ids_and_the_next_step(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "reconcile", "other.jsonl", "--store", "wf", "--html", "r.html")
    assert code == 1
    shown = next_part(parse(Path("r.html").read_text(encoding="utf-8")))
    terminal = " ".join(out.replace("│", " ").split())
    not_done = "not done: 2 conflicting events (the store and the source disagree), 3 extra"
    assert not_done in shown and not_done in terminal
    assert "conflicting ids: 0, 2" in shown and "conflicting ids: 0, 2" in terminal
    source, store = here / "other.jsonl", here / "wf"
    assert f"next: inspect them with eventfold verify --source {source} --store {store} " in shown
    assert (
        "inspect them with .venv/bin/eventfold verify --source other.jsonl --store wf" in terminal
    )
    decide = "decide which side is right: correct a wrong source"
    assert decide in shown and decide in terminal
    assert "No command to suggest" not in shown


def test_verify_html_says_how_to_decide_conflicting_events(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(capsys, "verify", "--source", "other.jsonl", "--store", "wf", "--html", "v.html")
    assert code == 1
    shown = next_part(parse(Path("v.html").read_text(encoding="utf-8")))
    assert "2 conflicting events (the store and the source disagree)" in shown
    assert "decide which side is right: correct a wrong source; recorded events are never" in shown
    assert "No command to suggest" not in shown


def test_html_commands_start_with_eventfold_and_name_store_and_source_absolutely(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "verify", "--source", "all.jsonl", "--store", "wf", "--html", "v.html")
    assert code == 1
    source, store = here / "all.jsonl", here / "wf"
    assert ".venv/bin/eventfold reconcile all.jsonl --store wf replays" in out  # as given
    page = Path("v.html").read_text(encoding="utf-8")
    assert f"<code>eventfold reconcile {source} --store {store}</code>" in page


def test_reconcile_json_next_step_names_the_store(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "reconcile", "other.jsonl", "--store", "wf", "--json")
    assert code == 1
    step = json.loads(out)["unresolved"]["next_step"]
    assert f"`eventfold verify --source {here / 'other.jsonl'} --store {here / 'wf'}`" in step
