"""Realistic sample sources, for the demo, the benchmarks and the tests.

Deterministic for a seed: events across categories with exact two-decimal
values and timestamps, optionally with some duplicates, conflicts, invalid
lines and out-of-order timestamps mixed in (at the given rates).

Beyond the 20 named categories, names are generated (``category-000021``
onward), and each event's category is drawn by a second generator: the ids,
values and timestamps of a source are then the same whatever the number of
categories, only spread differently. ``long_ids`` replaces the short
sequential ids (``evt-000000001``) with 32 random hexadecimal characters,
drawn by a third generator (seeded by ``seed`` and ``first_id``, so that
another ``first_id`` gives new ids).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

CATEGORIES = (
    "groceries",
    "rent",
    "utilities",
    "transport",
    "dining",
    "health",
    "travel",
    "books",
    "music",
    "games",
    "garden",
    "pets",
    "gifts",
    "insurance",
    "taxes",
    "café",
    "Überweisung",
    "[bold]markup[/bold]",
    "tools",
    "sports",
)
START = datetime(2026, 1, 1, tzinfo=UTC)
BAD_LINES = (
    b"not json at all",
    b'{"id": "x", "category": "rent"}',
    b'{"id": "", "category": "rent", "value": 1}',
    b'{"id": "y", "category": "rent", "value": "12.50"}',
    b'{"id": "z", "category": "rent", "value": true}',
    b'{"id": "w", "category": "", "value": 1}',
    b'{"id": "v", "category": "rent", "value": 1, "timestamp": "yesterday"}',
    b'["an", "array"]',
    b'{"id": "u", "category": "caf\xe9", "value": 1}',
)


@dataclass(frozen=True)
class SampleRates:
    duplicates: float = 0.0
    conflicts: float = 0.0
    invalid: float = 0.0
    out_of_order: float = 0.0


def category_names(count: int) -> tuple[str, ...]:
    """The first ``count`` category names: ``CATEGORIES``, then ``category-000021`` onward."""
    if count < 1:
        msg = f"categories must be at least 1, not {count}"
        raise ValueError(msg)
    generated = (f"category-{number:06d}" for number in range(len(CATEGORIES) + 1, count + 1))
    return CATEGORIES[:count] + tuple(generated)


def write_sample(
    out: BinaryIO,
    count: int,
    *,
    seed: int = 7,
    rates: SampleRates | None = None,
    first_id: int = 1,
    categories: int = len(CATEGORIES),
    long_ids: bool = False,
) -> int:
    """Write ``count`` lines to ``out``; return how many are new valid events.

    ``categories`` up to 20 picks among the first names of ``CATEGORIES``
    (as it always has); more spreads the same events over generated names
    (see the module's docstring). ``long_ids`` gives each new event 32
    random hexadecimal characters as its id.
    """
    rates = rates or SampleRates()
    rng = random.Random(seed)
    names = category_names(categories)
    encoded = {name: json.dumps(name, ensure_ascii=False) for name in names}
    drawn = names if categories <= len(CATEGORIES) else CATEGORIES
    spread = random.Random(f"categories:{seed}:{first_id}") if drawn is not names else None
    ids = random.Random(f"ids:{seed}:{first_id}") if long_ids else None
    days: dict[int, str] = {}
    written: list[bytes] = []
    new = 0
    for i in range(count):
        roll = rng.random()
        if written and roll < rates.duplicates:
            out.write(rng.choice(written))
            continue
        roll -= rates.duplicates
        if written and roll < rates.conflicts:
            line = json.loads(rng.choice(written))
            line["value"] = f"{rng.randint(1, 99999) / 100:.2f}"
            out.write(_untimed_line(line["id"], line["category"], line["value"]))
            continue
        roll -= rates.conflicts
        if roll < rates.invalid:
            out.write(rng.choice(BAD_LINES) + b"\n")
            continue
        roll -= rates.invalid
        minutes = i if roll >= rates.out_of_order else max(0, i - rng.randint(60, 6000))
        cents = rng.randint(1, 2_000_00)
        category = rng.choice(drawn)
        if spread is not None:
            category = names[spread.randrange(categories)]
        event_id = f"evt-{first_id + i:09d}" if ids is None else f"{ids.getrandbits(128):032x}"
        line_bytes = (
            f'{{"id":"{event_id}","category":{encoded[category]},'
            f'"value":{cents // 100}.{cents % 100:02d},"timestamp":"{_stamp(minutes, days)}"}}\n'
        ).encode()
        out.write(line_bytes)
        if len(written) < 10_000:
            written.append(line_bytes)
        new += 1
    return new


def _stamp(minutes: int, days: dict[int, str]) -> str:
    """``START`` plus ``minutes``, as ``2026-01-01T00:00:00Z`` (``days`` caches each date)."""
    day, minute = divmod(minutes, 24 * 60)
    date = days.get(day)
    if date is None:
        date = days[day] = (START + timedelta(days=day)).strftime("%Y-%m-%dT")
    return f"{date}{minute // 60:02d}:{minute % 60:02d}:00Z"


def _untimed_line(event_id: str, category: str, value: str) -> bytes:
    return (
        f'{{"id":{json.dumps(event_id)},"category":{json.dumps(category, ensure_ascii=False)},'
        f'"value":{value}}}\n'
    ).encode()
