"""The reports of ``verify`` (several sources), ``ingest`` (several files), ``sources``
and ``quarantine`` at 60, 80 and 120 columns: every figure whole on one line, and the
reasons of quarantined lines folded between words."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from clihelpers import run, write_rows
from eventfold.reports.text import grouped

WIDTHS = (60, 80, 120)


def figure_in(out: str, figure: str) -> bool:
    """``figure`` on one line, not part of a longer number."""
    return bool(re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d,]|\.\d)", out))


def assert_whole(out: str, figures: list[str], width: int) -> None:
    for figure in figures:
        assert figure_in(out, figure), f"{figure!r} cut at {width}:\n{out}"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Two JSON Lines files with invalid lines, one of them compressed; the big one
    repeats ids."""
    logs = tmp_path / "logs"
    logs.mkdir()
    big = [(f"e{i % 12000}", ["rent", "food"][i % 2], f"{i}.25") for i in range(12345)]
    write_rows(logs / "big-2026-11.jsonl", big)
    other = write_rows(tmp_path / "other.jsonl", [(f"o{i}", "fun", "1") for i in range(3000)])
    bad = '{"id": "x", "value": "1.5"}\nnot json at all\n'
    (logs / "other.jsonl.gz").write_bytes(gzip.compress(other.read_bytes() + bad.encode()))
    return logs


def test_verify_of_several_sources_keeps_every_figure_whole(
    logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "store")
    sources = [str(logs / "big-2026-11.jsonl"), str(logs / "other.jsonl.gz")]
    assert run(capsys, "ingest", sources[1], "--store", store, "--quiet")[0] == 0
    doc = json.loads(run(capsys, "verify", "--store", store, *sources, "--json")[1])
    figures = [grouped(f[key]) for f in doc["files"] for key in ("lines", "valid", "invalid")]
    assert "12,345" in figures and "3,000" in figures
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", str(width))
        code, out, _ = run(capsys, "verify", "--store", store, *sources)
        assert code == 1
        assert_whole(out, figures, width)
        assert not re.search(r"^\s*(lines|valid|repeats)\s*$", out, re.MULTILINE), out


def test_ingest_sources_and_quarantine_keep_every_figure_whole(
    logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for width in WIDTHS:
        store = str(tmp_path / f"store-{width}")
        monkeypatch.setenv("COLUMNS", str(width))
        code, out, _ = run(capsys, "ingest", str(logs), "--store", store)
        assert code == 0
        files = json.loads(run(capsys, "sources", "--store", store, "--json")[1])["sources"]
        figures = [grouped(f[key]) for f in files for key in ("position", "line", "size_on_disk")]
        assert_whole(out, ["12,345", "3,002", "12,000", "345", "2"], width)
        _, out, _ = run(capsys, "sources", "--store", store)
        assert_whole(out, figures, width)
        _, out, _ = run(capsys, "quarantine", "--store", store)
        assert_whole(out, ["3,001", "3,002"], width)
        for word in ("category:", "missing", "malformed:", "character", '"value":'):
            assert re.search(rf"(?<!\S){re.escape(word)}", out), f"{word!r} at {width}:\n{out}"
