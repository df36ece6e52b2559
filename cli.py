"""The ``eventfold`` command: parse, call the application layer, render, exit.

Exit codes (a public interface): 0 ok, 1 verification mismatch, 2 usage error
or unusable input, 3 damaged store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from eventfold import __version__
from eventfold.reports.check import render_check

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
            "  eventfold demo                 run the store demonstration\n"
            "  eventfold ingest events.jsonl  record a JSON Lines source, exactly once\n"
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
        "--snapshot-interval", type=_positive_int, metavar="N",
        default=_env_int("EVENTFOLD_SNAPSHOT_INTERVAL"),
        help="aggregate snapshot every N events (default 10000, or "
        "$EVENTFOLD_SNAPSHOT_INTERVAL)",
    )
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
    snapshots = commands.add_parser(
        "snapshots", help="list a projection's snapshots and whether each verifies"
    )
    for sub in (rebuild, catchup, snapshots):
        _store_option(sub)
        sub.add_argument(
            "--projection", metavar="NAME", default="category_totals",
            help="a projection name (category_totals, hourly_totals, or one registered "
            "under the eventfold.projections entry points) or module:Class",
        )  # fmt: skip
        _output_options(sub)
    rebuild.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N",
        help="fold in N processes and merge (default 1)",
    )  # fmt: skip
    for sub in (rebuild, catchup):
        sub.add_argument(
            "--snapshot-every", type=_positive_int, default=10_000, metavar="N",
            help="write a snapshot every N applied events (default 10000)",
        )  # fmt: skip

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
        if args.command == "ingest":
            return _ingest(args, out, err)
        if args.command in ("rebuild", "catchup"):
            return _project(args, out, err)
        if args.command == "snapshots":
            return _snapshots(args, out)
        return _demo(args, out)
    except Exception as e:
        if args.debug:
            raise
        code, label = _classify(e)
        err.print(Text(f"eventfold: {label}: {e}"), soft_wrap=True)
        return code


def _classify(error: Exception) -> tuple[int, str]:
    from eventfold.application.ingest import SourceError
    from eventfold.infra.dedup import IndexBusyError
    from eventfold.infra.errors import StoreCorruptedError, StoreLockedError
    from eventfold.projections.registry import UnknownProjectionError

    if isinstance(error, StoreCorruptedError):
        return EXIT_DAMAGED, "damaged store"
    if isinstance(error, (StoreLockedError, IndexBusyError)):
        return EXIT_USAGE, "store busy"
    if isinstance(error, SourceError):
        return EXIT_USAGE, "unusable source"
    if isinstance(error, UnknownProjectionError):
        return EXIT_USAGE, "error"
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


# -- ingest --------------------------------------------------------------------


def _ingest(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.app import open_store
    from eventfold.application.ingest import Ingestor
    from eventfold.reports.ingest import render_ingest

    app = open_store(args.store, snapshot_interval=args.snapshot_interval)
    try:
        with Ingestor(app, app.state_dir or args.store, batch=args.batch) as ingestor:
            for warning in ingestor.warnings:
                err.print(Text(f"eventfold: warning: {warning}"), soft_wrap=True)
            with _progress(err, args.source) as progress:
                report = ingestor.run(args.source, rescan=args.rescan, progress=progress)
    finally:
        app.close()
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        out.print(render_ingest(report))
    return EXIT_OK


@contextlib.contextmanager
def _progress(err: Console, source: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr when it is a terminal (bytes of the source read)."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("ingesting", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("ingest", total=None)

        def update(position: int, size: int | None) -> None:
            bar.update(task, completed=position, total=size)

        yield update


# -- projections ---------------------------------------------------------------


def _project(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.app import open_store
    from eventfold.application.projecting import Projector
    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import render_projection

    projection = load_projection(args.projection)
    _require_store(args.store)
    app = open_store(args.store)
    try:
        projector = Projector(app, app.state_dir or args.store, projection,
                              snapshot_every=args.snapshot_every)  # fmt: skip
        with _events_progress(err) as progress:
            if args.command == "rebuild":
                report = projector.rebuild(workers=args.workers, progress=progress)
            else:
                report = projector.catchup(progress=progress)
    finally:
        app.close()
    for skipped in report.skipped:
        err.print(Text(f"eventfold: warning: snapshot not used: {skipped.path}: "
                       f"{skipped.reason}"), soft_wrap=True)  # fmt: skip
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        out.print(render_projection(report))
    return EXIT_OK


def _snapshots(args: argparse.Namespace, out: Console) -> int:
    from eventfold.projections.registry import load_projection
    from eventfold.projections.snapshots import SnapshotStore
    from eventfold.reports.projection import render_snapshots

    projection = load_projection(args.projection)
    _require_store(args.store)
    generation, rows = SnapshotStore(os.path.abspath(args.store), projection).list()
    if args.json:
        doc = {
            "projection": projection.name,
            "generation": generation,
            "snapshots": [
                (info.to_json() | {"valid": True}) if info else
                {"path": path, "valid": False, "reason": problem}
                for path, info, problem in rows
            ],
        }  # fmt: skip
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        out.print(render_snapshots(projection.name, generation, rows))
    return EXIT_OK


def _require_store(store: str) -> None:
    if not os.path.isdir(store):
        raise UsageError(f"{store}: no such store (eventfold ingest creates one)")


@contextlib.contextmanager
def _events_progress(err: Console) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over notification ids on stderr, when it is a terminal."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("folding", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:  # fmt: skip
        task = bar.add_task("fold", total=None)

        def update(position: int, last: int) -> None:
            bar.update(task, completed=position, total=last)

        yield update


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
