"""Many categories: each run's new categories looked up at once and opened without an
aggregate, existing ones continued; snapshots of a large projection state spaced by
its size."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import Eventfold, open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.domain.model import Category
from eventfold.projections.base import RecordedFact, canonical_bytes, state_checksum
from eventfold.projections.builtin import CategoryTotals, HourlyTotals
from eventfold.projections.snapshots import (
    ProjectionSnapshots,
    SnapshotInfo,
    read_document,
    snapshot_bytes,
    snapshot_document,
)
from ingesthelpers import aggregate_totals, reference_totals, store_totals

NAMES = ["café", 'q"uote', "back\\slash", "tab\there", "\u2028", "Überweisung", "[b]m[/b]"]


def write_events(path: Path, first: int, count: int, categories: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("a", encoding="utf-8") as f:
        for i in range(first, first + count):
            k = rng.randint(1, categories)
            name = NAMES[k] if k < len(NAMES) else f"cat-{k:04d}"
            cents = rng.randint(1, 99_999)
            when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
            doc = {"id": f"evt-{i}", "category": name, "timestamp": when.isoformat()}
            f.write(json.dumps(doc)[:-1] + f', "value": {cents // 100}.{cents % 100:02d}}}\n')


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def app(store: Path) -> Iterator[Eventfold]:
    application = open_store(str(store), snapshot_interval=3)
    yield application
    application.close()


def ingest(app: Eventfold, store: Path, source: Path) -> Any:
    with Ingestor(app, str(store), batch=50, reader_process=False) as ingestor:
        return ingestor.run(str(source))


def test_a_second_run_continues_the_categories_of_the_first_and_opens_new_ones(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "a.jsonl"
    write_events(source, 0, 400, 150, seed=1)
    ingest(app, store, source)
    write_events(source, 400, 600, 300, seed=2)  # the same categories, and 150 more
    report = ingest(app, store, source)
    assert report.ingested == 600
    expected = reference_totals(source)
    assert store_totals(app) == expected
    # The library loads every aggregate (through the snapshots taken every 3 versions)
    # with the same figures: versions continued each stream, each opened exactly once.
    assert aggregate_totals(app, sorted(expected)) == expected
    for name, (count, _) in expected.items():
        category: Category = app.repository.get(Category.create_id(name))
        assert (category.name, category.version) == (name, count + 1)


def test_last_versions_reads_versions_only_on_each_backend(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "a.jsonl"
    write_events(source, 0, 60, 5, seed=3)
    ingest(app, store, source)
    popo = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    popo.save(Category("x"))
    for application in (app, popo):
        ids = [Category.create_id(n) for n in [*NAMES[1:5], "x", "absent"]]
        found = application.backend.last_versions(application.process_recorder, ids)
        expected = {}
        for stream_id in ids:
            last = application.recorder.select_events(stream_id, desc=True, limit=1)
            if last:
                expected[stream_id] = last[0].originator_version
        assert found == expected and Category.create_id("absent") not in found
    assert len(found) == 1  # popo: only "x"


@pytest.mark.parametrize("projection", [CategoryTotals(), HourlyTotals()])
def test_a_snapshot_is_the_canonical_json_of_its_document(projection: Any) -> None:
    state = projection.initial()
    for i in range(300):
        when = None if i % 7 == 0 else datetime(2026, 1, 1, i % 24, tzinfo=UTC)
        name = NAMES[i % len(NAMES)]
        projection.recorded(
            state, RecordedFact(i + 1, f"e{i}", name, Decimal(i) / 4, when, "", 0, 0)
        )
    created = datetime(2026, 5, 1, tzinfo=UTC)
    data, checksum, stamp = snapshot_bytes(projection, state, 300, 300, created=created)
    assert data == canonical_bytes(snapshot_document(projection, state, 300, 300, created))
    loaded, info = read_document(projection, data, "here", None)
    assert (info.checksum, info.created, info.size) == (checksum, stamp, len(data))
    assert projection.checksum(loaded) == checksum


def test_snapshots_of_a_large_state_are_spaced_by_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, source = tmp_path / "store", tmp_path / "a.jsonl"
    write_events(source, 0, 20_000, 3000, seed=5)
    app = open_store(str(store))
    with Ingestor(app, str(store), reader_process=False) as ingestor:
        ingestor.run(str(source))
    written: list[SnapshotInfo] = []
    write = ProjectionSnapshots.write

    def counted(self: ProjectionSnapshots, *args: Any, **kwargs: Any) -> SnapshotInfo:
        written.append(write(self, *args, **kwargs))
        return written[-1]

    monkeypatch.setattr(ProjectionSnapshots, "write", counted)
    projector = Projector(app, str(store), CategoryTotals(), snapshot_every=1000)
    report = projector.rebuild(workers=1)
    # The first snapshot comes after 1,000 events (at the end of the page that crossed
    # them); it puts the next one as many events away as half its bytes: with 3,000
    # categories, past the end of the store, where the final one is written.
    assert [info.position for info in written[:-1]] == [written[0].position]
    assert projector.snapshot_gap(written[0]) == written[0].size // 2 > 20_000
    assert written[-1].position == report.position
    # A catch-up spaces its snapshots from the size of the snapshot it loaded.
    write_events(source, 20_000, 10_000, 3000, seed=6)
    with Ingestor(app, str(store), reader_process=False) as ingestor:
        ingestor.run(str(source))
    written.clear()
    report = projector.catchup()
    assert report.events_applied == 10_000 and len(written) == 1  # only the final one
    assert report.checksum == Projector(app, str(store), CategoryTotals()).rebuild().checksum
    app.close()


def test_a_first_ingest_into_an_empty_store_looks_up_no_category(
    app: Eventfold, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty store, every category met for the first time is new: no version is
    looked up (the index would be asked for keys it cannot hold). Into a store that
    holds events, the categories a run meets first are looked up, once each."""
    asked: list[int] = []
    last_versions = type(app.backend).last_versions

    def counted(backend: Any, recorder: Any, ids: Any) -> dict[Any, int]:
        asked.append(len(ids))
        return last_versions(backend, recorder, ids)

    monkeypatch.setattr(type(app.backend), "last_versions", counted)
    source = tmp_path / "a.jsonl"
    write_events(source, 0, 400, 150, seed=1)
    assert ingest(app, store, source).ingested == 400
    assert asked == []
    write_events(source, 400, 300, 300, seed=2)
    assert ingest(app, store, source).ingested == 300
    met = len({json.loads(line)["category"] for line in source.read_text().splitlines()[400:]})
    assert sum(asked) == met
    expected = reference_totals(source)
    assert store_totals(app) == expected
    assert aggregate_totals(app, sorted(expected)) == expected


