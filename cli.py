"""The ``eventfold`` command: parse, call the application layer, render, exit.

Each command module (``commands/``) defines its arguments and its run function;
this module assembles them and maps errors to exit codes (a public interface:
0 ok, 1 verification mismatch, 2 usage error or unusable input, 3 damaged
store). Every error the application raises carries its exit code and label
(``EventfoldError``); this module adds only what comes from outside eventfold.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from eventfold import __version__
from eventfold.commands import (
    check,
    completion,
    demo,
    diff,
    events,
    explain,
    ingest,
    migrate,
    projection,
    quarantine,
    reconstruct,
    sources,
    status,
    verify,
)
from eventfold.commands.options import apply_configuration, quiet_option
from eventfold.commands.parser import Parser, error_line
from eventfold.infra.errors import EXIT_USAGE, EventfoldError
from eventfold.infra.gc_policy import use_batch_thresholds

COMMANDS = (
    check,
    ingest,
    projection,
    status,
    sources,
    quarantine,
    events,
    explain,
    verify,
    diff,
    reconstruct,
    migrate,
    demo,
    completion,
)  # --help order
INTERRUPTED = 130
PIPED_WIDTH = 120  # the width of output to a file or a pipe, unless COLUMNS says otherwise


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="eventfold",
        description="Rebuild, catch up and prove event-sourced totals.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  eventfold demo                 the whole story in a temporary directory\n"
            "  eventfold ingest events.jsonl  record a JSON Lines source, exactly once\n"
            "  eventfold catchup              bring category_totals up to date\n"
            "  eventfold verify --source events.jsonl   prove the totals, show what differs\n"
            "  eventfold reconcile events.jsonl         replay what the store lacks\n"
            "  eventfold explain rent         where one category's total comes from\n"
            "  eventfold check --store DIR    verify every checksum and the index\n"
            "  eventfold check --repair       drop a torn tail, rebuild the index\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"eventfold {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    quiet_option(parser, sub=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    parser.set_defaults(parser=parser)  # what `completion` describes
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    use_batch_thresholds()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the help, then the one error line, all on stderr
        parser.print_help(sys.stderr)
        sys.stderr.write(error_line("usage", "a COMMAND is needed (listed above)") + "\n")
        return EXIT_USAGE
    quiet = bool(getattr(args, "quiet", False))
    logging.basicConfig(
        format="eventfold: warning: %(message)s", level=logging.ERROR if quiet else logging.WARNING
    )
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    out = Console(highlight=False, width=PIPED_WIDTH if piped else None)
    err = Console(stderr=True, highlight=False)
    notes = Console(stderr=True, highlight=False, quiet=quiet)  # warnings and progress
    try:
        apply_configuration(args)
        code: int = args.run(args, out, notes)
        return code
    except KeyboardInterrupt:
        err.print(error_line("interrupted", "stopped before the end (Ctrl-C)"))
        return INTERRUPTED
    except Exception as e:
        if args.debug:
            raise
        code, label = classify(e)
        err.print(Text(error_line(label, str(e))), soft_wrap=True)
        return code


def classify(error: Exception) -> tuple[int, str]:
    """The exit code and label of an error."""
    if isinstance(error, EventfoldError):
        return error.exit_code, error.label
    if type(error).__name__ == "OperationalError":  # the library's, or psycopg's
        return EXIT_USAGE, "database unavailable"
    return EXIT_USAGE, f"error ({type(error).__name__})"
