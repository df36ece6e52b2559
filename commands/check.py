"""`eventfold check`."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.text import Text

from eventfold.commands.common import EXIT_DAMAGED, EXIT_OK, emit
from eventfold.commands.options import Commands, command, output_options, store_options


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "check",
        "verify a store: every checksum, and the index against the log",
        "exit 0 when sound (a torn tail is reported, not an error), 3 on damage\n"
        "examples:\n"
        "  eventfold check --store ./.eventfold\n"
        "  eventfold check --repair --json\n",
    )
    store_options(parser)
    parser.add_argument(
        "--repair",
        action="store_true",
        help="truncate a torn tail (a copy is kept), rebuild a damaged index, and discard "
        "a damaged dedup index or snapshot (rebuilt from the log); committed data is never "
        "dropped",
    )
    output_options(parser)
    parser.set_defaults(run=check)


def check(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.admin.check import check as check_store
    from eventfold.reports.check import check_verdict, render_check
    from eventfold.reports.progress import progress_on

    with progress_on(err) as progress:
        report = check_store(
            args.store, backend=args.backend, repair=args.repair, progress=progress
        )

    def document() -> dict[str, Any]:
        return {
            "store": report.path,
            "status": "ok" if report.sound else "damaged",
            "logs": [asdict(log) | {"sound": log.sound} for log in report.logs],
            "derived": [asdict(d) for d in report.derived],
        }

    emit(args, out, document, lambda: render_check(report), lambda: check_verdict(report))
    if report.sound:
        return EXIT_OK
    for log in report.logs:
        for p in log.problems:
            err.print(
                Text(f"eventfold: damaged store: {p.file}: byte offset {p.offset}: {p.reason}"),
                soft_wrap=True,
            )
        if not log.problems and not log.sound:
            err.print(
                Text(
                    f"eventfold: damaged index: {log.path}: {log.index} "
                    "(eventfold check --repair rebuilds it)"
                ),
                soft_wrap=True,
            )
    for derived in report.derived:
        for p in derived.problems if not derived.sound else []:
            err.print(
                Text(
                    f"eventfold: damaged {derived.kind}: {p.file}: byte offset {p.offset}: "
                    f"{p.reason} (eventfold check --repair discards it; it is rebuilt "
                    "from the log)"
                ),
                soft_wrap=True,
            )
    return EXIT_DAMAGED
