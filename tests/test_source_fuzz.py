"""Random sources: parsing never raises, and ingest agrees with the independent reference."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventfold.application.app import open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.rules import SourceEvent, parse_event
from eventfold.application.proving.reference import expected_from_source
from eventfold.infra.sourcefile import SNIFF_BYTES, SourceError
from ingesthelpers import store_totals

ids = st.one_of(
    st.text(max_size=3),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
categories = st.one_of(st.sampled_from(["a", "b", "", " a", "ü", "[x]"]), st.integers(), st.none())
values = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.sampled_from(
        [
            "1e3",
            "-2.5E-2",
            "1e99999",
            "0.10",
            "-0",
            '"5"',
            "true",
            "null",
            "[1]",
            "NaN",
            "Infinity",
            "1.",
            ".5",
            "01",
        ]
    ),
)
stamps = st.one_of(
    st.none(),
    st.sampled_from(
        [
            '"2026-01-01T00:00:00Z"',
            '"2026-01-01T01:00:00+01:00"',
            '"2026-13-01"',
            '"yesterday"',
            "1767225600",
            "1767225600.25",
            "-1.5",
            "1e30",
            "true",
            '"2026-01-01 00:00:00"',
        ]
    ),
)


@st.composite
def lines(draw: Any) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        garbage: bytes = draw(st.binary(max_size=20))
        return garbage.replace(b"\n", b"")
    fields = [f'"id": {json.dumps(draw(ids))}']
    category = draw(categories)
    if category is not None or draw(st.booleans()):
        fields.append(f'"category": {json.dumps(category)}')
    fields.append(f'"value": {draw(values)}')
    stamp = draw(stamps)
    if stamp is not None:
        fields.append(f'"timestamp": {stamp}')
    draw(st.randoms()).shuffle(fields)
    ending: bytes = draw(st.sampled_from([b"", b"\r", b" "]))
    return ("{" + ", ".join(fields) + "}").encode() + ending


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(lines(), st.binary(max_size=40)))
def test_parsing_never_raises(raw: bytes) -> None:
    assert isinstance(parse_event(raw), SourceEvent | str)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.lists(lines(), max_size=40), tail=st.booleans())
def test_ingest_agrees_with_the_independent_reference(
    tmp_path: Path, body: list[bytes], tail: bool
) -> None:
    directory = tmp_path / os.urandom(4).hex()
    directory.mkdir()
    source, store = directory / "s.jsonl", directory / "store"
    data = b"\n".join(body) + (b"" if tail or not body else b"\n")
    source.write_bytes(data)
    app = open_store(str(store))
    if b"\0" in data[:SNIFF_BYTES]:  # binary: both sides refuse it, nothing is read
        with pytest.raises(SourceError):
            expected_from_source(str(source))
        with pytest.raises(SourceError), Ingestor(app, str(store)) as ingestor:
            ingestor.run(str(source))
        app.close()
        return
    try:
        with Ingestor(app, str(store), batch=7, reader_process=False) as ingestor:
            ingestor.run(str(source))
        expected = expected_from_source(str(source))
        wanted = {c: (n, Decimal(t)) for c, (n, t) in expected.totals.items()}
        assert store_totals(app) == wanted
    finally:
        app.close()
