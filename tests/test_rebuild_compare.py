"""``rebuild --compare``: a new generation is compared with the one in use before it
replaces it; ``eventfold generations`` lists what is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    source = write_rows(
        tmp_path / "events.jsonl",
        [(1, "rent", "1200"), (2, "food", "12.50"), (3, "food", "7.25"), (4, "fun", "30")],
    )
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(source), "--store", store)[0] == 0
    assert run(capsys, "rebuild", "--store", store)[0] == 0
    return store


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def generations(capsys: pytest.CaptureFixture[str], store: str) -> list[tuple[str, bool]]:
    doc = json_of(capsys, "generations", "--store", store)[1]
    return [(g["generation"], g["current"]) for g in doc["generations"]]


def test_unchanged_code_switches(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = json_of(capsys, "rebuild", "--store", store, "--compare")
    compared = doc["compare"]
    assert code == 0 and compared["equal"] and compared["switched"]
    assert compared["current_generation"] == "gen-00000001"
    assert doc["generation"] == compared["new_generation"] == "gen-00000002"
    assert compared["differences"] == [] and compared["position"] == doc["position"]
    assert generations(capsys, store) == [("gen-00000002", True)]
    out = run(capsys, "rebuild", "--store", store, "--compare")[1]
    assert "equals gen-00000002" in out and "switched" in out


def test_a_changed_projection_shows_the_change_and_keeps_the_old_generation(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json_of(capsys, "catchup", "--store", store)[1]["checksum"]
    changed = ("--projection", "userprojections:WithoutRent")
    code, doc = json_of(capsys, "rebuild", "--store", store, "--compare", *changed)
    compared = doc["compare"]
    assert code == 1 and not compared["equal"] and not compared["switched"]
    (row,) = compared["differences"]
    assert row["key"] == {"category": "rent"} and row["status"] == "missing"
    assert row["delta"] == {"count": -1, "total": "-1200"}
    assert compared["current_checksum"] == before != compared["new_checksum"]
    assert generations(capsys, store) == [("gen-00000001", True), ("gen-00000002", False)]
    assert json_of(capsys, "catchup", "--store", store)[1]["checksum"] == before  # still in use
    code, out, _ = run(capsys, "rebuild", "--store", store, "--compare", *changed)
    assert code == 1 and "1 row the new code changes" in out and "MISSING" in out
    assert "not switched: gen-00000001 stays in use" in out.replace("\n", " ")
    code, doc = json_of(capsys, "rebuild", "--store", store, "--compare", "--switch", *changed)
    assert code == 0 and doc["compare"]["switched"] and not doc["compare"]["equal"]
    assert generations(capsys, store) == [("gen-00000004", True)]


def test_a_state_the_new_code_cannot_read_compares_by_checksum(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reshaped = ("--projection", "userprojections:Reshaped")
    code, doc = json_of(capsys, "rebuild", "--store", store, "--compare", *reshaped)
    compared = doc["compare"]
    assert code == 0 and compared["equal"] and compared["switched"]  # same totals, version 2
    assert not compared["by_rows"] and compared["current_version"] == 1
    assert "cannot read a state of version 1" in compared["why_checksum_only"]


def test_no_generation_in_use_and_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(tmp_path / "e.jsonl", [(1, "rent", "5")])
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(source), "--store", store)[0] == 0
    assert json_of(capsys, "generations", "--store", store)[1]["generations"] == []
    code, doc = json_of(capsys, "rebuild", "--store", store, "--compare")
    assert (
        code == 0
        and doc["compare"] is None
        and generations(capsys, store) == [("gen-00000001", True)]
    )
    code, _, err = run(capsys, "rebuild", "--store", store, "--switch")
    assert code == 2 and "--switch: needs --compare" in err
