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
"""

from eventfold.application.ingest.run import READER_PROCESS_BYTES, Ingestor, SourceRewrittenError
from eventfold.infra.sourcefile import SourceError, open_source

__all__ = ["READER_PROCESS_BYTES", "Ingestor", "SourceError", "SourceRewrittenError", "open_source"]
