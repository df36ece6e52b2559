"""A page folded at once (``fold_page``) leaves exactly the state of the handler, fact by fact.

``category_totals`` folds a page per category with ``sum``/``min``/``max``; these
tests hold it to the handler's state in every figure it reports (the total as
written, min and max as first seen among equal values, the first and last
timestamps as first seen among equal instants), over pages of any size, on
decoded store pages and on facts built by the library's mapper alike.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventfold.application.app import Eventfold, open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.application.recorded import RECORDED_TOPIC, FactsPage, recorded_pages
from eventfold.application.states import StatesPage, recorded_shapes
from eventfold.domain.model import Category
from eventfold.infra.filestore.shapes import Fields
from eventfold.projections.base import RecordedFact, handles
from eventfold.projections.builtin import CategoryTotals

# Values equal but written differently, zeros of both signs; instants equal in two offsets.
VALUES = ["1.5", "1.50", "-0", "0.00", "-0.00", "2", "1E+1", "10", "-3.25", "0.001"]
WHENS = [
    None,
    "2026-01-01T10:00:00+00:00",
    "2026-01-01T12:00:00+02:00",
    "2026-01-01T09:00:00+00:00",
    "2026-01-01T11:00:00+02:00",
    "2026-01-02T00:00:00+00:00",
]


def fact(n: int, category: str, value: str, when: str | None) -> RecordedFact:
    at = None if when is None else datetime.fromisoformat(when)
    return RecordedFact(n, f"e{n}", category, Decimal(value), at, "s.jsonl", n, n * 10)


def figures(state: dict[str, list[Any]]) -> dict[str, list[str | int | None]]:
    """Every element of every entry as written (decimals and timestamps as text)."""
    return {
        name: [e if isinstance(e, int) else str(e) for e in entry] for name, entry in state.items()
    }


def by_handler(facts: list[RecordedFact]) -> dict[str, list[Any]]:
    projection = CategoryTotals()
    state = projection.initial()
    for f in facts:
        projection.recorded(state, f)
    return state


facts_lists = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(VALUES), st.sampled_from(WHENS)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rows=facts_lists, cuts=st.lists(st.integers(1, 60), max_size=6))
def test_category_totals_fold_page_equals_the_handler(
    rows: list[tuple[str, str, str | None]], cuts: list[int]
) -> None:
    facts = [fact(n, c, v, w) for n, (c, v, w) in enumerate(rows, 1)]
    projection = CategoryTotals()
    state = projection.initial()
    bounds = sorted({0, len(facts), *(c for c in cuts if c < len(facts))})
    for start, end in itertools.pairwise(bounds):
        projection.fold_page(state, FactsPage(facts[start:end]))
    expected = by_handler(facts)
    assert figures(state) == figures(expected)
    assert list(state) == list(expected)  # categories in order of their first fact
    assert projection.to_json(state) == projection.to_json(expected)


class Counting(CategoryTotals):
    """A subclass with a handler of its own: it is given every fact."""

    seen = 0

    @handles(Category.Recorded)
    def recorded(self, state: dict[str, list[Any]], fact: RecordedFact) -> None:
        Counting.seen += 1
        super().recorded(state, fact)


def test_a_subclass_handler_is_still_given_every_fact() -> None:
    facts = [fact(n, "a", "1", None) for n in range(1, 6)]
    projection = Counting()
    state = projection.initial()
    projection.fold_page(state, FactsPage(facts))
    assert Counting.seen == 5
    assert state["a"][0] == 5


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Eventfold]:
    application = open_store(str(tmp_path / "store"))
    yield application
    application.close()


def _ingest(
    app: Eventfold,
    tmp_path: Path,
    count: int,
    whens: list[str | None],
    event_id: Callable[[int], str],
    category: Callable[[int], str],
) -> int:
    """Ingest ``count`` lines (values and timestamps in turn, ids and categories, as JSON,
    by line number); the last notification id."""
    lines = []
    for n in range(count):
        when = whens[n % len(whens)]
        stamp = "" if when is None else f', "timestamp": "{when}"'
        value = VALUES[n % len(VALUES)]
        line = f'{{"id": "{event_id(n)}", "category": {category(n)}, "value": {value}{stamp}}}'
        lines.append(line + "\n")
    source = tmp_path / "s.jsonl"
    source.write_text("".join(lines), encoding="utf-8")
    with Ingestor(app, str(tmp_path / "store"), reader_process=False) as ingestor:
        ingestor.run(str(source))
    return app.recorder.max_notification_id() or 0


def test_store_pages_decode_to_the_facts_of_the_mapper_path(app: Eventfold, tmp_path: Path) -> None:
    """``by_category`` of a store page (decoded lean) equals that of its full facts, and a
    rebuild over several pages equals the handler over every fact."""
    # more than one page (a scan reads 8,000 ids at a time)
    last = _ingest(app, tmp_path, 9000, WHENS, lambda n: f"e{n}", lambda n: f'"c{n % 3}é"')
    pages = list(recorded_pages(app, 0, last))
    assert len(pages) > 1 and all(isinstance(p, StatesPage) for p in pages)
    facts = [f for p in pages for f in p.facts()]
    assert len(facts) == 9000
    for page in recorded_pages(app, 0, last):
        assert page.by_category() == FactsPage(page.facts()).by_category()
    report = Projector(app, str(tmp_path / "store"), CategoryTotals()).rebuild()
    assert figures(report.state) == figures(by_handler(facts))


def _exact(f: RecordedFact) -> tuple[Any, ...]:
    """A fact with its value and timestamp as written (equal decimals may differ)."""
    when = None if f.occurred_at is None else f.occurred_at.isoformat()
    return (*f[:3], str(f.value), when, *f[5:])


@pytest.mark.parametrize(
    ("whens", "by_field"),
    [(WHENS[1:], True), ([None], True), (WHENS, False)],
    ids=["timestamps", "none", "mixed"],
)
def test_store_pages_kept_by_field_decode_to_the_facts_of_the_library_mapper(
    app: Eventfold, tmp_path: Path, whens: list[str | None], by_field: bool
) -> None:
    """Commits whose states share the shape of ``Recorded`` (with or without a timestamp)
    are decoded field by field; commits of both shapes as states. Either way, the facts,
    columns and groups of every page are those of the library's mapper, as written."""
    last = _ingest(
        app, tmp_path, 3500, whens, lambda n: f"{n:08x}", lambda n: json.dumps(f'c{n % 7}é"')
    )
    pages = list(recorded_pages(app, 0, last))
    assert all(isinstance(p, StatesPage) for p in pages)
    kept = [
        part
        for p in pages
        if isinstance(p, StatesPage)
        for part in p._parts
        if isinstance(part, Fields)
    ]
    assert bool(kept) is by_field
    assert all(part.shape in recorded_shapes() for part in kept)
    library = []
    for n in app.recorder.select_notifications(None, last, topics=[RECORDED_TOPIC]):
        e: Any = app.mapper.to_domain_event(n)
        fields = (e.event_id, e.category, e.value, e.occurred_at, e.source, e.line, e.offset)
        library.append(RecordedFact(n.id, *fields))
    assert len(library) == 3500
    assert [_exact(f) for p in pages for f in p.facts()] == [_exact(f) for f in library]
    for page in recorded_pages(app, 0, last):
        facts = FactsPage(page.facts())
        columns = page.columns()
        assert [str(v) for v in columns.values] == [str(v) for v in facts.columns().values]
        assert columns == facts.columns()
        assert page.by_category() == facts.by_category()


