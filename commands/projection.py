"""`eventfold rebuild`, `catchup`, `follow`, `snapshots` and `generations`."""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

if TYPE_CHECKING:
    from eventfold.application.app import Eventfold
    from eventfold.application.projecting import ProjectionReport, Projector
    from eventfold.projections.base import Projection

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, emit, open_application
from eventfold.commands.options import (
    Commands,
    as_of_options,
    as_of_point,
    command,
    output_options,
    positive_int,
    positive_seconds,
    projection_option,
    snapshot_options,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError


def register(commands: Commands) -> None:
    rebuild = command(
        commands,
        "rebuild",
        "rebuild a projection from scratch into a new generation",
        "The previous generation stays in use until the new one is complete.\n"
        "examples:\n"
        "  eventfold rebuild\n"
        "  eventfold rebuild --projection hourly_totals --workers 2 --json\n"
        "  eventfold rebuild --backend postgres --worker 1/3   # with 2/3 and 3/3 elsewhere\n",
    )
    catchup = command(
        commands,
        "catchup",
        "apply the events after a projection's newest valid snapshot",
        "Falls back to older snapshots when the newest does not verify, and\n"
        "rebuilds when none does. The result equals a rebuild.\n"
        "example: eventfold catchup --projection category_totals --json\n",
    )
    follow_ = command(
        commands,
        "follow",
        "keep a projection current while events are ingested; Ctrl-C stops",
        "Catches up first, then applies events as any process commits them,\n"
        "with a live table on a terminal. Snapshots periodically and on exit.\n"
        "example: eventfold follow --projection category_totals\n",
    )
    generations_ = command(
        commands,
        "generations",
        "list a projection's generations and the checksum of each",
        "The generation in use, and one that rebuild --compare kept beside it\n"
        "(or a rebuild is writing), each with its newest verified snapshot.\n"
        "example: eventfold generations --projection hourly_totals --json\n",
    )
    listing = command(
        commands,
        "snapshots",
        "list a projection's snapshots and whether each verifies",
        "examples:\n  eventfold snapshots\n"
        "  eventfold snapshots --projection hourly_totals --json\n",
    )
    for parser in (rebuild, catchup, follow_, listing, generations_):
        store_options(parser)
        projection_option(parser)
        output_options(parser)
    rebuild.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="fold in N processes and merge (default: one per core, up to 4, for a store "
        "of more than 200,000 events; else 1)",
    )
    rebuild.add_argument(
        "--worker",
        type=_worker,
        default=None,
        metavar="K/N",
        help="be worker K of N processes, on any machines sharing a PostgreSQL database, "
        "that rebuild together: fold range K of N; the last worker in merges (postgres only)",
    )
    as_of_options(rebuild)
    rebuild.add_argument(
        "--compare",
        action="store_true",
        help="compare the new generation with the one in use first; switch only when "
        "they are equal (exit 1 and keep both when not)",
    )
    rebuild.add_argument(
        "--switch",
        action="store_true",
        help="with --compare: switch to the new generation even when it differs",
    )
    for parser in (rebuild, catchup, follow_):
        snapshot_options(parser)
    follow_.add_argument(
        "--snapshot-seconds",
        type=positive_seconds,
        default=30.0,
        metavar="S",
        help="also snapshot every S seconds while the state changed, even when no new "
        "event arrives (default 30)",
    )
    rebuild.set_defaults(run=project)
    catchup.set_defaults(run=project)
    follow_.set_defaults(run=follow)
    listing.set_defaults(run=snapshots)
    generations_.set_defaults(run=generations)


def _worker(text: str) -> object:
    from eventfold.application.projecting.distributed import Worker

    try:
        return Worker.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _projector(app: Eventfold, projection: Projection[Any], args: argparse.Namespace) -> Projector:
    """The projector of ``projection`` over ``app`` with the snapshot options given."""
    from eventfold.application.projecting import Projector

    return Projector(
        app,
        app.state_dir,
        projection,
        snapshot_every=args.snapshot_every,
        keep=args.keep_snapshots,
    )


