"""The ``eventfold`` command: parse, call the application layer, render, exit.

Exit codes (a public interface): 0 ok, 1 verification mismatch, 2 usage error
or unusable input, 3 damaged store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eventfold import __version__

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3
DEFAULT_STORE = ".eventfold"


class UsageError(Exception):
    """Bad arguments or unusable input: exit 2."""


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=os.environ.get("EVENTFOLD_STORE", DEFAULT_STORE),
        help="store directory (default: $EVENTFOLD_STORE or ./.eventfold)",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventfold",
        description="Rebuild, catch up and prove event-sourced totals.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  eventfold demo                 run the store demonstration\n"
            "  eventfold check --store DIR    verify every checksum and the index\n"
            "  eventfold check --repair       drop a torn tail, rebuild the index\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"eventfold {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="verify a store: every checksum, and the index against the log",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "exit 0 when sound (a torn tail is reported, not an error), 3 on damage\n"
            "examples:\n"
            "  eventfold check --store ./.eventfold\n"
            "  eventfold check --repair --json\n"
        ),
    )
    _store_option(check)
    check.add_argument(
        "--repair",
        action="store_true",
        help="truncate a torn tail (a copy is kept) and rebuild a damaged index; "
        "committed data is never dropped",
    )
    _output_options(check)

    demo = commands.add_parser(
        "demo",
        help="record events in a fresh store, crash mid-commit, recover, check",
        epilog="example: eventfold demo --dir /tmp/eventfold-demo",
    )
    demo.add_argument("--dir", metavar="DIR", help="where to create the demo store")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(format="eventfold: warning: %(message)s", level=logging.WARNING)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        if args.command == "check":
            return _check(args, out)
        return _demo(args, out)
    except Exception as e:
        if args.debug:
            raise
        code, label = _classify(e)
        err.print(Text(f"eventfold: {label}: {e}"), soft_wrap=True)
        return code


def _classify(error: Exception) -> tuple[int, str]:
    from eventfold.infra.errors import StoreCorruptedError, StoreLockedError

    if isinstance(error, StoreCorruptedError):
        return EXIT_DAMAGED, "damaged store"
    if isinstance(error, StoreLockedError):
        return EXIT_USAGE, "store busy"
    if isinstance(error, (UsageError, FileNotFoundError, NotADirectoryError)):
        return EXIT_USAGE, "error"
    return EXIT_USAGE, f"error ({type(error).__name__})"


# -- check ---------------------------------------------------------------------


def _check(args: argparse.Namespace, out: Console) -> int:
    from eventfold.infra.check import check_store

    report = check_store(args.store, repair=args.repair)
    if args.json:
        doc: dict[str, Any] = {
            "store": report.path,
            "status": "ok" if report.sound else "damaged",
            "logs": [asdict(log) | {"sound": log.sound} for log in report.logs],
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        out.print(render_check(report))
    if report.sound:
        return EXIT_OK
    err = Console(stderr=True, highlight=False)
    for log in report.logs:
        for p in log.problems:
            err.print(Text(f"eventfold: damaged store: {p.file}: byte offset {p.offset}: "
                           f"{p.reason}"), soft_wrap=True)
        if not log.problems and not log.sound:
            err.print(Text(f"eventfold: damaged index: {log.path}: {log.index} "
                           "(eventfold check --repair rebuilds it)"), soft_wrap=True)
    return EXIT_DAMAGED


def render_check(report: Any) -> Group:
    """Rich renderables for a StoreReport: one row per log, then any damage."""
    table = Table(title=Text(f"store {report.path}"), title_justify="left")
    for column in ("log", "segments", "commits", "events", "torn tail", "index", "status"):
        numeric = column in ("segments", "commits", "events")
        table.add_column(column, justify="right" if numeric else "left")
    details: list[Text] = []
    for log in report.logs:
        tail = log.torn_tail
        tail_text = Text(f"{tail.length} bytes", style="yellow") if tail else Text("none")
        if tail:
            details.append(Text(
                f"torn tail: {tail.file}: byte offset {tail.offset}: {tail.length} bytes "
                "of an unacknowledged commit (dropped on the next write, or --repair)",
                style="yellow"))
        for p in log.problems:
            details.append(Text(f"DAMAGED: {p.file}: byte offset {p.offset}: {p.reason}",
                                style="bold red"))
        for note in log.repairs:
            details.append(Text(f"repaired: {note}", style="green"))
        if log.problems:
            status = Text("DAMAGED", style="bold red")
        elif not log.sound:
            status = Text("INDEX DAMAGED", style="bold red")
        else:
            status = Text("ok" + (" (repaired)" if log.repairs else ""), style="green")
        table.add_row(
            Text(log.name), str(log.segments), str(log.commits), str(log.events),
            tail_text, Text(log.index), status,
        )
    if not report.logs:
        table.add_row(Text("(no logs)"), "", "", "", "", "", Text("ok"))
    return Group(table, *details)


# -- demo ----------------------------------------------------------------------


def _demo(args: argparse.Namespace, out: Console) -> int:
    from eventfold.storedemo import DemoStep, run_demo

    store = args.dir or tempfile.mkdtemp(prefix="eventfold-demo-")
    if os.path.exists(store) and os.listdir(store):
        raise UsageError(f"{store}: the demo needs a new or empty directory")
    out.print(Panel(Text(f"eventfold store demo in {store}"), expand=False))

    def show(step: DemoStep) -> None:
        out.print(Text(step.title, style="bold"))
        for line in step.lines:
            out.print(Text(f"   {line}"), soft_wrap=True)
        if step.report is not None:
            out.print(render_check(step.report))

    proved = run_demo(store, show)
    verdict = "every acknowledged commit survived" if proved else "the store is NOT intact"
    out.print(Panel(Text(verdict, style="bold green" if proved else "bold red"),
                    expand=False))
    out.print(Text(f"explore it: eventfold check --store {store}"))
    return EXIT_OK if proved else EXIT_DAMAGED
