"""Projections: the canonical checksum, rebuild, catch-up, snapshots, generations."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventfold.application.app import Eventfold, open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.domain.model import Category, Source
from eventfold.projections.base import Projection, RecordedFact, canonical_decimal, handles
from eventfold.projections.builtin import CategoryTotals, HourlyTotals


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def app(store: Path) -> Iterator[Eventfold]:
    application = open_store(str(store))
    yield application
    application.close()


def ingest_lines(app: Eventfold, store: Path, source: Path, lines: list[str]) -> None:
    with source.open("a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    with Ingestor(app, str(store), batch=5, reader_process=False) as ingestor:
        ingestor.run(str(source))


def event_line(event_id: str, category: str, value: str, when: str | None = None) -> str:
    stamp = "" if when is None else f', "timestamp": "{when}"'
    return (
        f'{{"id": {json.dumps(event_id)}, "category": {json.dumps(category)}, '
        f'"value": {value}{stamp}}}'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("12.50", "12.5"),
        ("1E+5", "100000"),
        ("-0.00", "0"),
        ("0", "0"),
        ("1.10E-3", "0.0011"),
        ("-7.000", "-7"),
        ("123456789012345678901234567890.10", "123456789012345678901234567890.1"),
    ],
)
def test_canonical_decimal_has_no_exponent_and_no_trailing_zeros(value: str, text: str) -> None:
    assert canonical_decimal(Decimal(value)) == text


def test_checksum_matches_one_computed_by_hand(app: Eventfold, store: Path, tmp_path: Path) -> None:
    ingest_lines(
        app,
        store,
        tmp_path / "s.jsonl",
        [
            event_line("1", "rent", "12.50"),
            event_line("2", "rent", "0.5"),
            event_line("3", "café", "1e2"),
            event_line("4", "zero", "1.5"),
            event_line("5", "zero", "-1.50"),
        ],
    )
    report = Projector(app, str(store), CategoryTotals()).rebuild()
    by_hand = (
        '{"categories":{"café":{"count":1,"total":"100"},'
        '"rent":{"count":2,"total":"13"},"zero":{"count":2,"total":"0"}}}'
    )
    assert report.checksum == hashlib.sha256(by_hand.encode("utf-8")).hexdigest()
    assert report.canonical == json.loads(by_hand)


events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "ü", "[x]"]),
        st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False),
        st.one_of(
            st.none(),
            st.integers(0, 100).map(lambda h: f"2026-01-0{1 + h % 9}T{h % 24:02d}:30:00Z"),
        ),
    ),
    max_size=40,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=events, cut=st.integers(0, 40), every=st.integers(1, 15))
def test_catch_up_equals_rebuild(tmp_path: Path, history: list[Any], cut: int, every: int) -> None:
    directory = tmp_path / os.urandom(4).hex()
    store, source = directory / "store", directory / "s.jsonl"
    directory.mkdir()
    lines = [event_line(f"e{i}", c, str(v), w) for i, (c, v, w) in enumerate(history)]
    application = open_store(str(store))
    try:
        for projection in (CategoryTotals(), HourlyTotals()):
            source.unlink(missing_ok=True)
            ingest_lines(application, store, source, lines[:cut])
            Projector(application, str(store), projection, snapshot_every=every).catchup()
        ingest_lines(application, store, source, lines[cut:])
        for projection in (CategoryTotals(), HourlyTotals()):
            caught_up = Projector(
                application, str(store), projection, snapshot_every=every
            ).catchup()
            rebuilt = Projector(application, str(store), projection).rebuild()
            assert caught_up.checksum == rebuilt.checksum
            assert projection.to_json(caught_up.state) == projection.to_json(rebuilt.state)
            assert caught_up.position == rebuilt.position
    finally:
        application.close()


def test_catch_up_applies_only_the_events_after_the_snapshot(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "s.jsonl"
    ingest_lines(app, store, source, [event_line(f"e{i}", "x", "1") for i in range(50)])
    first = Projector(app, str(store), CategoryTotals()).catchup()
    assert (first.reason, first.events_applied) == ("no earlier rebuild", 50)
    ingest_lines(app, store, source, [event_line(f"f{i}", "y", "2") for i in range(7)])
    second = Projector(app, str(store), CategoryTotals()).catchup()
    assert second.events_applied == 7
    assert second.snapshot_used is not None
    assert second.from_position == second.snapshot_used.position == first.position
    assert second.canonical == {
        "categories": {"x": {"count": 50, "total": "50"}, "y": {"count": 7, "total": "14"}}
    }


def test_damaged_newest_snapshot_falls_back_to_an_older_one(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "s.jsonl"
    ingest_lines(app, store, source, [event_line(f"e{i}", "x", "1") for i in range(10)])
    projector = Projector(app, str(store), CategoryTotals())
    older = projector.rebuild().snapshot_written
    ingest_lines(app, store, source, [event_line("e10", "x", "1")])
    newest = projector.catchup().snapshot_written
    assert older is not None and newest is not None and newest.path != older.path
    data = bytearray(Path(newest.path).read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(newest.path).write_bytes(bytes(data))
    report = projector.catchup()
    assert report.snapshot_used is not None and report.snapshot_used.path == older.path
    assert [s.path for s in report.skipped] == [newest.path]
    assert report.events_applied == 1
    assert report.canonical == {"categories": {"x": {"count": 11, "total": "11"}}}


def test_snapshot_of_another_code_version_is_not_used(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    ingest_lines(app, store, tmp_path / "s.jsonl", [event_line("e", "x", "1")])
    Projector(app, str(store), CategoryTotals()).rebuild()

    class CategoryTotalsV2(CategoryTotals):
        version = 2

    report = Projector(app, str(store), CategoryTotalsV2()).catchup()
    assert report.reason == "no valid snapshot"
    assert "version 1" in report.skipped[0].reason
    assert report.events_applied == 1


def test_snapshot_beyond_the_end_of_the_store_is_refused(tmp_path: Path) -> None:
    big, small = tmp_path / "big", tmp_path / "small"
    for directory, count in ((big, 20), (small, 5)):
        application = open_store(str(directory))
        ingest_lines(
            application,
            directory,
            tmp_path / f"{directory.name}.jsonl",
            [event_line(f"e{i}", "x", "1") for i in range(count)],
        )
        if directory is big:
            Projector(application, str(directory), CategoryTotals()).rebuild()
        application.close()
    os.rename(big / "projections", small / "projections")
    application = open_store(str(small))
    report = Projector(application, str(small), CategoryTotals()).catchup()
    application.close()
    assert "beyond the end of the store" in report.skipped[0].reason
    assert report.canonical == {"categories": {"x": {"count": 5, "total": "5"}}}


def test_crash_mid_rebuild_keeps_the_previous_generation(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "s.jsonl"
    ingest_lines(app, store, source, [event_line(f"e{i}", "x", "1") for i in range(30)])
    projector = Projector(app, str(store), CategoryTotals(), snapshot_every=5)
    before = projector.rebuild()

    class Crashing(CategoryTotals):
        applied = 0

        @handles(Category.Recorded)
        def recorded(self, state: Any, fact: RecordedFact) -> None:
            Crashing.applied += 1
            if Crashing.applied == 20:
                raise KeyboardInterrupt
            super().recorded(state, fact)

    with pytest.raises(KeyboardInterrupt):
        Projector(app, str(store), Crashing(), snapshot_every=5).rebuild()
    assert projector.snapshots.current() == before.generation
    report = projector.catchup()
    assert report.snapshot_used is not None and report.events_applied == 0
    assert report.checksum == before.checksum
    again = projector.rebuild()  # the abandoned generation is cleared away
    generations = sorted(
        p.name
        for p in (store / "projections" / "category_totals").iterdir()
        if p.name.startswith("gen-")
    )
    assert generations == [again.generation]


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_rebuild_equals_serial(
    app: Eventfold, store: Path, tmp_path: Path, workers: int
) -> None:
    lines = [
        event_line(f"e{i}", f"c{i % 7}", f"{i}.{i % 10}", f"2026-02-0{1 + i % 5}T{i % 24:02d}:00Z")
        for i in range(300)
    ]
    ingest_lines(app, store, tmp_path / "s.jsonl", lines)
    for projection in (CategoryTotals(), HourlyTotals()):
        serial = Projector(app, str(store), projection).rebuild()
        parallel = Projector(app, str(store), projection).rebuild(workers=workers)
        assert parallel.checksum == serial.checksum
        assert projection.to_json(parallel.state) == projection.to_json(serial.state)
        assert parallel.events_applied == serial.events_applied == 300


def test_late_and_out_of_order_events_land_in_their_hour(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    ingest_lines(
        app,
        store,
        tmp_path / "s.jsonl",
        [
            event_line("1", "x", "1", "2026-01-01T10:59:59Z"),
            event_line("2", "x", "2", "2026-01-01T09:00:00Z"),
            event_line("3", "x", "4", "2026-01-01T12:30:00+02:00"),
            event_line("4", "x", "8"),
        ],
    )
    report = Projector(app, str(store), HourlyTotals()).rebuild()
    assert report.canonical == {
        "hours": {
            "x": {
                "2026-01-01T09:00:00+00:00": {"count": 1, "total": "2"},
                "2026-01-01T10:00:00+00:00": {"count": 2, "total": "5"},
                "none": {"count": 1, "total": "8"},
            }
        }
    }


class QuarantineCount(Projection[dict[str, int]]):
    """A user projection of another event type (the library's mapper path)."""

    name = "quarantine_count"

    def initial(self) -> dict[str, int]:
        return {}

    @handles(Source.Quarantined)  # type: ignore[attr-defined]
    def quarantined(self, state: dict[str, int], event: Any) -> None:
        state[event.reason.split(" ")[0]] = state.get(event.reason.split(" ")[0], 0) + 1

    def to_json(self, state: dict[str, int]) -> dict[str, int]:
        return state

    def from_json(self, doc: dict[str, int]) -> dict[str, int]:
        return dict(doc)

    def canonical(self, state: dict[str, int]) -> dict[str, Any]:
        return {"reasons": state}

    def merge(self, a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


def test_a_user_projection_of_other_event_types(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    ingest_lines(
        app, store, tmp_path / "s.jsonl", ["nope", event_line("1", "x", "1"), '{"id": 2}', "[1]"]
    )
    report = Projector(app, str(store), QuarantineCount()).rebuild()
    assert report.canonical == {"reasons": {"not": 2, "category:": 1}}
    assert Projector(app, str(store), QuarantineCount()).rebuild(workers=2).checksum == (
        report.checksum
    )


def test_kill_9_mid_rebuild_keeps_the_previous_generation(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    import random

    from eventfold.application.demo.sample import write_sample
    from processes import eventfold, run_until_failpoint  # here: workers import this module

    source = tmp_path / "s.jsonl"
    with source.open("wb") as f:
        write_sample(f, 60_000)
    with Ingestor(app, str(store)) as ingestor:
        ingestor.run(str(source))
    before = Projector(app, str(store), CategoryTotals()).rebuild()
    projection_dir = store / "projections" / "category_totals"
    rng, interrupted = random.Random(5), 0
    # Snapshots every 2,000 events of 57,000: a rebuild passes "after-snapshot" more than
    # 4 times (a page holds at most 8,000 events), then "before-switch" once.
    kills = [("projection.after-snapshot", rng.randint(1, 4)) for _ in range(6)]
    kills += [("projection.after-snapshot", 1), ("projection.before-switch", 1)]
    for point, count in kills:
        rebuild = eventfold(
            "rebuild", "--store", str(store), "--snapshot-every", "2000", "--workers", "1", "--json"
        )
        run_until_failpoint(rebuild, point, count)
        current = (projection_dir / "CURRENT").read_text().strip()
        generations = [p.name for p in projection_dir.iterdir() if p.name.startswith("gen-")]
        assert current == before.generation, f"killed at {point}@{count}, yet it switched"
        assert len(generations) == 2, generations  # the abandoned one beside the current one
        interrupted += 1
        report = Projector(app, str(store), CategoryTotals()).catchup()
        assert report.checksum == before.checksum and report.events_applied == 0
    assert interrupted == len(kills)  # every kill landed mid-rebuild, by construction
    after = Projector(app, str(store), CategoryTotals()).rebuild()
    assert after.checksum == before.checksum and after.generation != before.generation
    assert [p.name for p in projection_dir.iterdir() if p.name.startswith("gen-")] == [
        after.generation
    ]


def test_a_busy_projection_is_not_written_twice(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    from eventfold.application.projecting import ProjectionBusyError, snapshots_of

    source = tmp_path / "s.jsonl"
    ingest_lines(app, store, source, [event_line(f"e{i}", "x", "1") for i in range(10)])
    first = Projector(app, str(store), CategoryTotals()).rebuild()
    ingest_lines(app, store, source, [event_line("e10", "x", "1")])
    held = snapshots_of(app, CategoryTotals()).try_lock()  # as a follower would
    assert held is not None
    try:
        with pytest.raises(ProjectionBusyError, match="being rebuilt or followed"):
            Projector(app, str(store), CategoryTotals()).rebuild()
        report = Projector(app, str(store), CategoryTotals()).catchup()
        assert report.canonical == {"categories": {"x": {"count": 11, "total": "11"}}}
        assert report.snapshot_written is None and "busy" in report.unwritten
        assert report.to_json()["rebuilt_because"] is None
        assert report.snapshot_used is not None
        assert report.snapshot_used.path == first.snapshot_written.path  # type: ignore[union-attr]
    finally:
        held()
    assert Projector(app, str(store), CategoryTotals()).catchup().snapshot_written is not None


@given(
    st.lists(
        st.none()
        | st.datetimes(timezones=st.none() | st.timezones())
        | st.datetimes(
            timezones=st.builds(
                timezone,
                st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23)),
            )
        ),
        max_size=20,
    )
)
def test_category_totals_writes_timestamps_as_isoformat_does(moments: list[Any]) -> None:
    # to_json and figures format their first and last timestamps in one call: the
    # text must be isoformat's, whatever the offset (zero, whole minutes, seconds) or none.
    from eventfold.projections import builtin

    expected = [None if m is None else m.isoformat() for m in moments]
    assert builtin._iso_texts(moments) == expected
    state = {f"c{i}": [1, Decimal(1), Decimal(1), Decimal(1), m, m] for i, m in enumerate(moments)}
    doc = CategoryTotals().to_json(state)
    figures = CategoryTotals().figures(state)
    assert [doc[f"c{i}"]["first"] for i in range(len(moments))] == expected
    assert [figures[f"c{i}"]["last"] for i in range(len(moments))] == expected
