"""The ids the store has recorded, kept in step with it: the dedup index, verified.

``KnownIds`` opens the store's dedup index (``dedup.py``), catches it up with
the store, answers for a batch's ids, records what a commit added, marks the ids
that other partitions record, and rebuilds the index from the store (with a
warning) whenever a part of it fails a check.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from eventfold.application.ingest.categories import recorded_event_ids
from eventfold.application.ingest.deciding import OTHER_PARTITION, Commit, SourceRun
from eventfold.application.ingest.dedup import DedupIndex, id_key
from eventfold.application.ingest.partition import Partition
from eventfold.application.ingest.reading import ends_inside_a_line, read_batches
from eventfold.application.recorded import RecordedCodec
from eventfold.infra.filestore.runs import IndexDamagedError

if TYPE_CHECKING:
    from eventfold.application.app import Eventfold

logger = logging.getLogger("eventfold.ingest")


class KnownIds:
    """The dedup index of one ingest, and its upkeep."""

    def __init__(
        self,
        app: Eventfold,
        state_dir: str,
        partition: Partition | None,
        lock_timeout: float,
        batch: int,
        max_line: int,
    ) -> None:
        self.app, self.partition, self.batch, self.max_line = app, partition, batch, max_line
        name = "dedup" if partition is None else partition.dedup_name
        self.index = DedupIndex(os.path.join(state_dir, name))
        self.index.open(app.recorder.max_notification_id() or 0, lock_timeout)
        self.warnings: list[str] = []
        self.current: SourceRun | None = None  # the run under way
        if self.index.problem:
            self.warnings.append(f"dedup index rebuilt from the store: {self.index.problem}")
        self.catch_up()

    def committed(self, run: SourceRun, commit: Commit, nids: list[int]) -> None:
        """Record the ids of a commit that got notification ids ``nids``."""
        if nids[0] != self.index.covered + 1:  # another writer's events came between
            # Other partitions of this source record ids that this one reads itself
            # (as theirs); looking each one up again as a repeat would cost a query.
            sibling = run.name if self.partition is not None and run.fd is not None else None
            self.catch_up(stop=nids[0] - 1, except_source=sibling)
        self.index.add_new(
            commit.recorded_keys + commit.elsewhere_keys,
            [nids[i] for i in commit.recorded] + [OTHER_PARTITION] * len(commit.elsewhere_keys),
            commit.recorded_digests + commit.elsewhere_digests,
        )
        if self.partition is not None:
            self.index.marks[run.source.identity] = run.report.position
        self._advance(nids[-1])

    def mark_elsewhere(self, fd: int, identity: str, marked: int, position: int) -> None:
        """Mark the ids first seen in other partitions' categories in ``marked..position``.

        A partition's marks live in its dedup index, which persists them at its
        checkpoints; after a crash (or a lost index) the lines it had ingested
        since are read again, so that no later line of its own categories is
        taken for the first occurrence of such an id.
        """
        if marked >= position:
            return
        assert self.partition is not None
        owns = self.partition.owns
        with open(fd, "rb", closefd=False) as stream:
            stream.seek(marked)
            batches = read_batches(
                stream,
                marked,
                0,
                self.batch,
                RecordedCodec.plain(),
                "",
                growing=True,
                max_line=self.max_line,
                continued=ends_inside_a_line(fd, marked),
            )
            for parsed in batches:
                found = self.index.find_many(parsed.keys, parsed.digests, self.recorded_key)
                seen: set[bytes] = set()
                elsewhere, digests = [], []
                for i, key in enumerate(parsed.keys):
                    if parsed.offsets[i] >= position:
                        break
                    if i in found or key in seen:
                        continue
                    seen.add(key)
                    if not owns(parsed.categories[i]):
                        elsewhere.append(key)
                        digests.append(parsed.digests[i])
                self.index.add_new(elsewhere, [OTHER_PARTITION] * len(elsewhere), digests)
                if parsed.position >= position:
                    break
        self.index.marks[identity] = position

    def lookup(self, keys: list[bytes], digests: list[bytes]) -> dict[int, tuple[int, bytes]]:
        """The dedup index's answer for ``keys`` (whose contents have ``digests``): the
        first recording of each id seen before. An index that fails a check is rebuilt."""
        try:
            return self.index.find_many(keys, digests, self.recorded_key)
        except IndexDamagedError as e:
            self.rebuild(str(e))
        return self.index.find_many(keys, digests, self.recorded_key)

    def recorded_key(self, nid: int) -> bytes | None:
        """The key of the source id that notification ``nid`` records (None when it
        records no source event): the proof a dedup entry is an id's, not another's
        that shares its short key."""
        for _, event_id, _ in recorded_event_ids(self.app, nid - 1, nid):
            return id_key(event_id)
        return None

    def _advance(self, covered: int) -> None:
        try:
            self.index.advance(covered)
        except IndexDamagedError as e:  # a run read for a merge failed its checksum
            self.rebuild(str(e))

    def rebuild(self, problem: str) -> None:
        """Discard the dedup index and rebuild it from the store (with a warning)."""
        warning = f"dedup index rebuilt from the store: {problem}"
        self.warnings.append(warning)
        logger.warning(warning)
        if self.current is not None:
            self.current.report.warnings.append(warning)
        self.index.discard(problem)
        self.catch_up()
        run = self.current
        if self.partition is not None and run is not None and run.fd is not None:
            self.mark_elsewhere(run.fd, run.source.identity, 0, run.report.position)

    def catch_up(self, stop: int | None = None, except_source: str | None = None) -> None:
        """Add the ids of the Recorded events after the index's coverage (up to ``stop``)."""
        last = (self.app.recorder.max_notification_id() or 0) if stop is None else stop
        ids = recorded_event_ids(self.app, self.index.covered, last, except_source=except_source)
        for nid, event_id, digest in ids:
            self.index.add(id_key(event_id), nid, digest)
            self._advance(nid)
        self.index.covered = max(self.index.covered, last)

    def close(self) -> None:
        """Persist the index and release it."""
        try:
            self.index.flush(wait=True)
        finally:
            self.index.close()


class _NoIndex:
    def reserve(self, count: int) -> None:
        """Nothing to size."""

    marks: dict[str, int] = {}  # noqa: RUF012  # never written


class UndecidedIds:
    """No dedup index: every valid line is recorded, a repeated id too, for a later step
    to decide (a partition's join: ``joining.py``). The same methods as ``KnownIds``."""

    def __init__(self) -> None:
        self.index = _NoIndex()
        self.warnings: list[str] = []
        self.current: SourceRun | None = None

    def lookup(self, keys: list[bytes], digests: list[bytes]) -> dict[int, tuple[int, bytes]]:
        return {}

    def committed(self, run: SourceRun, commit: Commit, nids: list[int]) -> None:
        """Nothing to record."""

    def mark_elsewhere(self, fd: int, identity: str, marked: int, position: int) -> None:
        """No marks: every line is recorded."""

    def close(self) -> None:
        """Nothing to persist."""
