"""`eventfold sources`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_OK, emit, open_application
from eventfold.commands.options import Commands, command, output_options, store_options


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "sources",
        "every source the store knows: where ingest stands in it, and whether its file "
        "is complete, grew, was rewritten or vanished since",
        "states: complete, grew, rewritten, vanished, unreadable, unchecked (a compressed "
        "file with --quick), not a file (standard input, a FIFO, a replay)\n"
        "exit 0 (whatever the states), 2 for usage, 3 for a damaged store\n"
        "examples:\n"
        "  eventfold sources\n"
        "  eventfold sources --quick --json\n",
    )
    store_options(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="decide by sizes only: do not read each file's ingested bytes to compare their "
        "digest (a file rewritten to the same size then shows as complete or grew)",
    )
    output_options(parser)
    parser.set_defaults(run=sources)


def sources(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.sources import source_states
    from eventfold.reports.progress import progress_on
    from eventfold.reports.sources import render_sources, totals_line

    app = open_application(args)
    try:
        with progress_on(err) as progress:
            report = source_states(app, digest=not args.quick, progress=progress)
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_sources(report), lambda: totals_line(report))
    return EXIT_OK
