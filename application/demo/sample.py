"""Realistic sample sources, for the demo, the benchmarks and the tests.

Deterministic for a seed: events across categories with exact two-decimal
values and timestamps, optionally with some duplicates, conflicts, invalid
lines and out-of-order timestamps mixed in (at the given rates).
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


def write_sample(
    out: BinaryIO,
    count: int,
    *,
    seed: int = 7,
    rates: SampleRates | None = None,
    first_id: int = 1,
    categories: int = len(CATEGORIES),
) -> int:
    """Write ``count`` lines to ``out``; return how many are new valid events."""
    rates = rates or SampleRates()
    rng = random.Random(seed)
    names = CATEGORIES[:categories]
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
            out.write(_line(line["id"], line["category"], line["value"], None))
            continue
        roll -= rates.conflicts
        if roll < rates.invalid:
            out.write(rng.choice(BAD_LINES) + b"\n")
            continue
        roll -= rates.invalid
        minutes = i if roll >= rates.out_of_order else max(0, i - rng.randint(60, 6000))
        when = START + timedelta(minutes=minutes)
        cents = rng.randint(1, 2_000_00)
        line_bytes = _line(
            f"evt-{first_id + i:09d}", rng.choice(names), f"{cents // 100}.{cents % 100:02d}", when
        )
        out.write(line_bytes)
        if len(written) < 10_000:
            written.append(line_bytes)
        new += 1
    return new


def _line(event_id: str, category: str, value: str, when: datetime | None) -> bytes:
    stamp = "" if when is None else f',"timestamp":"{when.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    return (
        f'{{"id":{json.dumps(event_id)},"category":{json.dumps(category, ensure_ascii=False)},'
        f'"value":{value}{stamp}}}\n'
    ).encode()
