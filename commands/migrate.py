"""`eventfold migrate`."""

from __future__ import annotations

import argparse
import os

from rich.console import Console

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, UsageError, emit
from eventfold.commands.options import DEFAULT_STORE, Commands, command, output_options
from eventfold.infra.backends import NAMES


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
    parser.add_argument("--from", choices=NAMES, required=True, help="the backend to copy from")
    parser.add_argument("--to", choices=NAMES, required=True, help="the backend to copy to")
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=os.environ.get("EVENTFOLD_STORE", DEFAULT_STORE),
        help="the source file store (--from file), or the source machine's working "
        "files (--from postgres); default $EVENTFOLD_STORE or ./.eventfold",
    )
    parser.add_argument("--to-store", metavar="DIR", help="the file store to copy into (--to file)")
    output_options(parser)
    parser.set_defaults(run=migrate)


def migrate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.migrate import migrate as run_migrate
    from eventfold.application.app import open_app
    from eventfold.infra.backends import is_shared
    from eventfold.reports.migrate import render_migrate, verdict

    source_backend, target_backend = getattr(args, "from"), args.to
    if source_backend == target_backend and is_shared(target_backend):
        raise UsageError(
            f"migrate copies between backends: --from and --to are both "
            f"{target_backend}, one shared database"
        )
    target_store = args.to_store or (args.store if is_shared(target_backend) else None)
    if target_store is None:
        raise UsageError("--to-store DIR is required: the file store to copy into")
    source = open_app(args.store, source_backend, create=False)
    try:
        target = open_app(target_store, target_backend)
        try:
            report = run_migrate(
                source,
                source.state_dir,
                target,
                target.state_dir,
                source_name=source.backend.describe(),
                target_name=target.backend.describe(),
            )
        finally:
            target.close()
    finally:
        source.close()
    emit(args, out, report.to_json, lambda: render_migrate(report), lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH
