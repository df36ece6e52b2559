"""Partitioned ingest on PostgreSQL: N processes, each parsing its share of the files into
tables of its own, whose events join the store's one log in the files' documented order.

- **The layout.** A store is partitioned from its first ingest: its number of
  partitions is recorded (``infra/backends/partitions.py``); a run with another
  ``N``, or without ``--partition`` on a partitioned store, is refused.
- **The plan.** The first partition to arrive lists the run's files in the
  documented order (``resolve_sources``) and gives each to a partition: a file
  planned before keeps its partition (its progress is in that partition's
  tables); a new file goes to the partition with the fewest bytes so far. The
  others join that plan, and must be given the same files.
- **Each partition** ingests its files, one after another in plan order, into
  its own application (``Eventfold_pKofN``: the library's tables with that
  prefix) exactly as an ingest without partitions does: its own dedup index,
  positions, quarantine and crash recovery. When it finishes a file it marks
  it done, with where its tables ended.
- **The join** (``joining.py``) copies each file's rows to the log in plan
  order: an id that an earlier file (of any partition) holds becomes a
  duplicate or a conflict of this file's source, so the earliest occurrence
  wins whichever partition committed first.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

from eventfold.application.app import Eventfold, open_app
from eventfold.application.ingest.joining import BackgroundJoin, JoinReport, join_ready
from eventfold.application.ingest.layout import PartitionRefusedError
from eventfold.application.ingest.many import IngestSetReport, Refused, ingest_all
from eventfold.application.ingest.partition import Partition
from eventfold.application.ingest.run import Ingestor
from eventfold.application.progress import Progress
from eventfold.application.recorded import RECORDED_TOPIC
from eventfold.infra.backends.partitions import (
    PartitionBackend,
    PartitionTables,
    PlannedFile,
    partition_app_name,
    partition_table,
)
from eventfold.infra.compression import uncompressed_size
from eventfold.infra.sourcefile import SourceError, source_name

_UNSUPPORTED_KEYS = ("CIPHER_TOPIC", "COMPRESSOR_TOPIC")
VANISHED = "vanished since the ingest was planned: no such file (passed over)"
__all__ = ["PartitionRefusedError", "PartitionedReport", "ingest_partition"]


@dataclass
class PartitionedReport:
    """What one partition did: its share of the plan, and what joined the log."""

    partition: Partition
    files_planned: int
    files_of_this_partition: int
    files_done_before: int
    join: JoinReport
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": str(self.partition),
            "files_planned": self.files_planned,
            "files_of_this_partition": self.files_of_this_partition,
            "files_done_before": self.files_done_before,
            "join": self.join.to_json(),
        }


def ingest_partition(
    store: str,
    partition: Partition,
    paths: Sequence[str],
    *,
    batch: int = 1000,
    max_line: int | None = None,
    snapshot_interval: int | None = None,
    progress: Progress | None = None,
) -> tuple[IngestSetReport, PartitionedReport]:
    """Ingest this partition's share of ``paths`` and join what is ready to the log."""
    for path in paths:
        if path == "-" or not os.path.isfile(path):
            msg = f"{path}: --partition reads regular files (every partition lists the same ones)"
            raise SourceError(msg)
    identities = [source_name(p) for p in paths]
    with _opened(store, None, snapshot_interval) as log_app:
        _refuse_transcoding(log_app)
        tables = PartitionTables(log_app.process_recorder)  # type: ignore[arg-type]
        planned = _plan(tables, partition, identities, paths)
        given = dict(zip(identities, paths, strict=True))
        mine = [f for f in planned if f.partition == partition.index]
        done_before = sum(1 for f in mine if f.done)
        report = IngestSetReport()
        background = BackgroundJoin(log_app, tables, partition.count)
        try:
            warnings = _ingest_share(
                store,
                partition,
                mine,
                given,
                tables,
                background,
                report,
                batch=batch,
                max_line=max_line,
                snapshot_interval=snapshot_interval,
                progress=progress,
            )
        finally:
            joined = background.close()
        join_ready(log_app, tables, partition.count, wait=True, report=joined)
    summary = PartitionedReport(partition, len(planned), len(mine), done_before, joined, warnings)
    return report, summary


def _ingest_share(
    store: str,
    partition: Partition,
    mine: list[PlannedFile],
    given: dict[str, str],
    tables: PartitionTables,
    background: BackgroundJoin,
    report: IngestSetReport,
    *,
    batch: int,
    max_line: int | None,
    snapshot_interval: int | None,
    progress: Progress | None,
) -> list[str]:
    """Ingest this partition's files not finished yet, in plan order, into its own
    tables, marking each finished and asking for a join; the ingest's warnings."""
    own_table = partition_table(partition.index, partition.count)
    with _opened(store, partition, snapshot_interval) as part_app:
        options: dict[str, Any] = {"batch": batch, "repeats": False}
        if max_line is not None:
            options["max_line"] = max_line
        backend = part_app.backend
        assert isinstance(backend, PartitionBackend)
        with (
            background.claiming(backend),
            Ingestor(part_app, part_app.state_dir, **options) as ingestor,
        ):
            warnings = list(ingestor.warnings)
            for f in mine:
                if f.done:
                    continue
                file_path = given.get(f.identity)
                if file_path is None:  # vanished since it was planned (``_plan`` checked)
                    report.refused.append(Refused(f.identity, VANISHED))
                else:
                    backend.claim_for(f.ordinal)
                    one = ingest_all(ingestor, [file_path], progress=progress)
                    for file in one.files:
                        file.partition = str(partition)
                    report.files += one.files
                    report.refused += one.refused
                    report.elapsed += one.elapsed
                tables.finish(f.ordinal, tables.staged_end(own_table))
                background.ask()
    return warnings


