"""A command that meets a damaged log names it (exit 3) and leaves the store as it was:
the index it had is not thrown away over evidence it could not read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clihelpers import run


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("command", [["events", "--category", "c3"], ["status"], ["rebuild"]])
def test_a_damaged_log_leaves_the_index_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text(
        "".join(f'{{"id": "{i}", "category": "c{i % 9}", "value": {i}}}\n' for i in range(6000))
    )
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store), "--batch", "500")[0] == 0
    damaged = tmp_path / "damaged"
    shutil.copytree(store, damaged)
    (segment,) = (damaged / "eventfold_events").glob("*.seg")
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    segment.write_bytes(bytes(data))
    index = damaged / "eventfold_events" / "index"
    before = listing(index)
    assert len(before) > 1  # a checkpoint and what it names
    code, _, err = run(capsys, *command, "--store", str(damaged))
    assert code == 3 and "damaged store" in err and str(segment) in err, err
    assert listing(index) == before
