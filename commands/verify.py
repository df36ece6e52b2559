"""`eventfold verify` and `eventfold reconcile`."""

from __future__ import annotations

import argparse
import io

from rich.console import Console, RenderableType

from eventfold.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    UsageError,
    emit,
    open_application,
    store_options,
)


def verify(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.proving.verify import verify as run_verify
    from eventfold.reports.verify import render_verify, verdict

    app = open_application(args)
    try:
        report = run_verify(app, app.state_dir or args.store, source=args.source,
                            expected_checksum=args.expected_checksum,
                            expected_document=args.expected,
                            max_line=args.max_line_bytes)  # fmt: skip
    finally:
        app.close()
    rendered = render_verify(report, show_all=args.all, store_options=store_options(args))
    save_report(rendered, html=args.html, svg=args.svg, title="eventfold verify")
    emit(args, out, report.to_json, lambda: rendered, lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH


def save_report(rendered: RenderableType, *, html: str | None, svg: str | None,
                title: str) -> None:  # fmt: skip
    """Write the same report as HTML and/or SVG (a recording console)."""
    if not html and not svg:
        return
    recorder = Console(record=True, width=120, file=io.StringIO(), force_terminal=True)
    recorder.print(rendered)
    try:
        if html:
            recorder.save_html(html, clear=False)
        if svg:
            recorder.save_svg(svg, title=title, clear=False)
    except OSError as e:
        raise UsageError(f"cannot write the report: {e}") from None


def reconcile(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.proving.reconcile import reconcile as run_reconcile
    from eventfold.reports.reconcile import render_reconcile
    from eventfold.reports.verify import verdict

    app = open_application(args)
    try:
        report = run_reconcile(app, app.state_dir or args.store, args.source,
                               dry_run=args.dry_run, batch=args.batch,
                               max_line=args.max_line_bytes)  # fmt: skip
    finally:
        app.close()
    emit(args, out, report.to_json, lambda: render_reconcile(report, store_options(args)),
         lambda: verdict(report.after or report.before))  # fmt: skip
    return EXIT_OK if report.matches else EXIT_MISMATCH
