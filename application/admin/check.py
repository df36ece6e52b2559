"""``eventfold check``: the logs (``infra/filestore/check.py``) and everything derived from them.

Beside every byte of every log, it verifies the dedup indexes (checkpoint, runs,
filter) and the projections' snapshot files, and names the file and byte offset
of what is damaged. With ``repair``, derived structures that fail are discarded
(the next ingest or catch-up rebuilds them from the log); the log is never
changed but to drop a torn tail.
"""

from __future__ import annotations

import glob
import os

from eventfold.application.app import StorePathError, require_writable
from eventfold.application.ingest.dedup import verify_dedup
from eventfold.application.progress import BYTES, CHECKING, Progress, tell
from eventfold.infra import fileio, storepath
from eventfold.infra.backends import backend_name, checks_files
from eventfold.infra.errors import UsageError
from eventfold.infra.filestore.check import DerivedReport, Problem, StoreReport, check_store
from eventfold.projections.snapshots import snapshot_damage


def check(
    store: str,
    *,
    backend: str | None = None,
    repair: bool = False,
    progress: Progress | None = None,
) -> StoreReport:
    """Check the store in directory ``store``; with ``repair``, mend what can be rebuilt.
    ``progress`` is told the bytes of the logs read, of their size.

    Raises ``UsageError`` for a backend whose store is not files (``postgres``).
    """
    if not checks_files(backend_name(backend)):
        msg = (
            "check reads the file store's log files; PostgreSQL keeps its own "
            "integrity (use the database's tools)"
        )
        raise UsageError(msg)
    problem = storepath.path_problem(store)
    if problem:
        raise StorePathError(problem)
    if repair:
        require_writable(store, "check --repair")
    unreadable = storepath.unreadable_part(store)
    if unreadable is not None:  # not damage: this user cannot read it
        msg = f"{unreadable}: cannot be read here (permission denied); check reads every file"
        raise UsageError(msg)
    report = check_store(
        os.path.abspath(store),  # named as status names it, wherever check was run from
        repair=repair,
        progress=lambda done, total: tell(progress, CHECKING, done, total, BYTES),
    )
    for directory in sorted(glob.glob(os.path.join(store, "dedup*"))):
        if os.path.isdir(directory):
            report.derived.append(_dedup(directory, repair))
    pattern = os.path.join(store, "projections", "*", "gen-*", "snap-*.json")
    for path in sorted(glob.glob(pattern)):
        report.derived.append(_snapshot(path, repair))
    return report


def _dedup(directory: str, repair: bool) -> DerivedReport:
    status, found = verify_dedup(directory)
    report = DerivedReport(
        "dedup index", directory, status, [Problem(*problem) for problem in found]
    )
    if repair and status == "damaged":
        lock = fileio.try_flock(os.path.join(directory, "LOCK"))
        if lock is None:
            report.problems.append(Problem(directory, 0, "an ingest holds it: not repaired"))
            return report
        try:
            for name in os.listdir(directory):
                if name != "LOCK":
                    os.unlink(os.path.join(directory, name))
            fileio.fsync_dir(directory)
        finally:
            os.close(lock)
        report.status = "repaired"  # discarded: the next ingest rebuilds it from the store
    return report


def _snapshot(path: str, repair: bool) -> DerivedReport:
    try:
        with open(path, "rb") as f:
            problem = snapshot_damage(f.read())
    except OSError as e:
        problem = f"unreadable ({e.strerror or e})"
    if problem is None:
        return DerivedReport("projection snapshot", path, "ok")
    report = DerivedReport("projection snapshot", path, "damaged", [Problem(path, 0, problem)])
    if repair:
        os.unlink(path)  # never used as it is: catch-up takes an older one, or rebuilds
        report.status = "repaired"
    return report
