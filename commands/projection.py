"""`eventfold rebuild`, `catchup`, `follow` and `snapshots`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator

from rich.console import Console, Group
from rich.text import Text

from eventfold.commands.common import EXIT_OK, emit, open_application


def project(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.projecting import Projector
    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import render_projection

    projection = load_projection(args.projection)
    app = open_application(args)
    try:
        projector = Projector(
            app, app.state_dir or args.store, projection,
            snapshot_every=args.snapshot_every, keep=args.keep_snapshots,
        )  # fmt: skip
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
    emit(args, out, report.to_json, lambda: render_projection(report))
    return EXIT_OK


def follow(args: argparse.Namespace, out: Console, err: Console) -> int:
    import threading

    from rich.live import Live

    from eventfold.application.projecting import ProjectionReport, Projector
    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import follow_line, render_projection, state_table

    projection = load_projection(args.projection)
    app = open_application(args)
    stop = threading.Event()
    try:
        projector = Projector(
            app, app.state_dir or args.store, projection,
            snapshot_every=args.snapshot_every, keep=args.keep_snapshots,
        )  # fmt: skip
        if out.is_terminal and not args.json:
            with Live(console=out, refresh_per_second=4, transient=True) as live:

                def show(report: ProjectionReport) -> None:
                    live.update(Group(state_table(report.projection, report.canonical),
                                      follow_line(report)))  # fmt: skip

                report = projector.follow(stop, show, snapshot_seconds=args.snapshot_seconds)
        else:  # with --json, stdout holds the final document only: progress goes to stderr
            lines = err if args.json else out

            def log(report: ProjectionReport) -> None:
                if lines.is_terminal or lines is out:
                    lines.print(follow_line(report), soft_wrap=True)

            report = projector.follow(stop, log, snapshot_seconds=args.snapshot_seconds,
                                      update_seconds=1.0)  # fmt: skip
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_projection(report))
    return EXIT_OK


def snapshots(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.projecting import snapshots_of
    from eventfold.projections.registry import load_projection
    from eventfold.reports.projection import render_snapshots

    projection = load_projection(args.projection)
    app = open_application(args)
    try:
        generation, rows = snapshots_of(app, projection).list()
    finally:
        app.close()
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
