"""`eventfold quarantine`."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.text import Text

from eventfold.commands.common import EXIT_OK, emit, open_application
from eventfold.commands.options import (
    Commands,
    command,
    non_negative_int,
    quiet_option,
    store_options,
)

SHOWN = 100  # lines the terminal report shows unless --limit says otherwise


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "quarantine",
        "the quarantined lines of every source: file, line, offset, reason and raw text",
        "exit 0, 2 for usage, 3 for a damaged store\n"
        "examples:\n"
        "  eventfold quarantine\n"
        "  eventfold quarantine --source 'logs/*.jsonl' --reason timestamp --jsonl\n"
        "  eventfold quarantine --raw > fix.jsonl   # edit, then: eventfold ingest fix.jsonl\n",
    )
    store_options(parser)
    parser.add_argument(
        "--source",
        metavar="SOURCE",
        default=None,
        help="only the sources whose path is SOURCE (compared by real path; - for standard "
        "input) or matches it as a glob pattern",
    )
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        default=None,
        help="only the lines whose reason contains TEXT (case-insensitive)",
    )
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=None,
        metavar="N",
        help=f"only the first N lines (0: all; default: all, but the terminal report "
        f"shows the first {SHOWN})",
    )
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    formats.add_argument(
        "--jsonl",
        action="store_true",
        help='one JSON object a line: {"source", "line", "offset", "reason", "raw"}',
    )
    formats.add_argument(
        "--raw",
        action="store_true",
        help="only the raw text of each line, one a line (to fix and ingest again); lines "
        "over the line limit, kept only in part, are left out (stderr says how many)",
    )
    quiet_option(parser, sub=True)
    parser.set_defaults(run=quarantine)


def quarantine(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.quarantine import quarantined_lines
    from eventfold.reports.quarantine import count_line, render_quarantine

    limit = args.limit or None
    if args.limit is None and not (args.json or args.jsonl or args.raw):
        limit = SHOWN
    app = open_application(args)
    try:
        report = quarantined_lines(app, source=args.source, reason=args.reason, limit=limit)
    finally:
        app.close()
    if args.jsonl:
        for line in report.lines:
            sys.stdout.write(json.dumps(line.to_json(), ensure_ascii=False) + "\n")
        return EXIT_OK
    if args.raw:
        whole = [line for line in report.lines if not line.truncated]
        sys.stdout.writelines(line.raw + "\n" for line in whole)
        skipped = len(report.lines) - len(whole)
        if skipped:
            err.print(
                Text(
                    f"eventfold: warning: {skipped:,} of {len(report.lines):,} lines left out: "
                    "longer than the line limit, the store keeps only their first 1,024 bytes "
                    "(eventfold quarantine --jsonl shows them)"
                ),
                soft_wrap=True,
            )
        return EXIT_OK
    emit(args, out, report.to_json, lambda: render_quarantine(report), lambda: count_line(report))
    return EXIT_OK
