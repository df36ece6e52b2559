"""`eventfold events`."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from eventfold.commands.common import EXIT_OK, open_application
from eventfold.commands.options import (
    Commands,
    command,
    non_negative_int,
    quiet_option,
    store_options,
)

SHOWN = 100  # events the terminal table shows unless --limit says otherwise


def _instant(text: str) -> object:
    from eventfold.application.admin.events import parse_time

    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "events",
        "the recorded events that make up the totals, in store order: id, category, exact "
        "value, time, source file, line and byte offset",
        "--since is inclusive, --until exclusive, both on the event's own timestamp; an\n"
        "event without a timestamp is left out when either is given. An event that a\n"
        "standing reconstruction holds out of category_totals' total is marked (held by).\n"
        "exit 0 (even when no event is selected), 2 for usage, 3 for a damaged store\n"
        "examples:\n"
        "  eventfold events --category rent\n"
        "  eventfold events --category 'cat-*' --since 2024-05-01 --until 2024-06-01 --csv\n"
        "  eventfold events --source logs/a.jsonl --jsonl | head\n",
    )
    store_options(parser)
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="NAME",
        help="only the events of category NAME, or of the categories the glob pattern NAME "
        "matches (case-sensitive); repeat it for more",
    )
    parser.add_argument(
        "--since",
        type=_instant,
        default=None,
        metavar="TIME",
        help="only events whose timestamp is TIME or later (ISO 8601; no zone means UTC; a "
        "date alone is its midnight)",
    )
    parser.add_argument(
        "--until",
        type=_instant,
        default=None,
        metavar="TIME",
        help="only events whose timestamp is before TIME (exclusive; ISO 8601 as --since)",
    )
    parser.add_argument(
        "--source",
        metavar="SOURCE",
        default=None,
        help="only the events of the sources whose recorded name is SOURCE (compared by real "
        "path; - for standard input) or matches it as a glob pattern",
    )
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=None,
        metavar="N",
        help=f"list only the first N events (0: all; default: all, but the terminal table "
        f"shows the first {SHOWN}); the count and total are of every event selected",
    )
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument(
        "--json",
        action="store_true",
        help='one JSON document: {"events": [...], "count", "total", "untimed", "held"}',
    )
    formats.add_argument(
        "--jsonl",
        action="store_true",
        help='one JSON object a line: {"notification_id", "event_id", "category", "value", '
        '"occurred_at", "source", "line", "offset", "held_by"}',
    )
    formats.add_argument(
        "--csv", action="store_true", help="CSV: a header, then a row per event (those keys)"
    )
    quiet_option(parser, sub=True)
    parser.set_defaults(run=events)


def events(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.events import EventQuery, EventStream
    from eventfold.reports.events import (
        count_line,
        write_csv,
        write_json,
        write_jsonl,
        write_table,
    )

    query = EventQuery(tuple(args.category), args.since, args.until, args.source)
    limit = args.limit or None
    if args.limit is None and not (args.json or args.jsonl or args.csv):
        limit = SHOWN
    app = open_application(args)
    try:
        stream = EventStream(app, query)
        if args.json:
            write_json(stream, limit, sys.stdout)
        elif args.jsonl:
            write_jsonl(stream, limit, sys.stdout)
        elif args.csv:
            write_csv(stream, limit, sys.stdout)
        elif getattr(args, "quiet", False):
            for _ in stream:  # the count line only
                pass
            out.print(count_line(stream, None), soft_wrap=True)
        else:
            try:
                write_table(stream, limit, out)
            except SystemExit as stop:  # Rich's answer to a broken pipe (it quiets ``out``)
                if stop.code != 1 or not out.quiet:
                    raise
    except BrokenPipeError:  # the reader stopped reading (| head): not an error
        _quiet_stdout()
    finally:
        app.close()
    return EXIT_OK


def _quiet_stdout() -> None:
    """Send what is left of stdout to nowhere, so that closing it raises no second error."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (captured in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
