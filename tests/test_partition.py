"""Partitioned ingest: N runs split one source by category, without overlap, exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_store
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.partition import Partition, partition_of
from ingesthelpers import reference_totals, store_totals

RATES = SampleRates(duplicates=0.04, conflicts=0.03, invalid=0.03, out_of_order=0.3)


def test_a_category_belongs_to_one_partition_by_a_stable_hash() -> None:
    # The assignment is a public contract: machines and releases must agree on it.
    assert [partition_of(c, 3) for c in ("rent", "groceries", "café", "x")] == [3, 1, 1, 1]
    assert [partition_of(c, 2) for c in ("rent", "groceries", "café", "x")] == [1, 1, 2, 2]
    assert Partition.parse("2/3") == Partition(2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="partition"):
            Partition.parse(bad)


def ingest(
    store: Path, source: Path, partition: Partition | None, batch: int = 50
) -> dict[str, Any]:
    app = open_store(str(store))
    try:
        with Ingestor(app, str(store), batch=batch, partition=partition) as ingestor:
            return ingestor.run(str(source)).to_json()
    finally:
        app.close()


def test_partitions_together_record_exactly_what_one_run_records(tmp_path: Path) -> None:
    source = tmp_path / "s.jsonl"
    with source.open("wb") as f:
        write_sample(f, 3000, rates=RATES, seed=21)
    whole = ingest(tmp_path / "one", source, None)
    parts = [ingest(tmp_path / "three", source, Partition(k, 3)) for k in (1, 2, 3)]

    app = open_store(str(tmp_path / "three"))
    try:
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()
    for key in ("ingested", "duplicates", "conflicts"):
        assert sum(p[key] for p in parts) == whole[key], key
    assert [p["invalid"] for p in parts] == [whole["invalid"], 0, 0]  # partition 1 quarantines
    for p in parts:
        assert p["read"] == whole["read"]
        assert (
            p["ingested"]
            + p["duplicates"]
            + p["conflicts"]
            + p["invalid"]
            + (p["other_partitions"])
            == p["read"]
        )
    assert [p["partition"] for p in parts] == ["1/3", "2/3", "3/3"]
    again = [ingest(tmp_path / "three", source, Partition(k, 3)) for k in (1, 2, 3)]
    assert [p["read"] for p in again] == [0, 0, 0]  # each partition resumes where it ended


def test_a_conflict_across_partitions_is_counted_once_by_the_first_ones_owner(
    tmp_path: Path,
) -> None:
    """``x`` belongs to partition 2 of 2 and ``rent`` to partition 1: the first line wins."""
    source = tmp_path / "s.jsonl"
    lines = [
        {"id": "a", "category": "rent", "value": 1},
        {"id": "a", "category": "x", "value": 2},  # a conflict: partition 1 counts it
        {"id": "b", "category": "x", "value": 3},
        {"id": "b", "category": "x", "value": 3},  # a duplicate: partition 2 counts it
        {"id": "c", "category": "x", "value": 4},
        {"id": "c", "category": "rent", "value": 5},  # a conflict: partition 2 counts it
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    one = ingest(tmp_path / "s", source, Partition(1, 2), batch=2)
    two = ingest(tmp_path / "s", source, Partition(2, 2), batch=2)
    assert (one["ingested"], one["duplicates"], one["conflicts"], one["invalid"]) == (1, 0, 1, 1)
    assert (two["ingested"], two["duplicates"], two["conflicts"], two["invalid"]) == (2, 1, 1, 0)
    assert one["conflicting_events"][0]["later"]["category"] == "x"
    app = open_store(str(tmp_path / "s"))
    try:
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()


@pytest.mark.parametrize("loss", ["index deleted", "no checkpoint yet"])
def test_a_partition_that_lost_its_marks_reads_them_again(tmp_path: Path, loss: str) -> None:
    """Partition 2 must not take a later line of its own for an id first seen as 1's.

    ``a`` first occurs in ``rent`` (partition 1 of 2), which has not run yet;
    partition 2 knows it only by its mark in its dedup index, so when the index
    lost it (deleted, or a kill before its first checkpoint), the lines already
    ingested are read again for marks.
    """
    import shutil

    source = tmp_path / "s.jsonl"
    first = [{"id": "a", "category": "rent", "value": 1}, {"id": "b", "category": "x", "value": 2}]
    source.write_text("".join(json.dumps(line) + "\n" for line in first))
    store = tmp_path / "s"
    assert ingest(store, source, Partition(2, 2))["ingested"] == 1
    dedup = store / "dedup-2of2"
    assert json.loads((dedup / "CHECKPOINT").read_text().splitlines()[0])["marks"]
    if loss == "index deleted":
        shutil.rmtree(dedup)
    else:
        (dedup / "CHECKPOINT").unlink()
    with source.open("a") as f:
        f.write(json.dumps({"id": "a", "category": "x", "value": 3}) + "\n")  # not a's first
    again = ingest(store, source, Partition(2, 2))
    assert (again["ingested"], again["other_partitions"]) == (0, 1)
    assert ingest(store, source, Partition(1, 2))["conflicts"] == 1
    app = open_store(str(store))
    try:
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()


def test_rescan_and_partition_do_not_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventfold.cli import main

    source = tmp_path / "s.jsonl"
    source.write_text(json.dumps({"id": "a", "category": "x", "value": 1}) + "\n")
    code = main(
        ["ingest", str(source), "--store", str(tmp_path / "s"), "--partition", "1/2", "--rescan"]
    )
    assert code == 2
    assert "--rescan cannot be combined with --partition" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it
        main(["ingest", str(source), "--store", str(tmp_path / "s"), "--partition", "3/2"])
    assert exit_info.value.code == 2
    assert "K must be between 1 and N" in capsys.readouterr().err
