"""The deciding rules of ingest, on the library's in-memory store (no file store, no index).

A first occurrence is recorded on its category's stream, in order; a repeated id
is a duplicate (the same content) or a conflict (other content); an invalid line
is quarantined and claims no id; a partition records only its own categories.
The dedup index is stood in for by a dictionary.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent, Tracking

from eventfold.application.app import Eventfold
from eventfold.application.ingest.deciding import OTHER_PARTITION, Commit, Decider, SourceRun
from eventfold.application.ingest.partition import Partition, partition_of
from eventfold.application.ingest.quarantine import QuarantineFile
from eventfold.application.ingest.reading import ParsedBatch, read_batches
from eventfold.application.ingest.report import IngestReport
from eventfold.application.recorded import RECORDED_TOPIC, RecordedCodec
from eventfold.domain.model import Category, Source


class Known:
    """The dedup index's answers, as a dictionary: id key -> (notification id, digest)."""

    def __init__(self) -> None:
        self.ids: dict[bytes, tuple[int, bytes]] = {}
        self.asked = 0

    def lookup(self, keys: list[bytes], digests: list[bytes]) -> dict[int, tuple[int, bytes]]:
        self.asked += len(keys)
        return {i: self.ids[k] for i, k in enumerate(keys) if k in self.ids}


def line(event_id: str, category: str, value: str, stamp: str | None = None) -> str:
    doc: dict[str, Any] = {"id": event_id, "category": category}
    if stamp:
        doc["timestamp"] = stamp
    return json.dumps(doc)[:-1] + f', "value": {value}}}'


def parsed(app: Eventfold, *lines: str) -> ParsedBatch:
    data = "".join(f"{text}\n" for text in lines).encode()
    codec = RecordedCodec(app.mapper)
    (batch,) = list(read_batches(io.BytesIO(data), 0, 0, 1000, codec, "s", growing=False))
    return batch


def decide(app: Eventfold, decider: Decider, tmp_path: Path, *lines: str) -> tuple[Commit, Any]:
    report = IngestReport("s", "s")
    run = SourceRun(
        Source("s"), "s", None, report, QuarantineFile(str(tmp_path / "q"), "s"), None, 0
    )
    return decider.apply(run, parsed(app, *lines)), report


def commit(app: Eventfold, known: Known, decided: Commit) -> None:
    """Store what was decided, and index it, as ingest would."""
    stored = [StoredEvent(*columns) for columns in zip(*decided.events, strict=True)]
    nids = app.process_recorder.insert_events(stored, tracking=Tracking("t", len(known.ids) + 1))
    assert nids is not None
    for key, digest, i in zip(
        decided.recorded_keys, decided.recorded_digests, decided.recorded, strict=True
    ):
        known.ids[key] = (nids[i], digest)


def setup() -> tuple[Eventfold, Known, Decider]:
    app = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    known = Known()
    return app, known, Decider(app, RecordedCodec(app.mapper), known.lookup, None)


def recorded(decided: Commit) -> list[tuple[int, str]]:
    _, versions, topics, _ = decided.events
    return [(versions[i], topics[i]) for i in decided.recorded]


def test_first_occurrences_are_recorded_in_order_on_their_categories(tmp_path: Path) -> None:
    app, known, decider = setup()
    decided, report = decide(
        app, decider, tmp_path, line("a", "x", "1"), line("b", "x", "2"), line("c", "y", "3")
    )
    assert recorded(decided) == [(2, RECORDED_TOPIC), (3, RECORDED_TOPIC), (2, RECORDED_TOPIC)]
    assert (report.read, report.ingested) == (3, 3)
    assert decided.due == []  # no snapshot falls due (every 10,000 events)
    commit(app, known, decided)
    x = decider.category("x")  # its Opened event from the store, and what the run added
    assert (x.name, x.version, x.count, str(x.total)) == ("x", 3, 2, "3")
    assert x.id == Category.create_id("x")


def test_a_repeat_in_the_batch_is_a_duplicate_or_a_conflict_and_the_first_stands(
    tmp_path: Path,
) -> None:
    app, _, decider = setup()
    decided, report = decide(
        app,
        decider,
        tmp_path,
        line("a", "x", "1.50"),
        line("a", "x", "1.5"),
        line("a", "x", "2"),
        line("a", "y", "1.5"),
    )
    assert len(decided.recorded) == 1
    assert (report.duplicates, report.conflicts) == (1, 2)
    assert [c.later["value"] for c in report.conflict_samples] == ["2", "1.5"]


def test_a_repeat_of_a_stored_id_with_its_digest_is_a_duplicate_without_reading_the_store(
    tmp_path: Path,
) -> None:
    app, known, decider = setup()
    first, _ = decide(app, decider, tmp_path, line("a", "x", "1", "2026-01-01T00:00:00Z"))
    known.ids = {first.recorded_keys[0]: (999_999, first.recorded_digests[0])}  # not stored
    again, report = decide(app, decider, tmp_path, line("a", "x", "1", "2026-01-01T00:00:00Z"))
    assert (report.duplicates, report.conflicts, len(again.recorded)) == (1, 0, 0)


def test_a_stored_id_with_other_content_reads_the_store_to_tell_spelling_from_conflict(
    tmp_path: Path,
) -> None:
    app, known, decider = setup()
    first, _ = decide(app, decider, tmp_path, line("a", "x", "1.5"), line("b", "x", "2"))
    commit(app, known, first)
    again, report = decide(app, decider, tmp_path, line("a", "x", "1.50"), line("b", "x", "3"))
    assert (report.duplicates, report.conflicts, len(again.recorded)) == (1, 1, 0)
    (conflict,) = report.conflict_samples
    assert conflict.first["value"] == "2" and conflict.first["notification_id"] > 0


def test_an_invalid_line_is_quarantined_and_claims_no_id(tmp_path: Path) -> None:
    app, _, decider = setup()
    decided, report = decide(
        app, decider, tmp_path, '{"id": "a", "category": "x"}', line("a", "x", "1")
    )
    assert (report.invalid, report.ingested) == (1, 1)
    assert decided.invalid[0].reason == "value: missing"
    topics = decided.events.topics
    assert any(topic.endswith("Source.Quarantined") for topic in topics)


def test_a_partition_records_only_its_categories_and_counts_only_its_repeats(
    tmp_path: Path,
) -> None:
    names = [f"c{i}" for i in range(40)]
    mine = [n for n in names if partition_of(n, 2) == 1][:2]
    theirs = [n for n in names if partition_of(n, 2) == 2][:2]
    app = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    known = Known()
    decider = Decider(app, RecordedCodec(app.mapper), known.lookup, Partition.parse("1/2"))
    decided, report = decide(
        app,
        decider,
        tmp_path,
        line("a", mine[0], "1"),
        line("b", theirs[0], "1"),
        line("b", theirs[0], "1"),
        "not json",
    )
    assert len(decided.recorded) == 1 and len(decided.elsewhere_keys) == 1
    assert (report.other_partitions, report.duplicates, report.invalid) == (2, 0, 1)
    known.ids = {decided.elsewhere_keys[0]: (OTHER_PARTITION, decided.elsewhere_digests[0])}
    again, report = decide(app, decider, tmp_path, line("b", theirs[0], "9"))
    assert not again.recorded
    assert (report.other_partitions, report.conflicts) == (1, 0)
    assert Category.create_id(mine[0]) in {oid for oid in decided.events.originator_ids}
