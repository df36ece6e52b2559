"""The application layer: the use cases, over one application and its backend.

- ``app.py``: the eventsourcing ``Application`` (``Eventfold``) over the backend
  chosen once (``open_app``);
- ``recorded.py``: the ``Category.Recorded`` event, encoded and decoded in bulk;
- ``pages.py``: reading notifications a page at a time;
- ``children.py``: the one entry point of child processes;
- ``ingest/``, ``projecting/``, ``proving/``, ``admin/``, ``demo/``: the use
  cases (each package's docstring says what it owns).

docs/ARCHITECTURE.md has the map.
"""
