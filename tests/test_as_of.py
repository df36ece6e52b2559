"""A projection as of a point (``rebuild --as-of``, ``verify --as-of``) and ``diff A B``.

Each state is checked against one computed independently: a prefix of the
store's notifications decoded by the library's own mapper, or the generated
history itself (first occurrences, late events included).
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from clihelpers import run
from eventfold.cli import main
from eventfold.domain.model import EXACT, Category
from eventfold.projections.base import canonical_decimal, state_checksum

START = datetime(2026, 11, 30, 8, tzinfo=UTC)
histories = st.lists(
    st.tuples(
        st.integers(0, 30),  # id: repeats are duplicates
        st.sampled_from(["rent", "food", "fun"]),
        st.integers(-500, 5000),  # cents
        st.one_of(st.none(), st.integers(0, 600)),  # minutes after START; None: no timestamp
    ),
    min_size=1,
    max_size=40,
)


Row = tuple[int, str, int, int | None]  # id, category, cents, minutes after START


def write(path: Path, rows: list[Row]) -> Path:
    with path.open("w") as f:
        for event_id, category, cents, minutes in rows:
            doc: dict[str, Any] = {"id": str(event_id), "category": category}
            if minutes is not None:
                doc["timestamp"] = (START + timedelta(minutes=minutes)).isoformat()
            value = canonical_decimal(Decimal(cents) / 100)
            f.write(json.dumps(doc)[:-1] + f', "value": {value}}}\n')
    return path


def canonical(sums: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "categories": {c: {"count": n, "total": canonical_decimal(t)} for c, (n, t) in sums.items()}
    }


def prefix_checksum(store: str, position: int) -> str:
    """category_totals of the notifications up to ``position``, by the library's mapper."""
    from eventfold.application.app import open_app

    app = open_app(store)
    try:
        sums: dict[str, list[Any]] = {}
        notifications = app.recorder.select_notifications(1, max(position, 1), stop=position)
        for n in notifications if position else []:
            event = app.mapper.to_domain_event(n)
            if isinstance(event, Category.Recorded):
                entry = sums.setdefault(event.category, [0, Decimal(0)])
                entry[0] += 1
                entry[1] = EXACT.add(entry[1], event.value)
    finally:
        app.close()
    return state_checksum(canonical(sums))


def as_of(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> dict[str, Any]:
    assert main(["rebuild", "--store", store, *args, "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories, cut=st.integers(1, 3), minutes=st.integers(0, 600))
def test_as_of_a_position_and_a_time_equal_independent_states(
    capsys: pytest.CaptureFixture[str], history: list[Any], cut: int, minutes: int
) -> None:
    capsys.readouterr()  # each example reads only its own output
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = str(root / "store")
        batches = [history[i::cut] for i in range(cut)]  # ingested in runs: late events too
        for k, batch in enumerate(batches):
            if batch:
                source = write(root / f"b{k}.jsonl", batch)
                assert main(["ingest", str(source), "--store", store, "--force", "--quiet"]) == 0
                assert main(["catchup", "--store", store, "--snapshot-every", "1"]) == 0
        capsys.readouterr()
        end = json.loads(run(capsys, "status", "--store", store, "--json")[1])
        last = end["last_notification_id"]
        for position in sorted({0, last // 3, last // 2, last}):
            doc = as_of(capsys, store, "--as-of", f"@{position}")
            assert doc["checksum"] == prefix_checksum(store, position), position
        moment = START + timedelta(minutes=minutes)
        firsts: dict[int, tuple[str, int, int | None]] = {}
        for event_id, category, cents, at in [row for batch in batches for row in batch]:
            firsts.setdefault(event_id, (category, cents, at))
        sums: dict[str, list[Any]] = {}
        for category, cents, at in firsts.values():
            if at is not None and START + timedelta(minutes=at) <= moment:
                entry = sums.setdefault(category, [0, Decimal(0)])
                entry[0] += 1
                entry[1] = EXACT.add(entry[1], Decimal(cents) / 100)
        doc = as_of(capsys, store, "--as-of", moment.isoformat())
        assert doc["checksum"] == state_checksum(canonical(sums))
        assert doc["as_of"]["without_timestamp"] == sum(1 for f in firsts.values() if f[2] is None)


def test_diff_between_positions_sums_to_the_events_between(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Row] = [(i, ["rent", "food", "fun"][i % 3], 100 + i, i * 7) for i in range(60)]
    store = str(tmp_path / "store")
    for k in range(3):
        source = write(tmp_path / f"b{k}.jsonl", rows[k * 20 : (k + 1) * 20])
        assert main(["ingest", str(source), "--store", store, "--quiet"]) == 0
    capsys.readouterr()
    last = json.loads(run(capsys, "status", "--store", store, "--json")[1])["last_notification_id"]
    a, b = last // 3, last
    code, out, _ = run(capsys, "diff", f"@{a}", f"@{b}", "--store", store, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["from"]["position"] == a and doc["to"]["position"] == b
    between = doc["to"]["events_applied"] - doc["from"]["events_applied"]
    assert sum(d["delta"]["count"] for d in doc["differences"]) == between > 0
    export = tmp_path / "changes.csv"
    code, out, _ = run(capsys, "diff", f"@{a}", "now", "--store", store, "--export", str(export))
    assert code == 0 and "CHANGED: 3 rows of 3 from" in out
    assert len(export.read_text().splitlines()) == 1 + 3
    code, out, _ = run(capsys, "diff", "now", "now", "--store", store)
    assert code == 0 and "NO CHANGE: 0 rows of 3" in out


def test_points_that_are_not_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    source = write(tmp_path / "s.jsonl", [(1, "rent", 500, 10)])
    assert main(["ingest", str(source), "--store", store, "--quiet"]) == 0
    capsys.readouterr()
    for point in ("yesterday", "@x", "@999999", "gen-00000009"):
        code, out, err = run(capsys, "rebuild", "--store", store, "--as-of", point)
        assert (code, out) == (2, "") and err.count("\n") == 1, (point, err)
    code, _, err = run(capsys, "rebuild", "--store", store, "--as-of", "@1", "--compare")
    assert code == 2 and "--compare: not allowed with --as-of" in err


def test_verify_as_of_a_time_against_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[Row] = [(i, "rent", 100, i * 10) for i in range(10)]
    store = str(tmp_path / "store")
    source = write(tmp_path / "s.jsonl", rows)
    assert main(["ingest", str(source), "--store", store, "--quiet"]) == 0
    capsys.readouterr()
    when = (START + timedelta(minutes=45)).isoformat()  # events 0..4
    code, out, _ = run(capsys, "verify", str(source), "--store", store, "--as-of", when, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["as_of"]["events_applied"] == 5 and doc["as_of"]["left_out"] == 5
    assert doc["differences"] == [] and doc["missing_events"] == doc["extra_events"] == 0
    expected = tmp_path / "yesterday.csv"
    expected.write_text("category,count,total\nrent,5,5\n")
    code, _, _ = run(
        capsys, "verify", "--store", store, "--expected", str(expected), "--as-of", when
    )
    assert code == 0
    code, _, _ = run(capsys, "verify", "--store", store, "--expected", str(expected))
    assert code == 1  # now the store holds ten
    code, _, err = run(
        capsys, "verify", str(source), "--store", store, "--as-of-recorded", "2026-01-01"
    )
    assert code == 2 and "--as-of-recorded cannot be compared with sources" in err
