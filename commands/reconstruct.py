"""`eventfold reconstruct`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_OK, emit, given_store_options, open_application
from eventfold.commands.options import (
    Commands,
    command,
    expected_file_options,
    expected_reading,
    output_options,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError


def register(commands: Commands) -> None:
    reconstruct_ = command(
        commands,
        "reconstruct",
        "let a trusted summary stand for the lost events of a period",
        "SUMMARY gives each category's count and total for the period (CSV, TSV, JSON\n"
        "or JSON Lines, read as verify --expected reads them). While the reconstruction\n"
        "stands, category_totals counts the summary and holds out the raw events of the\n"
        "period, those in the store and any found later, so nothing is counted twice;\n"
        "--retire counts the raw events again and shows how far the summary was.\n"
        "examples:\n"
        "  eventfold reconstruct --from finance.csv \\\n"
        "      --period 2026-11-30T12:00Z/2026-11-30T18:00Z --note 'disk lost'\n"
        "  eventfold reconstruct --list\n"
        "  eventfold reconstruct --retire R1\n",
    )
    action = reconstruct_.add_mutually_exclusive_group()
    action.add_argument("--from", dest="summary", metavar="SUMMARY", help="the summary file")
    action.add_argument("--retire", metavar="ID", help="retire the reconstruction ID (R1, ...)")
    action.add_argument("--list", action="store_true", help="list the store's reconstructions")
    reconstruct_.add_argument(
        "--period",
        metavar="START/END",
        help="the period the summary stands for: START <= occurred < END (ISO 8601; UTC "
        "where no offset is given)",
    )
    reconstruct_.add_argument("--note", default="", metavar="TEXT", help="why, for the record")
    expected_file_options(reconstruct_)
    store_options(reconstruct_)
    output_options(reconstruct_)
    reconstruct_.set_defaults(run=reconstruct)


def reconstruct(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.reconstructing import making
    from eventfold.reports.reconstruct import outcome_line, render_listing, render_outcome

    if args.summary is not None and args.period is None:
        raise MissingArgumentError("argument --from: needs --period START/END")
    if args.summary is None and args.period is not None:
        raise MissingArgumentError("argument --period: goes with --from SUMMARY")
    needs = ("the summary", "--from SUMMARY") if args.summary is None else None
    columns, numbers = expected_reading(args, needs)
    if args.summary is None and args.retire is None and not args.list:
        raise MissingArgumentError("one of --from SUMMARY, --retire ID or --list is required")
    period = None if args.period is None else making.Period.parse(args.period)
    if args.list:
        app = open_application(args)
        try:
            found = making.listing(app)
        finally:
            app.close()
        emit(
            args,
            out,
            lambda: {"reconstructions": [making.reconstruction_json(r) for r in found]},
            lambda: render_listing(found),
        )
        return EXIT_OK
    app = open_application(args, writes=True)
    try:
        if args.retire is not None:
            outcome = making.retire(app, args.retire, args.note)
        else:
            assert period is not None
            outcome = making.make(app, args.summary, period, args.note, columns, numbers)
    finally:
        app.close()
    emit(
        args,
        out,
        outcome.to_json,
        lambda: render_outcome(outcome, given_store_options(args)),
        lambda: outcome_line(outcome),
    )
    return EXIT_OK
