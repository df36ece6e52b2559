"""`eventfold ingest`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.text import Text

from eventfold.commands.common import EXIT_OK, emit, open_application
from eventfold.commands.options import (
    Commands,
    batch_option,
    command,
    configured_sources,
    env_int,
    max_line_option,
    non_negative_int,
    output_options,
    positive_int,
    source_list,
    source_list_options,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError, UsageError

if TYPE_CHECKING:  # imported when ingest runs
    from eventfold.application.ingest.many import IngestSetReport


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "ingest",
        "record the events of JSON Lines sources in the store, exactly once",
        "Each file resumes where its last run ended (compressed files too: gzip,\n"
        "bzip2, xz, zstd); bad lines are quarantined, repeated ids are counted as\n"
        "duplicates or conflicts; the first occurrence of an id, in reading order, wins.\n"
        "exit 0 when the run read its sources to the end (bad lines are not a\n"
        "failure), 2 for an unusable source (refused before anything is recorded),\n"
        "a file not read whole, or a read or write that failed, 3 for a damaged store\n"
        "examples:\n"
        "  eventfold ingest events.jsonl --store ./.eventfold\n"
        "  eventfold ingest logs/ 'archive/*.jsonl.gz' --order mtime\n"
        "  find /data -name '*.zst' -print0 | eventfold ingest --sources-from -\n"
        "  producer | eventfold ingest - --json\n"
        "  eventfold ingest events.jsonl --backend postgres --partition 1/2\n",
    )
    parser.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="*",
        help="a JSON Lines file (compressed or not), a directory, a quoted glob pattern, or "
        "- for stdin (default: the configuration file's sources, in order)",
    )
    source_list_options(parser)
    store_options(parser)
    batch_option(parser, "source lines per atomic commit (default 1000)")
    parser.add_argument(
        "--rescan",
        action="store_true",
        help="if the file changed since it was ingested, ingest it anew from the start "
        "(ids already recorded count as duplicates) instead of refusing",
    )
    parser.add_argument(
        "--partition",
        type=_partition,
        metavar="K/N",
        default=None,
        help="be partition K of N: on postgres, ingest this partition's share of the "
        "files into its own tables, joined to the store's log in the files' order (N "
        "processes on any machines); on the file store, record only the categories of "
        "partition K (a stable hash of the name)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_int,
        metavar="N",
        default=env_int("EVENTFOLD_SNAPSHOT_INTERVAL"),
        help="aggregate snapshot every N events (default 10000, or $EVENTFOLD_SNAPSHOT_INTERVAL)",
    )
    max_line_option(parser)
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="with several files, list N of them (those with something to say first; "
        "default 20; 0 lists all)",
    )
    output_options(parser)
    parser.set_defaults(run=ingest)


def _partition(text: str) -> object:
    from eventfold.application.ingest.partition import Partition

    try:
        return Partition.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def ingest(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.app import undone_on_failure
    from eventfold.application.ingest import Ingestor, SourceError
    from eventfold.application.ingest.layout import (
        partitioned_backend,
        refuse_if_partitioned,
    )
    from eventfold.application.ingest.many import ingest_all
    from eventfold.application.sources import resolve_sources
    from eventfold.reports.ingest import (
        ingest_set_verdict,
        ingest_verdict,
        render_ingest,
        render_ingest_set,
    )
    from eventfold.reports.progress import progress_on

    configured = not args.sources and args.sources_from is None
    names = configured_sources(args) if configured else args.sources
    if not names and args.sources_from is None:
        raise MissingArgumentError("ingest needs a SOURCE (or sources in eventfold.toml)")
    # Every file is looked at first: one that cannot be read leaves the store untouched,
    # and a run that fails before its first commit leaves no new store behind.
    paths = resolve_sources(source_list(args, names), args.max_line_bytes)
    if args.partition is not None and partitioned_backend(args.backend):
        return _ingest_partition(args, paths, out, err)
    with undone_on_failure(args.store, args.backend):
        app = open_application(
            args, create=True, snapshot_interval=args.snapshot_interval, writes=True
        )
        try:
            if args.partition is None:
                refuse_if_partitioned(app)
            with Ingestor(
                app,
                app.state_dir,
                batch=args.batch,
                partition=args.partition,
                max_line=args.max_line_bytes,
            ) as ingestor:
                for warning in ingestor.warnings:
                    err.print(Text(f"eventfold: warning: {warning}"), soft_wrap=True)
                with progress_on(err) as progress:
                    report = ingest_all(ingestor, paths, rescan=args.rescan, progress=progress)
        finally:
            app.close()
        if not report.files:  # nothing was read: the first refusal is the error
            raise SourceError(report.unread[0])
    if len(paths) == 1 and not report.refused:
        one = report.files[0]
        emit(args, out, one.to_json, lambda: render_ingest(one), lambda: ingest_verdict(one))
    else:

        def document() -> dict[str, object]:
            doc = report.to_json()
            if configured:  # the configuration file's sources, as before: one document each
                doc["sources"] = doc["files"]
            return doc

        emit(
            args,
            out,
            document,
            lambda: render_ingest_set(report, args.limit),
            lambda: ingest_set_verdict(report),
        )
    _refuse_unread(report)
    return EXIT_OK


def _refuse_unread(report: IngestSetReport) -> None:
    """``SourceError`` (exit 2) naming the first file not read whole, and how many more."""
    from eventfold.application.ingest import SourceError

    unread = report.unread
    if unread:
        more = len(unread) - 1
        files = "file" if more == 1 else "files"
        others = f" (and {more:,} more {files} not read whole, named in the report)"
        raise SourceError(unread[0] + (others if more else ""))


def _ingest_partition(
    args: argparse.Namespace, paths: list[str], out: Console, err: Console
) -> int:
    """``--partition K/N`` on postgres: this partition's share, then the join."""
    from eventfold.application.ingest.partitioned import ingest_partition
    from eventfold.reports.ingest import (
        partitioned_verdict,
        render_ingest_set,
        render_partitioned,
    )
    from eventfold.reports.progress import progress_on

    if args.rescan:
        msg = (
            "--rescan cannot be combined with --partition: a partition's file would be "
            "read anew beside what the log holds of it; rescan without partitions"
        )
        raise UsageError(msg)
    with progress_on(err) as progress:
        report, partitioned = ingest_partition(
            args.store,
            args.partition,
            paths,
            batch=args.batch,
            max_line=args.max_line_bytes,
            snapshot_interval=args.snapshot_interval,
            progress=progress,
        )
    for warning in partitioned.warnings:
        err.print(Text(f"eventfold: warning: {warning}"), soft_wrap=True)
    emit(
        args,
        out,
        lambda: report.to_json() | partitioned.to_json(),
        lambda: Group(render_ingest_set(report, args.limit), render_partitioned(partitioned)),
        lambda: partitioned_verdict(report, partitioned),
    )
    _refuse_unread(report)
    return EXIT_OK