def test_after_a_failed_commit_categories_are_looked_up_again(
    app: Eventfold, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed commit drops what the run knew of its streams: the next batches look
    their categories up in the store (which holds only what was committed)."""
    source = tmp_path / "a.jsonl"
    write_events(source, 0, 200, 20, seed=4)
    with Ingestor(app, str(store), batch=50, reader_process=False) as ingestor:
        assert ingestor.decider.complete
        insert = ingestor._insert
        calls = 0

        def failing(events: Any, tracking: Any, by_field: Any = None) -> list[int]:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise OSError("disk full")
            return insert(events, tracking, by_field)

        monkeypatch.setattr(ingestor, "_insert", failing)
        with pytest.raises(OSError, match="disk full"):
            ingestor.run(str(source))
        assert not ingestor.decider.complete and not ingestor.decider.streams
        assert ingestor.run(str(source)).ingested == 100
    expected = reference_totals(source)
    assert store_totals(app) == expected
    assert aggregate_totals(app, sorted(expected)) == expected


@pytest.mark.parametrize("projection", [CategoryTotals(), HourlyTotals()])
def test_plain_documents_are_encoded_to_the_canonical_bytes(projection: Any) -> None:
    """The built-in projections' documents (``plain_documents``) are encoded by msgspec:
    the bytes of ``canonical_bytes``, keys in code point order (astral characters
    after the private use area, unlike UTF-16's order) and nothing escaped but what
    JSON requires."""
    state = projection.initial()
    names = [*NAMES, "\ufeff", "\U0001f600", "\ue000", "\x7f", "\x1f", "z\u2029", ""]
    for i, name in enumerate(names * 3):
        when = None if i % 5 == 0 else datetime(2026, 1, 1, i % 24, tzinfo=UTC)
        projection.recorded(state, RecordedFact(i, f"e{i}", name, Decimal(i) / 8, when, "", 0, 0))
    for doc in (projection.to_json(state), projection.canonical(state)):
        assert projection.canonical_json(doc) == canonical_bytes(doc)
    assert projection.checksum(state) == state_checksum(projection.canonical(state))
