"""Administration of a store: its status, checking every byte of it, migrating it, and
what it knows of its sources.

- ``status.py``: the store's size and each projection's position, lag and snapshots;
- ``check.py``: the logs (``infra/filestore/check.py``) and everything derived from
  them, verified, and repaired where it can be rebuilt;
- ``migrate.py``: copy a store to another backend, resumably, and prove the copy;
- ``sources.py``: every source the store knows, and how its file stands now;
- ``quarantine.py``: the quarantined lines of every source, from the store's events;
- ``events.py``: the recorded events by category, time and source, streamed in store
  order.
"""
