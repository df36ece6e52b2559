"""`eventfold status`."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console, Group, RenderableType

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
    from eventfold.reports.configuration import configuration_json, render_configuration
    from eventfold.reports.projection import render_status

    app = open_application(args)
    try:
        status = store_status(app, app.state_dir)
    finally:
        app.close()
    config = args.configuration
    values, overridden = config.values, args.overridden

    def document() -> dict[str, Any]:
        return status.to_json() | {
            "configuration": configuration_json(config.path, values, overridden)
        }

    def rendered() -> RenderableType:
        return Group(render_status(status), render_configuration(config.where, values, overridden))

    emit(args, out, document, rendered)
    return EXIT_OK
