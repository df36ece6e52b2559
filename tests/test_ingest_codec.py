"""Bulk-encoded ``Category.Recorded`` events are byte for byte the library's own."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_store
from eventfold.application.ingest.rules import SourceEvent
from eventfold.application.recorded import RecordedCodec
from eventfold.domain.model import Category

ALPHABET = 'aZ09 _-"\\/\n\r\t\x00\x1b\x7f[]{}:,\u00e9\u2028\u4e2d\U0001f600'


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))


def random_events(count: int) -> list[SourceEvent]:
    rng = random.Random(5)
    values = ["0", "-0.00", "12.50", "1E+5", "1e-30", "123456789012345678901234567890.5"]
    events = []
    for _ in range(count):
        when = None
        if rng.random() < 0.8:
            when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
                seconds=rng.randint(-(10**9), 10**9), microseconds=rng.choice([0, 1, 250000])
            )
        events.append(
            SourceEvent(
                random_text(rng),
                random_text(rng),
                Decimal(rng.choice(values)),
                when,
                None if when is None else when.isoformat(),
            )
        )
    return events


@pytest.mark.parametrize("compressor", [None, "eventsourcing.compressor:ZlibCompressor"])
def test_fast_path_writes_what_the_library_mapper_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressor: str | None
) -> None:
    if compressor:
        monkeypatch.setenv("COMPRESSOR_TOPIC", compressor)
    app = open_store(str(tmp_path / "store"))
    fast, slow = RecordedCodec(app.mapper), RecordedCodec(app.mapper)
    slow.fast = False
    assert fast.fast
    stamp = Category.Recorded.create_timestamp()
    for codec in (fast, slow):
        codec.prepare(stamp, random_text(random.Random(1)) + "/src.jsonl")
    for i, event in enumerate(random_events(300)):
        originator = Category.create_id(event.category)
        assert fast.encode(originator, i + 2, event, i, i * 97) == slow.encode(
            originator, i + 2, event, i, i * 97
        )
    app.close()


@pytest.mark.parametrize("compressor", [None, "eventsourcing.compressor:ZlibCompressor"])
def test_opened_events_are_what_the_aggregate_and_the_library_mapper_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressor: str | None
) -> None:
    if compressor:
        monkeypatch.setenv("COMPRESSOR_TOPIC", compressor)
    app = open_store(str(tmp_path / "store"))
    fast, slow = RecordedCodec(app.mapper), RecordedCodec(app.mapper)
    slow.fast = False
    rng = random.Random(3)
    for _ in range(200):
        name = random_text(rng)
        category = Category(name)
        (event,) = category.collect_events()
        library = app.mapper.to_stored_event(event)
        for codec in (fast, slow):
            assert codec.opened(name, event.timestamp) == library
        decoded: Any = app.mapper.to_domain_event(fast.opened(name, event.timestamp))
        restored = decoded.mutate(None)
        assert (restored.id, restored.name, restored.version) == (category.id, name, 1)
    app.close()


def test_a_custom_transcoding_falls_back_to_the_library_path(tmp_path: Path) -> None:
    from eventsourcing.persistence import Transcoding

    class DecimalAsText(Transcoding):
        type = Decimal
        name = "decimal_text"

        def encode(self, obj: Decimal) -> str:
            return format(obj, "f")

        def decode(self, data: str) -> Decimal:
            return Decimal(data)

    app = open_store(str(tmp_path / "store"))
    app.mapper.transcoder.register(DecimalAsText())  # type: ignore[attr-defined]
    codec = RecordedCodec(app.mapper)
    assert not codec.fast
    codec.prepare(Category.Recorded.create_timestamp(), "s")
    stored = codec.encode(Category.create_id("x"), 2, random_events(1)[0], 1, 0)
    assert b"decimal_text" in stored.state
    app.close()


def test_every_spelling_of_the_recorded_fields_is_the_domain_events() -> None:
    """The fields of ``Category.Recorded`` are written out in the domain, the projections'
    fact type, the decoder's struct, the fields of a state's shape and the codec's JSON:
    they must agree, in order."""
    import dataclasses
    import json as stdlib_json

    from eventfold.application import recorded, states
    from eventfold.projections.base import RecordedFact

    every = [f.name for f in dataclasses.fields(Category.Recorded)]
    domain = tuple(every[every.index("timestamp") + 1 :])  # after the library's own fields
    assert domain == recorded.RECORDED_FIELDS
    assert RecordedFact._fields == ("notification_id", *domain)
    assert states._RecordedState.__struct_fields__ == domain
    assert states.Holes._fields == domain
    event = SourceEvent("a", "c", Decimal("1.5"), None, None)
    state = stdlib_json.loads(RecordedCodec(None).state(event, 3, 40))
    assert tuple(state) == ("timestamp", *domain)