def project(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.projections.registry import load_projection
    from eventfold.reports.progress import progress_on
    from eventfold.reports.projection import render_projection

    projection = load_projection(args.projection)
    if args.command == "rebuild" and args.worker is not None:
        return _shared(args, out, err, projection)
    point = as_of_point(args) if args.command == "rebuild" else None
    if point is not None:
        return _as_of(args, out, err, projection, point)
    app = open_application(args, writes=args.command == "rebuild")  # catchup: computes anyway
    try:
        projector = _projector(app, projection, args)
        with progress_on(err) as progress:
            if args.command == "rebuild":
                if args.switch and not args.compare:
                    raise MissingArgumentError("argument --switch: needs --compare")
                report = projector.rebuild(
                    workers=args.workers,
                    progress=progress,
                    compare=args.compare,
                    switch=args.switch,
                )
            else:
                report = projector.catchup(progress=progress)
    finally:
        app.close()
    for skipped in report.skipped:
        err.print(
            Text(f"eventfold: warning: snapshot not used: {skipped.path}: {skipped.reason}"),
            soft_wrap=True,
        )
    if args.command == "rebuild" and args.compare:
        from eventfold.reports.shadow import render_comparison

        def rendered() -> RenderableType:
            return Group(
                render_projection(report), render_comparison(report.comparison, projection.keys)
            )

        emit(args, out, lambda: report.to_json() | {"compare": _compared(report)}, rendered)
        c = report.comparison
        return EXIT_MISMATCH if c is not None and not c.switched else EXIT_OK
    emit(args, out, report.to_json, lambda: render_projection(report))
    return EXIT_OK


def _as_of(
    args: argparse.Namespace, out: Console, err: Console, projection: Projection[Any], point: Any
) -> int:
    """``rebuild --as-of``: the state as of a point, computed without writing anything."""
    from eventfold.application.projecting.asof import state_as_of
    from eventfold.reports.asof import render_as_of
    from eventfold.reports.progress import progress_on

    for option, given in (("--compare", args.compare), ("--switch", args.switch)):
        if given:
            raise MissingArgumentError(f"argument {option}: not allowed with --as-of")
    app = open_application(args)
    try:
        with progress_on(err) as progress:
            at = state_as_of(app, app.state_dir, projection, point, progress)
    finally:
        app.close()
    figures = None if at.state is None else projection.figures(at.state)

    def document() -> dict[str, Any]:
        doc = {"projection": projection.name, "mode": "as-of", "as_of": at.to_json()}
        doc |= {"position": at.position, "checksum": at.checksum} | at.canonical
        return doc | ({} if figures is None else {"figures": figures})

    emit(args, out, document, lambda: render_as_of(at, figures))
    return EXIT_OK


def _shared(
    args: argparse.Namespace, out: Console, err: Console, projection: Projection[Any]
) -> int:
    """``rebuild --worker K/N``: this process's share of a rebuild across machines."""
    from eventfold.application.projecting.distributed import rebuild_worker, require_shared
    from eventfold.reports.progress import progress_on
    from eventfold.reports.projection import render_projection

    for option, given in (
        ("--workers", args.workers is not None),
        ("--compare", args.compare),
        ("--switch", args.switch),
        ("--as-of", args.as_of is not None),
        ("--as-of-recorded", args.as_of_recorded is not None),
    ):
        if given:
            raise MissingArgumentError(f"argument --worker: not allowed with {option}")
    require_shared(getattr(args, "backend", None))
    app = open_application(args, writes=True)
    try:
        projector = _projector(app, projection, args)
        with progress_on(err) as progress:
            report = rebuild_worker(projector, args.worker, progress)
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_projection(report))
    return EXIT_OK


def _compared(report: ProjectionReport) -> dict[str, Any] | None:
    return None if report.comparison is None else report.comparison.to_json()


def follow(args: argparse.Namespace, out: Console, err: Console) -> int:

    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import render_projection

    projection = load_projection(args.projection)
    app = open_application(args, writes=True)
    stop = threading.Event()
    try:
        projector = _projector(app, projection, args)
        with _stopped_by_signals(stop):
            report = _follow(projector, stop, args, out, err)
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_projection(report))
    return EXIT_OK


def _follow(
    projector: Projector,
    stop: threading.Event,
    args: argparse.Namespace,
    out: Console,
    err: Console,
) -> ProjectionReport:
    """Follow until ``stop``. On a terminal: a live table, redrawn four times a second. Else
    a line at once, then one per second in which the position moved (on stderr with
    ``--json``, and only when stderr is a terminal)."""
    from rich.live import Live

    from eventfold.reports.progress import progress_on
    from eventfold.reports.projection import follow_line, state_table

    with contextlib.ExitStack() as catching_up:
        # The catch-up's progress line, on stderr, until the first update replaces it.
        progress = catching_up.enter_context(progress_on(err))
        if out.is_terminal and not args.json:
            live = Live(console=out, refresh_per_second=4, transient=True)

            def show(report: ProjectionReport) -> None:
                if not live.is_started:
                    catching_up.close()
                    live.start()
                live.update(
                    Group(  # the line first: a table taller than the screen is cut, not it
                        follow_line(report),
                        state_table(report.projection, report.canonical, report.figures),
                    ),
                    refresh=True,
                )

            try:
                return projector.follow(
                    stop, show, snapshot_seconds=args.snapshot_seconds, progress=progress
                )
            finally:
                live.stop()
        lines = err if args.json else out  # with --json, stdout holds the final document only

        def log(report: ProjectionReport) -> None:
            catching_up.close()
            lines.print(follow_line(report), soft_wrap=True)

        return projector.follow(
            stop,
            log if lines is out or lines.is_terminal else None,
            snapshot_seconds=args.snapshot_seconds,
            update_seconds=1.0,
            changes_only=True,
            progress=progress,
        )


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM set ``stop``: follow finishes its catch-up or the event at
    hand, writes its final snapshot and reports. A second signal interrupts at once."""
    import signal

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def snapshots(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.projecting import snapshots_of
    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import render_snapshots

    projection = load_projection(args.projection)
    app = open_application(args)
    try:
        generation, rows = snapshots_of(app, projection).list()
    finally:
        app.close()

    def document() -> dict[str, Any]:
        return {
            "projection": projection.name,
            "generation": generation,
            "snapshots": [
                (info.to_json() | {"valid": True})
                if info
                else {"path": path, "valid": False, "reason": problem}
                for path, info, problem in rows
            ],
        }

    emit(args, out, document, lambda: render_snapshots(projection.name, generation, rows))
    return EXIT_OK


def generations(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.projecting.generations import list_generations
    from eventfold.projections.registry import (
        UnknownProjectionError,
        load_projection,
        stored_projection,
    )
    from eventfold.reports.projection import render_generations

    try:
        projection = load_projection(args.projection)
    except UnknownProjectionError:
        if ":" in args.projection:
            raise
        projection = stored_projection(args.projection)  # its snapshots are listed all the same
    app = open_application(args)
    try:
        listing = list_generations(app, projection)
    finally:
        app.close()
    emit(args, out, listing.to_json, lambda: render_generations(listing))
    return EXIT_OK
