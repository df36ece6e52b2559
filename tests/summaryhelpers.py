"""Sources with timestamps and reconstruction summaries, written for tests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

Event = tuple[str, str, str, str | None]  # id, category, value (JSON number), timestamp


def write(path: Path, events: list[Event]) -> Path:
    """A JSON Lines source; each value written as the JSON number it is given as."""
    with path.open("w", encoding="utf-8") as f:
        for event_id, category, value, timestamp in events:
            doc: dict[str, Any] = {"id": event_id, "category": category}
            if timestamp is not None:
                doc["timestamp"] = timestamp
            f.write(json.dumps(doc)[:-1] + f', "value": {value}}}\n')
    return path


def write_summary(path: Path, summary: dict[str, tuple[int, Decimal]]) -> Path:
    """A summary CSV: ``category,count,total``, a row per category."""
    rows = "".join(f"{name},{n},{t}\n" for name, (n, t) in summary.items())
    path.write_text("category,count,total\n" + rows, encoding="utf-8")
    return path