@contextlib.contextmanager
def _opened(
    store: str, partition: Partition | None, snapshot_interval: int | None
) -> Iterator[Eventfold]:
    """The store's application (the log), or a partition's own (its tables)."""
    if partition is None:
        app = open_app(store, "postgres", create=True, writes="ingest")
    else:
        name = partition_app_name(partition.index, partition.count)
        app = open_app(
            store,
            "postgres",
            create=True,
            writes="ingest",
            snapshot_interval=snapshot_interval,
            application=type(name, (Eventfold,), {"name": name}),
        )
    release = None
    try:
        if partition is not None:
            backend = PartitionBackend(
                app.backend,  # type: ignore[arg-type]
                RECORDED_TOPIC,
                partition.index,
            )
            app.backend = backend
            release = backend.lock(partition.index, partition.count)
            if release is None:
                msg = f"partition {partition} of this store is running elsewhere"
                raise PartitionRefusedError(msg)
        yield app
    finally:
        if release is not None:
            release()
        app.close()


def _refuse_transcoding(app: Eventfold) -> None:
    """The join reads event ids in the database: states must be the library's plain JSON."""
    for key in _UNSUPPORTED_KEYS:
        if app.env.get(key):
            msg = f"{key} is set: a partitioned store keeps states as plain JSON (unset it)"
            raise PartitionRefusedError(msg)


def _plan(
    tables: PartitionTables, partition: Partition, identities: list[str], paths: Sequence[str]
) -> list[PlannedFile]:
    """The plan this partition works to: the open one, or a new one of ``identities``."""
    with tables.locked("plan") as cursor:
        recorded = tables.partitions(cursor)
        if recorded is None:
            if tables.log_has_events(cursor):
                msg = (
                    "this store holds events ingested without --partition; a partitioned "
                    "store starts empty (use a new POSTGRES_SCHEMA, or ingest without --partition)"
                )
                raise PartitionRefusedError(msg)
            tables.record_partitions(cursor, partition.count)
        elif recorded != partition.count:
            msg = (
                f"this store has {recorded} partitions: start each worker with "
                f"--partition K/{recorded}, not {partition}"
            )
            raise PartitionRefusedError(msg)
        every = tables.files(cursor)
        unjoined = [f for f in every if not f.joined]
        if unjoined:  # a partition is still at it, or a run died before its last join
            plan = unjoined[0].plan
            files = [f for f in every if f.plan == plan]
            _check_given(files, identities, partition)
            return files
        plan = _plan_name(identities, len(every))
        before = {f.identity: f.partition for f in every}
        tables.add_plan(cursor, plan, _assign(identities, paths, partition.count, before))
        return [f for f in tables.files(cursor) if f.plan == plan]


def _check_given(files: list[PlannedFile], identities: list[str], partition: Partition) -> None:
    """``PartitionRefusedError`` unless ``identities`` fit the plan under way: none new
    (they wait for a plan of their own), and every file of this partition not finished
    yet given, unless it vanished since (it is then reported and passed over)."""
    planned = {f.identity for f in files}
    new = [i for i in identities if i not in planned]
    if new:
        more = f" (and {len(new) - 1:,} more)" if len(new) > 1 else ""
        msg = (
            f"{new[0]}{more} is not in the ingest under way ({len(files):,} files, planned "
            f"first): finish it (every partition over its files), then ingest new files"
        )
        raise PartitionRefusedError(msg)
    given = set(identities)
    for f in files:
        mine = f.partition == partition.index and not f.done
        if mine and f.identity not in given and os.path.exists(f.identity):
            msg = (
                f"{f.identity} is partition {partition}'s in the ingest under way and not "
                "read yet: give it too (every partition the files of the ingest under way)"
            )
            raise PartitionRefusedError(msg)


def _plan_name(identities: list[str], planned_before: int) -> str:
    digest = blake2b("\n".join(identities).encode(), digest_size=6).hexdigest()
    return f"{planned_before + 1}-{digest}"


def _assign(
    identities: list[str], paths: Sequence[str], count: int, before: dict[str, int]
) -> list[tuple[str, int]]:
    """Each file's partition: the one it had (its progress is there), else the partition
    with the fewest bytes so far (uncompressed, as ``uncompressed_size`` estimates them;
    the lowest on a tie), in the files' order."""
    load = [0] * (count + 1)
    sizes = [uncompressed_size(p) for p in paths]
    chosen: list[int] = []
    for identity, size in zip(identities, sizes, strict=True):
        part = before.get(identity)
        if part is None:
            part = min(range(1, count + 1), key=lambda k: (load[k], k))
        load[part] += size
        chosen.append(part)
    return list(zip(identities, chosen, strict=True))
