"""`eventfold status`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_OK, emit, open_application
from eventfold.commands.options import Commands, command, output_options, store_options


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "status",
        "the store's size, and each projection's position, lag and snapshots",
        "examples:\n  eventfold status\n  eventfold status --store ./.eventfold --json\n",
    )
    store_options(parser)
    output_options(parser)
    parser.set_defaults(run=status)


def status(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.status import store_status
    from eventfold.reports.projection import render_status

    app = open_application(args)
    try:
        status = store_status(app, app.state_dir)
    finally:
        app.close()
    emit(args, out, status.to_json, lambda: render_status(status))
    return EXIT_OK