spread_lists = st.lists(
    st.tuples(
        st.sampled_from([f"c{k}" for k in range(40)]),
        st.sampled_from(VALUES),
        st.sampled_from(WHENS),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(rows=spread_lists, cuts=st.lists(st.integers(1, 120), max_size=4))
def test_a_page_of_many_categories_folded_fact_by_fact_equals_the_handler(
    rows: list[tuple[str, str, str | None]], cuts: list[int]
) -> None:
    """Pages whose categories have a fact or two each are folded fact by fact (the
    handler inlined), the others a category at a time: the same state either way."""
    facts = [fact(n, c, v, w) for n, (c, v, w) in enumerate(rows, 1)]
    expected = by_handler(facts)
    bounds = sorted({0, len(facts), *(c for c in cuts if c < len(facts))})
    projection = CategoryTotals()
    chosen, inlined = projection.initial(), projection.initial()
    for start, end in itertools.pairwise(bounds):
        page = FactsPage(facts[start:end])
        projection.fold_page(chosen, page)
        CategoryTotals._fold_rows(inlined, page.columns())
    for state in (chosen, inlined):
        assert figures(state) == figures(expected)
        assert list(state) == list(expected)


def test_a_state_handed_between_processes_comes_back_exactly() -> None:
    """``dump_state``/``load_state`` (a rebuild worker's part): every figure as written,
    timestamps in their offsets, categories in their order."""
    facts = [
        fact(n, name, VALUES[n % len(VALUES)], WHENS[n % len(WHENS)])
        for n, name in enumerate(["a", 'q"uote', "\u2028", "café", "a", "\x00"] * 7, 1)
    ]
    projection = CategoryTotals()
    state = by_handler(facts)
    back = projection.load_state(projection.dump_state(state))
    assert figures(back) == figures(state) and list(back) == list(state)
    assert {n: [e[4], e[5]] for n, e in back.items()} == {n: [e[4], e[5]] for n, e in state.items()}
    assert projection.to_json(back) == projection.to_json(state)
