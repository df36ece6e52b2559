"""Options that several commands share, each defined once (as sqlite-utils does)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from eventfold.application.choices import BACKENDS, MAX_LINE_BYTES
from eventfold.commands.parser import exit_with
from eventfold.infra.errors import MissingArgumentError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from eventfold.application.proving.numbers import NumberFormat
    from eventfold.application.sources import SourceList

DEFAULT_STORE = ".eventfold"
DEFAULT_PROJECTION = "category_totals"
STORE_ENV, BACKEND_ENV = "EVENTFOLD_STORE", "EVENTFOLD_BACKEND"
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


def sha256_hex(text: str) -> str:
    """A SHA-256 in hex (64 hex digits; case and surrounding spaces do not matter), in
    lower case: ``--expected-checksum``."""
    checksum = text.strip().lower()
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        msg = f"expected a SHA-256 in hex (64 hex digits), not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return checksum


def moment(text: str) -> datetime:
    """An ISO 8601 date or time (``2026-11-30``, ``2026-11-30T14:00``, ``...Z``,
    ``...+02:00``); without an offset, UTC: ``--since``, ``--until``."""
    from eventfold.application.proving.keyed import parse_moment

    try:
        return parse_moment(text)
    except ValueError:
        msg = f"expected an ISO 8601 date or time (2026-11-30T14:00:00Z), not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def number_format(text: str) -> NumberFormat:
    """How an expected file writes 1234.56 (``--number-format '1.234,56'``)."""
    from eventfold.application.proving.numbers import NumberFormat

    try:
        return NumberFormat.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_seconds(text: str) -> float:
    """A finite number of seconds greater than 0 (``0.5``, ``30``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (0 < value < float("inf")):  # also refuses nan
        msg = f"expected a positive number of seconds, not {text!r}"
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
        exit_with(UsageError(f"{key}={text!r} is not a positive integer"))


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


def store_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--store DIR``: left open here, filled in by ``apply_configuration`` ($EVENTFOLD_STORE,
    else the configuration file's store, else ./.eventfold)."""
    parser.add_argument("--store", metavar="DIR", default=None, help=help)
    configurable(parser)


def store_options(parser: argparse.ArgumentParser) -> None:
    store_option(
        parser,
        "store directory (default: $EVENTFOLD_STORE, the configuration file's store, "
        "or ./.eventfold); with the postgres backend, this machine's working files "
        "(dedup index, quarantine)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where events and projection snapshots live (default: $EVENTFOLD_BACKEND, the "
        "configuration file's backend, or file); postgres is configured by POSTGRES_DBNAME, "
        "POSTGRES_HOST, ...",
    )


def configurable(parser: argparse.ArgumentParser) -> None:
    """This command takes defaults from the configuration file (``apply_configuration``)."""
    parser.set_defaults(configurable=True)


def apply_configuration(args: argparse.Namespace) -> None:
    """Fill in what the command line left open, for a command that is ``configurable``.

    Precedence: the command line, then the environment (``EVENTFOLD_STORE``,
    ``EVENTFOLD_BACKEND``), then the configuration file, then the built-in
    default. Sets ``args.configuration`` (the file in effect and its values) and
    ``args.overridden`` (a file's key -> the option or variable that won over it).
    """
    if not getattr(args, "configurable", False):
        return
    from eventfold.commands.config import load_configuration

    config = load_configuration()
    values = config.values
    args.configuration, args.overridden = config, {}
    if hasattr(args, "store"):
        from_env = os.environ.get(STORE_ENV) or None
        if args.store is not None:
            winner = "--store"
        elif from_env is not None:
            args.store, winner = from_env, f"${STORE_ENV}"
        else:
            args.store, winner = values.get("store", DEFAULT_STORE), ""
        if winner and "store" in values:
            args.overridden["store"] = winner
    if hasattr(args, "backend"):
        if os.environ.get(BACKEND_ENV) and args.backend is None:
            args.overridden["backend"] = f"${BACKEND_ENV}"  # the backend layer reads it
        elif args.backend is None:
            args.backend = values.get("backend")
        elif "backend" in values:
            args.overridden["backend"] = "--backend"
    if hasattr(args, "projection"):
        if args.projection is None:
            args.projection = values.get("projection", DEFAULT_PROJECTION)
        elif "projection" in values:
            args.overridden["projection"] = "--projection"


def configured_sources(args: argparse.Namespace) -> list[str]:
    """The configuration file's ``sources`` (empty when it lists none)."""
    configuration = getattr(args, "configuration", None)
    return list(configuration.values.get("sources", [])) if configuration else []


def configured_sources_of(args: argparse.Namespace, command: str, given: str) -> list[str]:
    """The configuration file's ``sources`` (all of them), for a command given none
    (``verify``, ``reconcile``); a usage error when it lists none."""
    sources = configured_sources(args)
    if not sources:
        msg = f"{command} needs {given} (or sources in eventfold.toml)"
        raise MissingArgumentError(msg)
    return sources


def output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    quiet_option(parser, sub=True)


def projection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--projection",
        metavar="NAME",
        default=None,  # configured, else category_totals (apply_configuration)
        help="a projection name (category_totals, hourly_totals, or one registered "
        "under the eventfold.projections entry points) or module:Class (default: the "
        "configuration file's projection, or category_totals)",
    )
    configurable(parser)


def snapshot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--snapshot-every",
        type=positive_int,
        default=10_000,
        metavar="N",
        help=(
            "write a snapshot every N applied events (default 10000); a large state "
            "less often: no sooner than half its size in bytes, in events, after the last"
        ),
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


def expected_file_options(parser: argparse.ArgumentParser) -> None:
    """How ``--expected FILE`` is read: its key and value columns, its numbers."""
    parser.add_argument(
        "--key",
        metavar="COLS",
        help="the expected file's key columns, comma-separated, in the projection's key "
        "order (default: its key names: category; category,hour for hourly_totals)",
    )
    parser.add_argument(
        "--count-col", metavar="COL", help="the expected file's count column (default count)"
    )
    parser.add_argument(
        "--total-col", metavar="COL", help="the expected file's total column (default total)"
    )
    parser.add_argument(
        "--number-format",
        metavar="EXAMPLE",
        type=number_format,
        help="how the expected file writes 1234.56, e.g. '1,234.56', '1.234,56', "
        "'1 234,56', '$1,234.56' (default: plain, 1234.56)",
    )


def expected_reading(
    args: argparse.Namespace, needs: tuple[str, str] | None
) -> tuple[Any, NumberFormat]:
    """The ``Columns`` and ``NumberFormat`` of ``expected_file_options``. ``needs``: what
    they read and the option that gives it (``("an expected file", "--expected
    FILE")``) when that option is missing: then any of them is a usage error."""
    from eventfold.application.proving.expected import Columns
    from eventfold.application.proving.numbers import NumberFormat

    given = [
        option
        for option, value in (
            ("--key", args.key),
            ("--count-col", args.count_col),
            ("--total-col", args.total_col),
            ("--number-format", args.number_format),
        )
        if value is not None
    ]
    if given and needs is not None:
        msg = f"argument {given[0]}: reads {needs[0]}, so it needs {needs[1]}"
        raise MissingArgumentError(msg)
    keys = None if args.key is None else tuple(k.strip() for k in args.key.split(","))
    numbers = NumberFormat() if args.number_format is None else args.number_format
    return Columns(keys, args.count_col, args.total_col), numbers


def narrowing_options(parser: argparse.ArgumentParser) -> None:
    """``--category``, ``--since``, ``--until``: what a comparison looks at."""
    parser.add_argument(
        "--category",
        metavar="NAME",
        action="append",
        help="compare only this category (repeatable; a glob such as 'shop-*' too)",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        type=moment,
        help="only events at or after TIME (ISO 8601; UTC without an offset), and time "
        "buckets starting then or later",
    )
    parser.add_argument(
        "--until",
        metavar="TIME",
        type=moment,
        help="only events before TIME, and time buckets starting before it",
    )


def as_of_options(parser: argparse.ArgumentParser) -> None:
    """``--as-of POINT`` and ``--as-of-recorded TIME``: a state as of a point."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--as-of",
        metavar="POINT",
        help="the state as of @N (store position N), an ISO time (events that occurred "
        "then or before) or gen-NNNNNNNN; nothing is written",
    )
    group.add_argument(
        "--as-of-recorded",
        metavar="TIME",
        help="the state as the store stood at TIME: every event it had recorded by then, "
        "up to the first recorded later",
    )


def as_of_point(args: argparse.Namespace) -> Any:
    """The ``Point`` of ``--as-of``/``--as-of-recorded``, or None (a usage error when it
    is not a point)."""
    from eventfold.application.projecting.asof import Point

    if getattr(args, "as_of_recorded", None) is not None:
        return Point.parse(args.as_of_recorded, recorded=True)
    if getattr(args, "as_of", None) is not None:
        return Point.parse(args.as_of)
    return None


def limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit N``: rows of each event list shown and put in ``--json`` (0: all)."""
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="list the first N events of each kind, in source order (default 20; 0 lists all)",
    )


def source_list_options(parser: argparse.ArgumentParser) -> None:
    """How the sources of a command are found (files, directories, patterns; the order)."""
    parser.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="read the source files of a directory's subdirectories too",
    )
    parser.add_argument(
        "--order",
        choices=("name", "mtime"),
        default="name",
        help="the order files are read in: name (the default: as given, a directory's "
        "files and a pattern's matches in name order) or mtime (oldest first)",
    )
    parser.add_argument(
        "--sources-from",
        metavar="LIST",
        default=None,
        help="also read the sources listed in LIST, one a line or NUL-separated (- for stdin)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="read a file even when most of its first 1,000 lines are not valid events",
    )


def source_list(args: argparse.Namespace, sources: list[str]) -> SourceList:
    """The ``SourceList`` of a command's arguments (``source_list_options``)."""
    from eventfold.application.sources import SourceList

    return SourceList(sources, args.recursive, args.order, args.sources_from, args.force)
