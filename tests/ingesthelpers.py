"""Helpers for the ingest tests: an independent reference and the store's view.

``reference_totals`` is the product's independent reference (the one
``verify --source`` uses), so that one bug cannot hide on both sides of a
comparison with what ingest stored.
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from eventfold.application.app import Eventfold, open_store
from eventfold.application.proving.reference import expected_from_source
from eventfold.application.recorded import RECORDED_TOPIC
from eventfold.domain.model import Category
from processes import HANG, eventfold

Totals = dict[str, tuple[int, Decimal]]


def reference_totals(path: Path) -> Totals:
    """Totals by the rules (first valid occurrence of an id wins; pending tail ignored),
    computed by ``application/reference.py``: the standard library's ``json`` and
    checks of its own, not the ingest parser."""
    expected = expected_from_source(str(path))
    return {name: (count, total) for name, (count, total) in expected.totals.items()}


def store_totals(app: Eventfold) -> Totals:
    """Totals from every ``Category.Recorded`` event, decoded by the library's mapper."""
    totals: dict[str, list[Any]] = {}
    ids: set[str] = set()
    start = 0
    with localcontext() as ctx:
        ctx.prec = 10_000
        while page := app.recorder.select_notifications(
            start, 1000, inclusive_of_start=False, topics=[RECORDED_TOPIC]
        ):
            for n in page:
                event: Any = app.mapper.to_domain_event(n)
                assert event.event_id not in ids, f"{event.event_id} recorded twice"
                ids.add(event.event_id)
                entry = totals.setdefault(event.category, [0, Decimal(0)])
                entry[0] += 1
                entry[1] += event.value
            start = page[-1].id
    return {name: (count, total) for name, (count, total) in totals.items()}


def aggregate_totals(app: Eventfold, names: list[str]) -> Totals:
    """Totals as the library's repository loads the ``Category`` aggregates."""
    result: Totals = {}
    for name in names:
        category: Category = app.repository.get(Category.create_id(name))
        result[name] = (category.count, category.total)
    return result


def ingest_json(
    source: Path | str, store: Path, *options: str, **kwargs: Any
) -> tuple[int, Any, str]:
    """``eventfold ingest --json``: its exit code, its JSON document (on success), its stderr."""
    done = subprocess.run(
        eventfold("ingest", str(source), "--store", str(store), "--json", *options),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
        **kwargs,
    )
    doc = json.loads(done.stdout) if done.returncode == 0 else None
    return done.returncode, doc, done.stderr


def agreed_totals(source: Path, store: Path) -> dict[str, tuple[int, Decimal]]:
    """The store's totals, checked equal to the independent reference's."""
    app = open_store(str(store))
    try:
        totals = store_totals(app)
    finally:
        app.close()
    assert totals == reference_totals(source)
    return totals
