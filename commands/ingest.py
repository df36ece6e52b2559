"""`eventfold ingest`."""

from __future__ import annotations

import argparse
import contextlib

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
    output_options,
    positive_int,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "ingest",
        "record the events of a JSON Lines source in the store, exactly once",
        "Resumes where the last run of the same file ended; bad lines are\n"
        "quarantined, repeated ids are counted as duplicates or conflicts.\n"
        "exit 0 when the run read its source to the end (bad lines are not a\n"
        "failure), 2 for an unusable source or a read or write that failed,\n"
        "3 for a damaged store\n"
        "examples:\n"
        "  eventfold ingest events.jsonl --store ./.eventfold\n"
        "  producer | eventfold ingest - --json\n"
        "  eventfold ingest events.jsonl --backend postgres --partition 1/2\n",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        help="a JSON Lines file, or - for stdin (default: each of the configuration "
        "file's sources, in order)",
    )
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
        help="record only the categories of partition K of N (a stable hash of the "
        "name), so that N processes, on any machines sharing a postgres store, split "
        "one source without overlap",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_int,
        metavar="N",
        default=env_int("EVENTFOLD_SNAPSHOT_INTERVAL"),
        help="aggregate snapshot every N events (default 10000, or $EVENTFOLD_SNAPSHOT_INTERVAL)",
    )
    max_line_option(parser)
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
    from eventfold.application.ingest import Ingestor, open_source
    from eventfold.reports.ingest import ingest_verdict, render_ingest
    from eventfold.reports.progress import progress_on

    names = [args.source] if args.source is not None else configured_sources(args)
    if not names:
        raise MissingArgumentError("ingest needs a SOURCE (or sources in eventfold.toml)")
    reports = []
    # The sources are opened first: a source that cannot be read leaves the store untouched,
    # and a run that fails before its first commit leaves no new store behind.
    with undone_on_failure(args.store, args.backend), contextlib.ExitStack() as opened:
        sources = [opened.enter_context(open_source(name)) for name in names]
        app = open_application(
            args, create=True, snapshot_interval=args.snapshot_interval, writes=True
        )
        try:
            with Ingestor(
                app,
                app.state_dir,
                batch=args.batch,
                partition=args.partition,
                max_line=args.max_line_bytes,
            ) as ingestor:
                for warning in ingestor.warnings:
                    err.print(Text(f"eventfold: warning: {warning}"), soft_wrap=True)
                for source in sources:
                    with progress_on(err) as progress:
                        reports.append(ingestor.run(source, rescan=args.rescan, progress=progress))
        finally:
            app.close()
    if len(reports) == 1:
        report = reports[0]
        emit(
            args, out, report.to_json, lambda: render_ingest(report), lambda: ingest_verdict(report)
        )
    else:  # the configuration file's sources: one document, one report after another
        emit(
            args,
            out,
            lambda: {"sources": [r.to_json() for r in reports]},
            lambda: Group(*(render_ingest(r) for r in reports)),
            lambda: Group(*(ingest_verdict(r) for r in reports)),
        )
    return EXIT_OK
