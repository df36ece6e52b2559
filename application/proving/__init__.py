"""Proving: comparing the store with what it should hold, and mending what is missing.

- ``reference.py``: the expected state of a source by the rules, on a path of its
  own (the standard library's ``json``, no ingest or projection code);
- ``verify.py``: catch the projection up, compare it with an expected state (a
  source, a document, a checksum) and say what differs, down to the events;
- ``reconcile.py``: replay the source events the store lacks, then verify again;
- ``lineage.py``: explain one category's total (its events by source and hour, the
  projection's figures, snapshot and checksums), with ``setaside.py``: what ingest
  set aside for the category (conflicts, quarantined lines).
"""
