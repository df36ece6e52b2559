"""The ``eventfold`` command: parse, call the application layer, render, exit.

Exit codes (a public interface): 0 ok, 1 verification mismatch, 2 usage error
or unusable input, 3 damaged store.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from eventfold import __version__
from eventfold.commands.common import DEFAULT_STORE, EXIT_DAMAGED, EXIT_USAGE, UsageError
from eventfold.infra.lines import MAX_LINE_BYTES

if TYPE_CHECKING:
    from eventfold.application.ingest.partition import Partition


def _partition(text: str) -> Partition:
    from eventfold.application.ingest.partition import Partition

    try:
        return Partition.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=os.environ.get("EVENTFOLD_STORE", DEFAULT_STORE),
        help="store directory (default: $EVENTFOLD_STORE or ./.eventfold); with the "
        "postgres backend, this machine's working files (dedup index, quarantine)",
    )
    parser.add_argument(
        "--backend",
        choices=("file", "postgres"),
        default=None,
        help="where events and projection snapshots live (default: $EVENTFOLD_BACKEND "
        "or file); postgres is configured by POSTGRES_DBNAME, POSTGRES_HOST, ...",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )
    parser.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="print only errors and the result (no progress, no warnings)",
    )  # fmt: skip


def _max_line_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-line-bytes", type=_positive_int, default=MAX_LINE_BYTES, metavar="N",
        help=f"a source line longer than N bytes is invalid, quarantined by its offset and "
        f"length without being held in memory (default {MAX_LINE_BYTES:,}; give verify "
        "and reconcile the value ingest had)",
    )  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _env_int(key: str) -> int | None:
    text = os.environ.get(key)
    if not text:
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise SystemExit(f"eventfold: error: {key}={text!r} is not a positive integer") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
            "  eventfold check --store DIR    verify every checksum and the index\n"
            "  eventfold check --repair       drop a torn tail, rebuild the index\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"eventfold {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--quiet", action="store_true",
        help="print only errors and the result (no progress, no warnings)",
    )  # fmt: skip
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

    ingest = commands.add_parser(
        "ingest",
        help="record the events of a JSON Lines source in the store, exactly once",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Resumes where the last run of the same file ended; bad lines are\n"
            "quarantined, repeated ids are counted as duplicates or conflicts.\n"
            "exit 0 when the run completed (bad lines are not a failure), 2 for an\n"
            "unusable source, 3 for a damaged store\n"
            "examples:\n"
            "  eventfold ingest events.jsonl --store ./.eventfold\n"
            "  producer | eventfold ingest - --json\n"
            "  eventfold ingest events.jsonl --backend postgres --partition 1/2\n"
        ),
    )
    ingest.add_argument("source", metavar="SOURCE", help="a JSON Lines file, or - for stdin")
    _store_option(ingest)
    ingest.add_argument(
        "--batch", type=_positive_int, default=1000, metavar="N",
        help="source lines per atomic commit (default 1000)",
    )
    ingest.add_argument(
        "--rescan", action="store_true",
        help="if the file changed since it was ingested, ingest it anew from the start "
        "(ids already recorded count as duplicates) instead of refusing",
    )
    ingest.add_argument(
        "--partition", type=_partition, metavar="K/N", default=None,
        help="record only the categories of partition K of N (a stable hash of the "
        "name), so that N processes, on any machines sharing a postgres store, split "
        "one source without overlap",
    )
    ingest.add_argument(
        "--snapshot-interval", type=_positive_int, metavar="N",
        default=_env_int("EVENTFOLD_SNAPSHOT_INTERVAL"),
        help="aggregate snapshot every N events (default 10000, or "
        "$EVENTFOLD_SNAPSHOT_INTERVAL)",
    )
    _max_line_option(ingest)
    _output_options(ingest)

    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild a projection from scratch into a new generation",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "The previous generation stays in use until the new one is complete.\n"
            "examples:\n"
            "  eventfold rebuild\n"
            "  eventfold rebuild --projection hourly_totals --workers 2 --json\n"
        ),
    )
    catchup = commands.add_parser(
        "catchup",
        help="apply the events after a projection's newest valid snapshot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Falls back to older snapshots when the newest does not verify, and\n"
            "rebuilds when none does. The result equals a rebuild.\n"
            "example: eventfold catchup --projection category_totals --json\n"
        ),
    )
    follow = commands.add_parser(
        "follow",
        help="keep a projection current while events are ingested; Ctrl-C stops",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Catches up first, then applies events as any process commits them,\n"
            "with a live table on a terminal. Snapshots periodically and on exit.\n"
            "example: eventfold follow --projection category_totals\n"
        ),
    )
    follow.add_argument(
        "--snapshot-seconds", type=float, default=30.0, metavar="S",
        help="also snapshot at least every S seconds while events arrive (default 30)",
    )  # fmt: skip
    snapshots = commands.add_parser(
        "snapshots", help="list a projection's snapshots and whether each verifies",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n  eventfold snapshots\n"
            "  eventfold snapshots --projection hourly_totals --json\n"
        ),
    )  # fmt: skip
    for sub in (rebuild, catchup, follow, snapshots):
        _store_option(sub)
        sub.add_argument(
            "--projection", metavar="NAME", default="category_totals",
            help="a projection name (category_totals, hourly_totals, or one registered "
            "under the eventfold.projections entry points) or module:Class",
        )  # fmt: skip
        _output_options(sub)
    rebuild.add_argument(
        "--workers", type=_positive_int, default=None, metavar="N",
        help="fold in N processes and merge (default: one per core, up to 4, for a store "
        "of more than 200,000 events; else 1)",
    )  # fmt: skip
    for sub in (rebuild, catchup, follow):
        sub.add_argument(
            "--snapshot-every", type=_positive_int, default=10_000, metavar="N",
            help="write a snapshot every N applied events (default 10000)",
        )  # fmt: skip
        sub.add_argument(
            "--keep-snapshots", type=_positive_int, default=3, metavar="K",
            help="keep the newest K snapshots (default 3)",
        )  # fmt: skip

    verify = commands.add_parser(
        "verify",
        help="prove category_totals against an expected state; show what differs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Catches the projection up, then compares. exit 0 match, 1 mismatch.\n"
            "examples:\n"
            "  eventfold verify --source events.jsonl\n"
            "  eventfold verify --expected-checksum 3f2a...\n"
            "  eventfold verify --expected expected.json --all --html report.html\n"
        ),
    )
    _store_option(verify)
    expected = verify.add_mutually_exclusive_group(required=True)
    expected.add_argument("--source", metavar="FILE",
                          help="compute the expected state from a JSON Lines source")
    expected.add_argument("--expected-checksum", metavar="HEX",
                          help="the canonical checksum of the expected state (README)")
    expected.add_argument("--expected", metavar="FILE",
                          help='an expected state: {"categories": {NAME: {"count", "total"}}}')
    verify.add_argument("--all", action="store_true", help="list matching categories too")
    verify.add_argument("--html", metavar="FILE", help="also save the report as HTML")
    verify.add_argument("--svg", metavar="FILE", help="also save the report as SVG")
    _max_line_option(verify)
    _output_options(verify)

    reconcile = commands.add_parser(
        "reconcile",
        help="replay the source events the store lacks, then verify again",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Finds missing events by id, replays them in event order (timestamp,\n"
            "then source position) through the idempotent ingest, catches the\n"
            "projection up and verifies. exit 0 when it matches after, 1 if not.\n"
            "examples:\n"
            "  eventfold reconcile events.jsonl --dry-run\n"
            "  eventfold reconcile events.jsonl --json\n"
        ),
    )
    reconcile.add_argument("source", metavar="SOURCE", help="the JSON Lines source")
    _store_option(reconcile)
    reconcile.add_argument("--dry-run", action="store_true",
                           help="show what would be replayed; write nothing")
    reconcile.add_argument("--batch", type=_positive_int, default=1000, metavar="N",
                           help="events per atomic commit while replaying (default 1000)")
    _max_line_option(reconcile)
    _output_options(reconcile)

    status = commands.add_parser(
        "status", help="the store's size, and each projection's position, lag and snapshots",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eventfold status\n  eventfold status --store ./.eventfold --json\n",
    )  # fmt: skip
    _store_option(status)
    _output_options(status)

    migrate = commands.add_parser(
        "migrate",
        help="copy the store to another backend (resumable), then prove the copy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Copies events in notification order (aggregate versions kept), tracking\n"
            "records and aggregate snapshots; a rerun after a crash resumes. Then\n"
            "compares a SHA-256 of both event streams and each projection's checksum.\n"
            "exit 0 when the copy matches, 1 if not.\n"
            "examples:\n"
            "  eventfold migrate --from file --to postgres --store ./.eventfold\n"
            "  eventfold migrate --from postgres --to file --to-store ./copy --json\n"
        ),
    )
    migrate.add_argument("--from", choices=("file", "postgres"), required=True,
                         help="the backend to copy from")  # fmt: skip
    migrate.add_argument("--to", choices=("file", "postgres"), required=True,
                         help="the backend to copy to")  # fmt: skip
    migrate.add_argument(
        "--store", metavar="DIR", default=os.environ.get("EVENTFOLD_STORE", DEFAULT_STORE),
        help="the source file store (--from file), or the source machine's working "
        "files (--from postgres); default $EVENTFOLD_STORE or ./.eventfold",
    )
    migrate.add_argument("--to-store", metavar="DIR",
                         help="the file store to copy into (--to file)")  # fmt: skip
    _output_options(migrate)

    demo = commands.add_parser(
        "demo",
        help="the whole story: ingest with a crash, catch up, verify, reconcile, verify",
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
    quiet = bool(getattr(args, "quiet", False))
    logging.basicConfig(format="eventfold: warning: %(message)s",
                        level=logging.ERROR if quiet else logging.WARNING)  # fmt: skip
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    notes = Console(stderr=True, highlight=False, quiet=quiet)  # warnings and progress
    try:
        return _dispatch(args, out, notes)
    except KeyboardInterrupt:
        err.print("eventfold: interrupted")
        return 130
    except Exception as e:
        if args.debug:
            raise
        try:
            code, label = _classify(e)
        except Exception:  # classifying must never cost the one line (an import that failed)
            code, label = EXIT_USAGE, f"error ({type(e).__name__})"
        message = " ".join(line.strip() for line in str(e).splitlines())  # one line
        err.print(Text(f"eventfold: {label}: {message}"), soft_wrap=True)
        return code


def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.commands import ingest, projection, store

    if args.command == "check":
        return store.check(args, out)
    if args.command == "status":
        return store.status(args, out)
    if args.command == "demo":
        return store.demo(args, out)
    if args.command == "verify":
        from eventfold.commands import verify

        return verify.verify(args, out)
    if args.command == "reconcile":
        from eventfold.commands import verify

        return verify.reconcile(args, out)
    if args.command == "ingest":
        return ingest.ingest(args, out, err)
    if args.command == "migrate":
        from eventfold.commands import migrate

        return migrate.migrate(args, out)
    if args.command in ("rebuild", "catchup"):
        return projection.project(args, out, err)
    if args.command == "follow":
        return projection.follow(args, out, err)
    return projection.snapshots(args, out)


def _classify(error: Exception) -> tuple[int, str]:
    from eventsourcing.persistence import OperationalError

    from eventfold.application.admin.migrate import MigrateTargetError
    from eventfold.application.app import BackendError
    from eventfold.application.ingest.dedup import IndexBusyError
    from eventfold.application.ingest.reading import ReaderError
    from eventfold.application.projecting import ProjectionBusyError
    from eventfold.application.proving.verify import ExpectedUnusableError
    from eventfold.infra.errors import StoreCorruptedError, StoreLockedError, StoreWriteError
    from eventfold.infra.fileio import FileWriteError
    from eventfold.infra.sourcefile import SourceError
    from eventfold.projections.registry import UnknownProjectionError

    if isinstance(error, StoreCorruptedError):
        return EXIT_DAMAGED, "damaged store"
    if isinstance(error, (StoreLockedError, IndexBusyError, ProjectionBusyError)):
        return EXIT_USAGE, "store busy"
    if isinstance(error, SourceError):
        return EXIT_USAGE, "unusable source"
    if isinstance(error, ReaderError):
        return EXIT_USAGE, "read failed"
    if isinstance(error, (UnknownProjectionError, ExpectedUnusableError, MigrateTargetError)):
        return EXIT_USAGE, "error"
    if isinstance(error, (UsageError, FileNotFoundError, NotADirectoryError, BackendError)):
        return EXIT_USAGE, "error"
    if isinstance(error, StoreWriteError):
        return EXIT_USAGE, "write failed"
    if isinstance(error, OperationalError) or type(error).__name__ == "OperationalError":
        return EXIT_USAGE, "database unavailable"  # the library's, or psycopg's
    if isinstance(error, FileWriteError):
        return EXIT_USAGE, "write failed"
    return EXIT_USAGE, f"error ({type(error).__name__})"
