"""Ingest: JSON Lines sources become ``Category.Recorded`` events, exactly once.

- ``run.py``: ``Ingestor``, one run over one source: resuming, committing a batch
  with its source position, the dedup index kept in step with the store;
- ``reading.py``: the reading half (lines, rules, encoding), in-process or in a
  reading process; ``rules.py``: what a valid line is (README, "The source format");
- ``deciding.py``: which lines are recorded, duplicates, conflicts or quarantined;
- ``dedup.py``: the dedup index (source id -> first recording), derived from the store;
- ``categories.py``: loading ``Category`` and ``Source`` aggregates fast;
- ``partition.py``, ``quarantine.py``, ``report.py``: partitions, the quarantine
  file, and what a run reports.

The names below are imported when first used, so that a module of this package
(``tracking.py``, ``resuming.py``) can be imported without the whole of ingest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventfold.application.ingest.run import (
        READER_PROCESS_BYTES,
        Ingestor,
        SourceRewrittenError,
    )
    from eventfold.infra.sourcefile import SourceError, open_source

_HOMES = {
    "READER_PROCESS_BYTES": "eventfold.application.ingest.run",
    "Ingestor": "eventfold.application.ingest.run",
    "SourceRewrittenError": "eventfold.application.ingest.run",
    "SourceError": "eventfold.infra.sourcefile",
    "open_source": "eventfold.infra.sourcefile",
}
__all__ = ["READER_PROCESS_BYTES", "Ingestor", "SourceError", "SourceRewrittenError", "open_source"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
