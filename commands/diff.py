"""`eventfold diff A B`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_OK, emit, open_application
from eventfold.commands.options import (
    Commands,
    command,
    output_options,
    projection_option,
    store_options,
)


def register(commands: Commands) -> None:
    diff_ = command(
        commands,
        "diff",
        "how a projection's state changed between two points",
        "A point is @N (the store up to notification N), an ISO time (the events\n"
        "that occurred then or before; with --recorded, that the store had recorded\n"
        "then), gen-NNNNNNNN (a generation kept) or now. Nothing is written.\n"
        "examples:\n"
        "  eventfold diff 2026-11-30T00:00Z now\n"
        "  eventfold diff @4800 @9600 --json\n"
        "  eventfold diff gen-00000003 gen-00000004 --export changes.csv\n",
    )
    diff_.add_argument("a", metavar="A", help="the first point")
    diff_.add_argument("b", metavar="B", help="the second point")
    store_options(diff_)
    projection_option(diff_)
    diff_.add_argument(
        "--recorded",
        action="store_true",
        help="read times as when the store recorded the events, not when they occurred",
    )
    diff_.add_argument(
        "--export",
        metavar="FILE",
        help="write every changed row to FILE: .csv or .jsonl",
    )
    output_options(diff_)
    diff_.set_defaults(run=diff)


def diff(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.projecting.asof import Point
    from eventfold.application.proving.between import diff_points
    from eventfold.application.proving.export import export_format
    from eventfold.projections.registry import load_projection
    from eventfold.reports.asof import render_diff
    from eventfold.reports.progress import progress_on

    if args.export is not None:
        export_format(args.export)
    a = Point.parse(args.a, recorded=args.recorded and not _positional(args.a))
    b = Point.parse(args.b, recorded=args.recorded and not _positional(args.b))
    projection = load_projection(args.projection)
    app = open_application(args)
    try:
        with progress_on(err) as progress:
            result = diff_points(
                app, app.state_dir, projection, a, b, export=args.export, progress=progress
            )
    finally:
        app.close()
    emit(args, out, result.to_json, lambda: render_diff(result))
    return EXIT_OK


def _positional(text: str) -> bool:
    """Whether a point is not a time (``--recorded`` changes only times)."""
    given = text.strip()
    return given == "now" or given.startswith(("@", "gen-"))
