"""Options that several commands share, each defined once (as sqlite-utils does)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from eventfold.application.choices import BACKENDS, MAX_LINE_BYTES

DEFAULT_STORE = ".eventfold"
Commands = Any  # argparse's sub-parsers action (its type is private)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def env_int(key: str) -> int | None:
    """A positive integer from the environment, or None when the key is unset."""
    text = os.environ.get(key)
    if not text:
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise SystemExit(f"eventfold: error: {key}={text!r} is not a positive integer") from None


def command(commands: Commands, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
    """A sub-command with its one-line help and its epilog (exit codes, examples)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def quiet_option(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """``--quiet``, before the command name or after it (where it does not undo the first)."""
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="print only errors and the result (no progress, no warnings)",
    )


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=os.environ.get("EVENTFOLD_STORE", DEFAULT_STORE),
        help="store directory (default: $EVENTFOLD_STORE or ./.eventfold); with the "
        "postgres backend, this machine's working files (dedup index, quarantine)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where events and projection snapshots live (default: $EVENTFOLD_BACKEND "
        "or file); postgres is configured by POSTGRES_DBNAME, POSTGRES_HOST, ...",
    )


def output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    quiet_option(parser, sub=True)


def projection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--projection",
        metavar="NAME",
        default="category_totals",
        help="a projection name (category_totals, hourly_totals, or one registered "
        "under the eventfold.projections entry points) or module:Class",
    )


def snapshot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--snapshot-every",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="write a snapshot every N applied events (default 10000)",
    )
    parser.add_argument(
        "--keep-snapshots",
        type=positive_int,
        default=3,
        metavar="K",
        help="keep the newest K snapshots (default 3)",
    )


def max_line_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-line-bytes",
        type=positive_int,
        default=MAX_LINE_BYTES,
        metavar="N",
        help=f"a source line longer than N bytes is invalid, quarantined by its offset and "
        f"length without being held in memory (default {MAX_LINE_BYTES:,}; give verify "
        "and reconcile the value ingest had)",
    )


def batch_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--batch", type=positive_int, default=1000, metavar="N", help=help)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"expected 0 or a positive integer, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit N``: rows of each event list shown and put in ``--json`` (0: all)."""
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="list the first N events of each kind, in source order (default 20; 0 lists all)",
    )
