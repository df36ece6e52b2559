"""`eventfold explain CATEGORY`: one total's events by source and hour, what was set aside for
it (conflicts with both versions, quarantined lines that named it, duplicates), the snapshot
the projection was caught up from, and whether the events sum to the projection's total."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.domain.model import EXACT, Category
from eventfold.projections.base import RecordedFact, handles
from eventfold.projections.builtin import CategoryTotals, Totals

FIRST = (
    '{"id": 1, "category": "rent", "value": 10.50, "timestamp": "2024-05-01T10:15:00Z"}\n'
    '{"id": 2, "category": "food", "value": 3, "timestamp": "2024-05-01T11:00:00Z"}\n'
    '{"id": 3, "category": "rent", "value": 1e3}\n'
    '{"id": 1, "category": "rent", "value": 10.5, "timestamp": "2024-05-01T10:15:00Z"}\n'
    '{"id": 2, "category": "rent", "value": 4, "timestamp": "2024-05-01T11:00:00Z"}\n'
    '{"id": 9, "category": "rent", "value": "oops"}\n'
    '{"id": 8, "category": "food", "value": true}\n'
    'not json, "category": "rent"\n'
    '{"id": 4, "category": "rent", "value": 0.25, "timestamp": "2024-05-01T10:59:59Z"}\n'
)
SECOND = (
    '{"id": 5, "category": "rent", "value": 7, "timestamp": "2024-05-01T12:00:00Z"}\n'
    '{"id": 1, "category": "rent", "value": 99}\n'
    '{"id": 6, "category": "ghost", "value": "x"}\n'
)


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, Path]:
    """Two sources with rent events, a duplicate, two conflicts, quarantined lines that name
    rent (and one that names food, one that names ghost: a category with no event)."""
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(FIRST, encoding="utf-8")
    second.write_text(SECOND, encoding="utf-8")
    store = tmp_path / "store"
    for path in (first, second):
        assert run(capsys, "ingest", str(path), "--store", str(store), "--quiet")[0] == 0
    return store, first.resolve(), second.resolve()


def explain(
    capsys: pytest.CaptureFixture[str], store: Path, *args: str, code: int = 0
) -> dict[str, Any]:
    found, out, err = run(capsys, "explain", *args, "--store", str(store), "--json")
    assert (found, err) == (code, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_explain_lists_conflicts_with_both_versions_and_quarantined_lines_that_named_it(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, first, second = store
    doc = explain(capsys, path, "rent")
    aside = doc["set_aside"]
    assert aside["conflicts_count"] == 2
    conflicts = {(c["source"], c["line"]): c for c in aside["conflicts"]}
    food_first = conflicts[(str(first), 5)]  # id 2 was food; the rent line was not applied
    assert food_first["event_id"] == "2"
    assert (food_first["first"]["category"], food_first["first"]["value"]) == ("food", "3")
    assert (food_first["later"]["category"], food_first["later"]["value"]) == ("rent", "4")
    assert (food_first["first"]["line"], food_first["later"]["line"]) == (2, 5)
    across = conflicts[(str(second), 2)]  # id 1 again, in another file, with another value
    assert (across["first"]["source"], across["first"]["line"]) == (str(first), 1)
    assert (across["first"]["value"], across["later"]["value"]) == ("10.50", "99")
    quarantined = [(q["source"], q["line"]) for q in aside["quarantined"]]
    assert quarantined == [(str(first), 6), (str(first), 8)]  # not line 7: it names food
    assert aside["quarantined_count"] == 2
    assert "not a number" in aside["quarantined"][0]["reason"]
    assert aside["duplicates_by_source"] == [
        {"source": str(first), "duplicates": 1},
        {"source": str(second), "duplicates": 0},
    ]


def test_the_sum_of_the_events_equals_the_projection_total(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, first, second = store
    doc = explain(capsys, path, "rent")
    code, out, _ = run(capsys, "catchup", "--store", str(path), "--json")
    assert code == 0
    caught_up = json.loads(out)
    assert doc["events"] == doc["projection_total"] == caught_up["categories"]["rent"]
    assert doc["events"] == {"count": 4, "total": "1017.75"}
    assert doc["sum_matches"] is True
    assert doc["projection_checksum"] == caught_up["checksum"]
    none = {"count": 0, "total": "0"}  # no reconstruction: every raw event is counted
    assert (doc["counted"], doc["held"], doc["reconstructions"]) == (doc["events"], none, [])
    assert doc["reconstructed"] == none | {"reconstructions": []}
    assert doc["sources"] == [
        {"source": str(first), "count": 3, "total": "1010.75", "first_line": 1, "last_line": 9}
        | {"held": none},
        {"source": str(second), "count": 1, "total": "7", "first_line": 1, "last_line": 1}
        | {"held": none},
    ]
    assert doc["hours"] == [
        {"hour": "2024-05-01T10:00:00+00:00", "count": 2, "total": "10.75", "held": none},
        {"hour": "2024-05-01T12:00:00+00:00", "count": 1, "total": "7", "held": none},
        {"hour": "none", "count": 1, "total": "1000", "held": none},
    ]
    events = json.loads(
        run(capsys, "events", "--store", str(path), "--category", "rent", "--json")[1]
    )
    assert {"count": events["count"], "total": events["total"]} == doc["events"]


def test_the_terminal_report_says_whether_the_sum_is_the_projection_total(
    store: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, first, _ = store
    monkeypatch.setenv("COLUMNS", "300")  # no column folded
    code, out, err = run(capsys, "explain", "rent", "--store", str(path))
    assert (code, err) == (0, "")
    assert "sum of events = projection total: yes" in out
    assert "events: 4 events, total 1,017.75" in out
    for heading in ("by source", "by hour", "conflicts: 2 lines", "quarantined: 2 lines"):
        assert heading in out
    assert 'not json, "category": "rent"' in out
    assert "rent 10.50 at 2024-05-01T10:15:00+00:00 (" + str(first) + ", line 1)" in out
    assert "rent 99 at no timestamp (line 2)" in out
    code, out, _ = run(capsys, "explain", "rent", "--store", str(path), "--quiet")
    assert (code, out) == (0, "sum of events = projection total: yes\n")


def test_explain_names_the_snapshot_it_was_caught_up_from(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, _, _ = store
    code, out, _ = run(capsys, "rebuild", "--store", str(path), "--json")
    assert code == 0
    rebuilt = json.loads(out)
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": 7, "category": "rent", "value": 0.001}\n')
    assert run(capsys, "ingest", str(more), "--store", str(path), "--quiet")[0] == 0
    doc = explain(capsys, path, "rent")
    assert doc["snapshot"]["position"] == rebuilt["position"] == doc["caught_up_from"]
    assert doc["snapshot"]["checksum"] == rebuilt["checksum"]
    assert doc["events_applied"] == 1 and doc["position"] > rebuilt["position"]
    assert doc["events"] == doc["projection_total"] == {"count": 5, "total": "1017.751"}
    assert len(doc["category_checksum"]) == 64
    again = explain(capsys, path, "rent")  # from the snapshot the first one wrote
    assert (again["caught_up_from"], again["events_applied"]) == (doc["position"], 0)
    assert again["snapshot"]["checksum"] == doc["projection_checksum"]


def test_hourly_totals_is_summed_over_the_category_s_hours(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    doc = explain(capsys, path, "rent", "--projection", "hourly_totals")
    assert doc["projection"] == "hourly_totals"
    assert doc["events"] == doc["projection_total"] == {"count": 4, "total": "1017.75"}
    assert doc["sum_matches"] is True


def test_a_category_with_only_set_aside_lines_is_explained_with_no_events(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, second = store
    doc = explain(capsys, path, "ghost")
    assert doc["events"] == {"count": 0, "total": "0"}
    assert (doc["projection_total"], doc["sum_matches"]) == (None, True)
    assert [(q["source"], q["line"]) for q in doc["set_aside"]["quarantined"]] == [(str(second), 3)]


def test_an_unknown_category_is_one_line_and_exit_2(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    code, out, err = run(capsys, "explain", "rnet", "--store", str(path))
    assert (code, out) == (2, "")
    assert err == (
        "eventfold: unknown category: no category 'rnet' in the store: no event, recorded "
        "or set aside, names it (did you mean rent?)\n"
    )


class Inflated(CategoryTotals):
    """A projection with a bug: it counts every value twice."""

    name = "inflated_totals"

    @handles(Category.Recorded)
    def recorded(self, state: Totals, fact: RecordedFact) -> None:
        super().recorded(state, fact._replace(value=EXACT.multiply(fact.value, 2)))


def test_a_projection_whose_total_is_not_the_events_sum_is_exit_1(
    store: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    doc = explain(capsys, path, "rent", "--projection", "test_cli_explain:Inflated", code=1)
    assert doc["projection_total"] == {"count": 4, "total": "2035.5"}
    assert (doc["events"]["total"], doc["sum_matches"]) == ("1017.75", False)
    code, out, _ = run(
        capsys, "explain", "rent", "--store", str(path), "--projection", "test_cli_explain:Inflated"
    )
    assert code == 1 and "sum of events = projection total: NO" in out


def test_explain_on_postgres_gives_what_it_gives_on_files(
    store: tuple[Path, Path, Path],  # on files: made before the postgres fixture sets its env
    postgres: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files, first, second = store
    local = tmp_path / "pg-local"
    for path in (first, second):
        assert run(capsys, "ingest", str(path), "--store", str(local), "--quiet")[0] == 0
    on_postgres = explain(capsys, local, "rent")
    code, out, _ = run(
        capsys, "explain", "rent", "--store", str(files), "--backend", "file", "--json"
    )
    assert code == 0
    on_files = json.loads(out)
    keys = ("events", "projection_total", "sum_matches", "sources", "hours", "set_aside")
    assert {k: on_postgres[k] for k in keys} == {k: on_files[k] for k in keys}
    events = json.loads(
        run(capsys, "events", "--store", str(local), "--category", "rent", "--json")[1]
    )
    assert {"count": events["count"], "total": events["total"]} == on_postgres["projection_total"]
    assert on_postgres["snapshot"] is None or on_postgres["snapshot"]["path"].startswith(
        "postgres:"
    )
