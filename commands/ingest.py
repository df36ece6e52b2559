"""`eventfold ingest`."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.text import Text

from eventfold.commands.common import EXIT_OK, emit, open_application


def ingest(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.ingest import Ingestor
    from eventfold.reports.ingest import render_ingest

    app = open_application(args, create=True, snapshot_interval=args.snapshot_interval)
    try:
        with Ingestor(app, app.state_dir or args.store, batch=args.batch,
                      partition=args.partition,
                      max_line=args.max_line_bytes) as ingestor:  # fmt: skip
            for warning in ingestor.warnings:
                err.print(Text(f"eventfold: warning: {warning}"), soft_wrap=True)
            with _progress(err, args.source) as progress:
                report = ingestor.run(args.source, rescan=args.rescan, progress=progress)
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_ingest(report))
    return EXIT_OK


@contextlib.contextmanager
def _progress(err: Console, source: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr when it is a terminal (bytes of the source read)."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "ingesting",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None)

        def update(position: int, size: int | None) -> None:
            bar.update(task, completed=position, total=size)

        yield update
