"""`eventfold ingest`: the JSON document, the report, exit codes, standard input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clihelpers import run
from eventfold.cli import main
from storehelpers import flip_byte, segment

LINES = (
    b'{"id": "a", "category": "rent", "value": 12.50}\n'
    b'{"id": "b", "category": "[bold red]x[/] \\u001b[31mred", "value": 0.1}\n'
    b'{"id": "a", "category": "rent", "value": 12.5}\n'
    b'{"id": "a", "category": "food", "value": 1}\n'
    b"this is not json\n"
    b'{"id": "c", "category": "rent", "val'
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(LINES)
    return path


def test_json_document_counts_everything(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ingest", str(source), "--store", str(tmp_path / "s"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert {k: doc[k] for k in ("read", "ingested", "duplicates", "conflicts", "invalid")} == {
        "read": 5,
        "ingested": 2,
        "duplicates": 1,
        "conflicts": 1,
        "invalid": 1,
    }
    assert doc["pending_tail"] == {"line": 6, "offset": LINES.rindex(b"\n") + 1, "bytes": 36}
    assert doc["position"] == LINES.rindex(b"\n") + 1
    assert doc["invalid_lines"][0]["line"] == 5
    assert doc["conflicting_events"][0]["later"]["category"] == "food"
    code, out, _ = run(capsys, "ingest", str(source), "--store", str(tmp_path / "s"), "--json")
    assert (code, json.loads(out)["ingested"]) == (0, 0)


def test_report_shows_untrusted_text_verbatim_and_inert(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source.write_bytes(
        LINES.replace(b'"id": "a", "category": "food"', b'"id": "b", "category": "[blink]y"')
    )
    code, out, _ = run(capsys, "ingest", str(source), "--store", str(tmp_path / "s"))
    assert code == 0
    assert "[bold red]x[/] \\x1b[31mred" in out  # markup shown as text, escape made visible
    assert "\x1b" not in out
    for label in (
        "read",
        "ingested",
        "duplicates",
        "conflicts",
        "invalid",
        "pending tail",
        "elapsed",
        "events/s",
    ):
        assert label in out


def test_unusable_sources_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "s")
    code, out, err = run(capsys, "ingest", str(tmp_path / "missing.jsonl"), "--store", store)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "missing.jsonl" in err and "Traceback" not in err
    assert run(capsys, "ingest", str(tmp_path), "--store", store)[0] == 2


def test_rewritten_source_exits_2_and_names_the_way_out(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "s")
    assert run(capsys, "ingest", str(source), "--store", store)[0] == 0
    source.write_bytes(LINES.replace(b"12.50", b"99.99"))
    code, _, err = run(capsys, "ingest", str(source), "--store", store)
    assert code == 2 and "rewritten" in err and "--rescan" in err
    assert run(capsys, "ingest", str(source), "--store", store, "--rescan", "--json")[0] == 0


def test_bad_batch_is_a_usage_error(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(source), "--batch", "0"])
    assert exit_info.value.code == 2


def test_damaged_store_exits_3(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    flip_byte(segment(store, log="eventfold_events"), 40)
    other = tmp_path / "more.jsonl"
    other.write_bytes(b'{"id": "z", "category": "rent", "value": 1}\n')
    code, _, err = run(capsys, "ingest", str(other), "--store", str(store))
    assert code == 3
    assert "damaged store" in err and "00000001.seg" in err and "offset" in err


def test_standard_input(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventfold",
            "ingest",
            "-",
            "--store",
            str(tmp_path / "s"),
            "--json",
        ],
        input=b'{"id": 1, "category": "x", "value": 2}\n{"id": 2, "category": "x", "value": 3}',
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["source"], doc["ingested"], doc["pending_tail"]) == ("-", 2, None)
