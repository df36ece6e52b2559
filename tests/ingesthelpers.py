"""Helpers for the ingest tests: an independent reference and the store's view.

``reference_totals`` applies the README's source rules with the standard
library's ``json`` (not eventfold's parser), so that one bug cannot hide on
both sides of a comparison.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.codec import RECORDED_TOPIC
from eventfold.domain.model import Category

Totals = dict[str, tuple[int, Decimal]]


def _reject(name: str) -> Any:
    raise ValueError(name)


def _valid(doc: Any) -> tuple[str, str, Decimal] | None:
    if not isinstance(doc, dict):
        return None
    event_id, category, value = doc.get("id"), doc.get("category"), doc.get("value")
    if isinstance(event_id, bool) or not isinstance(event_id, (str, int)) or event_id == "":
        return None
    if not isinstance(category, str) or not category:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    stamp = doc.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (str, int, Decimal, type(None))):
        return None
    if isinstance(stamp, str):
        try:
            datetime.fromisoformat(stamp)
        except ValueError:
            return None
    elif stamp is not None and not -62135596800 <= stamp < 253402300800:
        return None
    return str(event_id), category, Decimal(value)


def reference_totals(path: Path) -> Totals:
    """Totals by the rules: first valid occurrence of an id wins; pending tail ignored."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] and not lines[-1].rstrip().endswith(b"}"):
        lines = lines[:-1]  # an unterminated tail that is not a whole object yet
    seen: set[str] = set()
    totals: dict[str, list[Any]] = {}
    with localcontext() as ctx:
        ctx.prec = 10_000
        for raw in lines:
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw.decode("utf-8"), parse_float=Decimal,
                                 parse_constant=_reject)
            except (ValueError, UnicodeDecodeError):
                continue
            valid = _valid(doc)
            if valid is None or valid[0] in seen:
                continue
            seen.add(valid[0])
            entry = totals.setdefault(valid[1], [0, Decimal(0)])
            entry[0] += 1
            entry[1] += valid[2]
    return {name: (count, total) for name, (count, total) in totals.items()}


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
