"""Ingest into the store: exactly once, every line accounted for, resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import Eventfold, open_store
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.ingest import Ingestor, SourceRewrittenError
from eventfold.application.ingest.dedup import IndexBusyError
from eventfold.application.ingest.known import KnownIds
from eventfold.domain.model import Category, Source
from ingesthelpers import aggregate_totals, reference_totals, store_totals


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(params=[False, True], ids=["in-process", "reader-process"])
def app(store: Path, request: pytest.FixtureRequest) -> Iterator[Eventfold]:
    """The application; every test runs with both ways of reading the source."""
    application = open_store(str(store), snapshot_interval=25)
    READER_PROCESS[id(application)] = request.param
    yield application
    application.close()


READER_PROCESS: dict[int, bool] = {}


def ingest(app: Eventfold, store: Path, source: Path, **options: Any) -> Any:
    batch = options.pop("batch", 7)
    reader = READER_PROCESS[id(app)]
    with Ingestor(app, str(store), batch=batch, reader_process=reader) as ingestor:
        return ingestor.run(str(source), **options)


def write(path: Path, *lines: str | bytes) -> Path:
    with path.open("ab") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else line.encode() + b"\n")
    return path


def line(event_id: str | int, category: str, value: str, **extra: Any) -> str:
    fields = {"id": event_id, "category": category} | extra
    text = json.dumps(fields, ensure_ascii=False)
    return text[:-1] + f', "value": {value}}}'


def test_totals_equal_an_independent_reference(app: Eventfold, store: Path, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    rates = SampleRates(duplicates=0.05, conflicts=0.02, invalid=0.03, out_of_order=0.2)
    with source.open("wb") as f:
        write_sample(f, 2000, rates=rates)
    report = ingest(app, store, source)
    expected = reference_totals(source)
    assert store_totals(app) == expected
    assert aggregate_totals(app, list(expected)) == expected
    assert report.ingested == sum(count for count, _ in expected.values())
    assert report.read == report.ingested + report.duplicates + report.conflicts + report.invalid
    assert report.duplicates and report.conflicts and report.invalid


def test_running_again_on_an_unchanged_file_ingests_nothing(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "s.jsonl", line("a", "x", "1"), line("b", "x", "2"))
    first = ingest(app, store, source)
    before = app.recorder.max_notification_id()
    again = ingest(app, store, source)
    assert (first.ingested, again.ingested, again.read) == (2, 0, 0)
    assert again.resumed_from == again.position == source.stat().st_size
    assert app.recorder.max_notification_id() == before


def test_appended_lines_are_picked_up_from_where_the_last_run_ended(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "s.jsonl", line("a", "x", "1"))
    ingest(app, store, source)
    write(source, line("b", "x", "2"), line("a", "x", "1"))
    report = ingest(app, store, source)
    assert (report.read, report.ingested, report.duplicates) == (2, 1, 1)
    assert store_totals(app) == {"x": (2, Decimal(3))}


def test_duplicate_needs_same_content_else_conflict_and_first_stands(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "s.jsonl",
        line("a", "x", "1.10", timestamp="2026-01-01T00:00:00Z"),
        line("a", "x", "1.1", timestamp="2026-01-01T01:00:00+01:00"),  # same value, instant
        line("a", "y", "1.10", timestamp="2026-01-01T00:00:00Z"),  # other category
        line(7, "x", "5"),
        line("7", "x", "6"),  # integer id 7 is the string "7": a conflict
    )
    report = ingest(app, store, source, batch=2)
    assert (report.ingested, report.duplicates, report.conflicts) == (2, 1, 2)
    assert store_totals(app) == {"x": (2, Decimal("6.10"))}
    conflict = report.conflict_samples[0]
    assert conflict.event_id == "a"
    assert (conflict.first["category"], conflict.later["category"]) == ("x", "y")
    assert (conflict.first["line"], conflict.later["line"]) == (1, 3)
    recorded: Source = app.repository.get(Source.create_id(str(source.resolve())))
    assert recorded.conflicts == 2


def test_an_invalid_line_does_not_claim_its_id(app: Eventfold, store: Path, tmp_path: Path) -> None:
    source = write(
        tmp_path / "s.jsonl", '{"id": "a", "category": "x", "value": "1"}', line("a", "x", "2")
    )
    report = ingest(app, store, source)
    assert (report.invalid, report.ingested, report.duplicates) == (1, 1, 0)
    assert store_totals(app) == {"x": (1, Decimal(2))}


def test_invalid_lines_are_quarantined_with_line_offset_reason_and_raw_text(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "s.jsonl",
        line("a", "x", "1"),
        b"\n",
        b"{broken\r\n",
        b'{"id": "b", "category": "caf\xe9", "value": 1}\n',
        line("c", "x", "true"),
    )
    report = ingest(app, store, source)
    assert report.invalid == 3
    records = [json.loads(r) for r in Path(report.quarantine_file).read_text().splitlines()]
    assert [(r["line"], r["offset"]) for r in records] == [(3, 42), (4, 51), (5, 95)]
    assert records[0]["raw"] == "{broken\r" and records[0]["reason"].startswith("not valid JSON")
    assert records[1]["reason"] == "not valid UTF-8" and "\\xe9" in records[1]["raw"]
    assert records[2]["reason"] == "value: a boolean, not a number"
    recorded: Source = app.repository.get(Source.create_id(str(source.resolve())))
    assert recorded.quarantined == 3
    assert ingest(app, store, source).invalid == 0  # quarantined once, not again
    assert len(Path(report.quarantine_file).read_text().splitlines()) == 3


def test_markup_and_escape_sequences_in_categories_are_stored_verbatim(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    names = ["[bold red]rent[/]", "\x1b[31mred\x1b[0m", "caf\u00e9 \u2028 \U0001f600"]
    source = write(tmp_path / "s.jsonl", *(line(f"id{i}", n, "1") for i, n in enumerate(names)))
    ingest(app, store, source)
    assert sorted(store_totals(app)) == sorted(names)


def test_crlf_exponents_and_high_precision_sum_exactly(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    lines = [line(f"t{i}", "x", "0.1").encode() + b"\r\n" for i in range(10)]
    lines += [
        line("e", "y", "1e-30").encode() + b"\r\n",
        line("f", "y", "123456789012345678901234567890").encode() + b"\r\n",
    ]
    source = write(tmp_path / "s.jsonl", *lines)
    ingest(app, store, source)
    totals = store_totals(app)
    assert totals["x"] == (10, Decimal(1))
    assert totals["y"][1] == Decimal("123456789012345678901234567890." + "0" * 29 + "1")
    assert aggregate_totals(app, ["x", "y"]) == totals


def test_unterminated_last_line_waits_until_it_is_a_whole_object(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "s.jsonl", line("a", "x", "1"), b'{"id": "b", "category": "x", "va')
    report = ingest(app, store, source)
    assert report.ingested == 1 and report.invalid == 0
    assert report.pending_tail is not None and report.pending_tail.line == 2
    write(source, b'lue": 2}')  # complete, still without a line ending
    report = ingest(app, store, source)
    assert (report.ingested, report.pending_tail) == (1, None)
    write(source, b"\n" + line("c", "x", "3").encode() + b"\n")
    assert ingest(app, store, source).ingested == 1
    assert store_totals(app) == {"x": (3, Decimal(6))}


def test_rewritten_or_truncated_source_is_refused_and_rescan_ingests_it_anew(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "s.jsonl", line("a", "x", "1"), line("b", "x", "2"))
    ingest(app, store, source)
    source.write_bytes(source.read_bytes().replace(b'"b"', b'"c"'))
    with pytest.raises(SourceRewrittenError, match="rewritten"):
        ingest(app, store, source)
    report = ingest(app, store, source, rescan=True)
    assert (report.rescanned, report.ingested, report.duplicates) == (True, 1, 1)
    source.write_bytes(line("a", "x", "1").encode() + b"\n")
    with pytest.raises(SourceRewrittenError, match="truncated"):
        ingest(app, store, source)
    assert store_totals(app) == {"x": (3, Decimal(5))}


def test_snapshots_are_taken_and_the_library_loads_aggregates_from_them(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "s.jsonl", *(line(f"e{i}", "x", str(i)) for i in range(100)))
    ingest(app, store, source, batch=10)
    category_id = Category.create_id("x")
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(category_id))
    # Opened is version 1; a snapshot when a batch crosses a multiple of 25.
    assert [s.originator_version for s in snapshots] == [31, 51, 81, 101]
    loaded: Category = app.repository.get(category_id)
    assert (loaded.name, loaded.count, loaded.total, loaded.version) == (
        "x",
        100,
        Decimal(4950),
        101,
    )
    middle: Category = app.repository.get(category_id, version=60)  # snapshot 51 + 9 events
    assert (middle.count, middle.total) == (59, Decimal(sum(range(59))))
    last: Any = snapshots[-1]
    assert last.state == Category.Snapshot.take(loaded).state


def test_dedup_index_is_rebuilt_from_the_store_when_lost(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    first = write(tmp_path / "one.jsonl", *(line(f"e{i}", "x", "1") for i in range(300)))
    with Ingestor(app, str(store), batch=50) as ingestor:
        assert isinstance(ingestor.known, KnownIds)
        ingestor.known.index.flush_every = 64  # several runs and merges
        ingestor.run(str(first))
    for path in (store / "dedup").iterdir():
        if path.name != "LOCK":
            path.unlink()
    second = write(tmp_path / "two.jsonl", *(line(f"e{i}", "x", "1") for i in range(250, 350)))
    report = ingest(app, store, second)
    assert (report.ingested, report.duplicates) == (50, 50)
    (store / "dedup" / "CHECKPOINT").write_text("garbage\n")
    with Ingestor(app, str(store)) as ingestor:
        assert ingestor.warnings and "rebuilt" in ingestor.warnings[0]
        assert ingestor.run(str(second)).ingested == 0
    assert store_totals(app) == {"x": (350, Decimal(350))}


def test_one_ingest_at_a_time_per_store(app: Eventfold, store: Path) -> None:
    with Ingestor(app, str(store)), pytest.raises(IndexBusyError, match="one ingest"):
        Ingestor(app, str(store), lock_timeout=0.1)


def test_a_failed_commit_leaves_nothing_half_done(
    app: Eventfold, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(tmp_path / "s.jsonl", *(line(f"e{i}", "x", "1") for i in range(30)))
    recorder = app.process_recorder
    # The file store takes a batch as columns; other recorders as StoredEvents.
    columns = hasattr(recorder, "insert_event_columns")
    method = "insert_event_columns" if columns else "insert_events"
    real_insert = getattr(recorder, method)
    calls = []

    def failing_insert(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        return real_insert(*args, **kwargs)

    with Ingestor(app, str(store), batch=7, reader_process=READER_PROCESS[id(app)]) as ingestor:
        monkeypatch.setattr(recorder, method, failing_insert)
        with pytest.raises(OSError, match="Input/output"):
            ingestor.run(str(source))
        monkeypatch.setattr(recorder, method, real_insert)
        report = ingestor.run(str(source))  # the same ingestor goes on from the last commit
    assert (report.resumed_from > 0, report.ingested) == (True, 16)
    assert store_totals(app) == {"x": (30, Decimal(30))}
    assert aggregate_totals(app, ["x"]) == {"x": (30, Decimal(30))}


def test_another_recorder_gets_the_same_events_as_stored_event_objects(tmp_path: Path) -> None:
    """Recorders other than the file store take the batch as the library's StoredEvents."""
    source = tmp_path / "s.jsonl"
    with source.open("wb") as f:
        write_sample(f, 3000, rates=SampleRates(duplicates=0.05, conflicts=0.05, invalid=0.05))
    popo = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"}, snapshot_interval=25)
    with Ingestor(popo, str(tmp_path / "state"), batch=100) as ingestor:
        report = ingestor.run(str(source))
    assert report.ingested and report.duplicates and report.conflicts and report.invalid
    expected = reference_totals(source)
    assert store_totals(popo) == expected
    assert aggregate_totals(popo, list(expected)) == expected


def test_a_category_loaded_in_bulk_is_the_one_the_library_loads(
    app: Eventfold, store: Path, tmp_path: Path
) -> None:
    from eventfold.application.ingest.categories import load_category

    source = tmp_path / "events.jsonl"
    with source.open("wb") as f:
        write_sample(f, 700, rates=SampleRates(duplicates=0.05, conflicts=0.02), seed=6)
    ingest(app, store, source, batch=33)  # snapshots every 25 versions: some after, some not
    names = sorted({json.loads(raw)["category"] for raw in source.read_bytes().splitlines()})
    for name in [*names, "never seen"]:
        fast = load_category(app, name)
        try:
            slow: Category = app.repository.get(Category.create_id(name))
        except Exception:  # the library has none: a new one
            slow = Category(name)
        assert (fast.name, fast.count, fast.total, fast.version) == (
            slow.name,
            slow.count,
            slow.total,
            slow.version,
        )
        assert fast.modified_on == slow.modified_on or name == "never seen"
