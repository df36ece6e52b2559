"""Administration of a store: its status, checking every byte of it, and migrating it.

- ``status.py``: the store's size and each projection's position, lag and snapshots;
- ``check.py``: the logs (``infra/filestore/check.py``) and everything derived from
  them, verified, and repaired where it can be rebuilt;
- ``migrate.py``: copy a store to another backend, resumably, and prove the copy.
"""
