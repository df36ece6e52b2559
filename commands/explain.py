"""`eventfold explain CATEGORY`."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, emit, open_application
from eventfold.commands.options import (
    Commands,
    command,
    output_options,
    projection_option,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "explain",
        "where one category's total comes from: its events by source and by hour, what "
        "was set aside for it and why, the snapshot the projection was caught up from",
        "The projection is caught up first (as catchup does); the category's events are\n"
        "then read up to the same position and summed: their sum must equal the\n"
        "projection's total ('sum of events = projection total: yes'). Where a\n"
        "reconstruction stands for part of it, the raw events it holds out are not counted\n"
        "and its summary is: 'sum of raw events counted ... + reconstructed ... (R1) =\n"
        "projection total ...: yes'.\n"
        "exit 0, 1 when the sum differs from the projection's total, 2 for usage or a\n"
        "category no event names, 3 for a damaged store\n"
        "examples:\n"
        "  eventfold explain rent\n"
        "  eventfold explain rent --projection hourly_totals --json\n",
    )
    parser.add_argument(
        "category",
        metavar="CATEGORY",
        help="the category, exactly as recorded (case-sensitive; no pattern)",
    )
    store_options(parser)
    projection_option(parser)
    output_options(parser)
    parser.set_defaults(run=explain)


def explain(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.proving.lineage import explain as lineage_of
    from eventfold.projections.registry import load_projection
    from eventfold.reports.lineage import render_lineage, verdict_line
    from eventfold.reports.progress import progress_on

    if not args.category.strip():
        raise MissingArgumentError("argument CATEGORY: empty; a category has a name")
    projection = load_projection(args.projection)
    app = open_application(args)
    try:
        with progress_on(err) as progress:
            lineage = lineage_of(app, projection, args.category, progress=progress)
    finally:
        app.close()
    for skipped in lineage.caught_up.skipped:
        err.print(
            Text(f"eventfold: warning: snapshot not used: {skipped.path}: {skipped.reason}"),
            soft_wrap=True,
        )
    emit(args, out, lineage.to_json, lambda: render_lineage(lineage), lambda: verdict_line(lineage))
    return EXIT_MISMATCH if lineage.matches is False else EXIT_OK
