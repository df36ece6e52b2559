"""`eventfold migrate`."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from eventfold.application.choices import BACKENDS
from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, emit
from eventfold.commands.options import (
    Commands,
    command,
    output_options,
    store_option,
)


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "migrate",
        "copy the store to another backend (resumable), then prove the copy",
        "Copies events in notification order (aggregate versions kept), tracking\n"
        "records and aggregate snapshots; a rerun after a crash resumes. Then\n"
        "compares a SHA-256 of both event streams and each projection's checksum.\n"
        "exit 0 when the copy matches, 1 if not.\n"
        "examples:\n"
        "  eventfold migrate --from file --to postgres --store ./.eventfold\n"
        "  eventfold migrate --from postgres --to file --to-store ./copy --json\n",
    )
    parser.add_argument("--from", choices=BACKENDS, required=True, help="the backend to copy from")
    parser.add_argument("--to", choices=BACKENDS, required=True, help="the backend to copy to")
    store_option(
        parser,
        "the source file store (--from file), or the source machine's working "
        "files (--from postgres); default $EVENTFOLD_STORE, the configuration file's "
        "store, or ./.eventfold",
    )
    parser.add_argument("--to-store", metavar="DIR", help="the file store to copy into (--to file)")
    output_options(parser)
    parser.set_defaults(run=migrate)


def migrate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.migrate import migrate_store
    from eventfold.reports.migrate import render_migrate, verdict
    from eventfold.reports.progress import progress_on

    with progress_on(err) as progress:
        report = migrate_store(
            args.store,
            getattr(args, "from"),
            args.to,
            target_store=args.to_store,
            progress=progress,
        )
    if report.waiting:  # copied is the log: what waits in partition tables is not
        err.print(Text(f"eventfold: warning: {report.waiting}"), soft_wrap=True)
    emit(args, out, report.to_json, lambda: render_migrate(report), lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH
