"""`eventfold verify` and `eventfold reconcile`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType

if TYPE_CHECKING:
    from eventfold.application.app import Eventfold
    from eventfold.application.proving.verify import VerifyReport
    from eventfold.reports.html import ReportContext

from eventfold.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    absolute_store_options,
    emit,
    given_store_options,
    open_application,
)
from eventfold.commands.options import (
    Commands,
    batch_option,
    command,
    limit_option,
    max_line_option,
    one_configured_source,
    output_options,
    store_options,
)
from eventfold.infra.errors import OutputWriteError


def register(commands: Commands) -> None:
    verify_ = command(
        commands,
        "verify",
        "prove category_totals against an expected state; show what differs",
        "Catches the projection up, then compares. exit 0 match, 1 mismatch, 2 when\n"
        "the evidence cannot be used (no valid event in it, unreadable, binary).\n"
        "examples:\n"
        "  eventfold verify --source events.jsonl\n"
        "  eventfold verify --expected-checksum 3f2a...\n"
        "  eventfold verify --expected expected.json --all --html report.html\n",
    )
    store_options(verify_)
    expected = verify_.add_mutually_exclusive_group()  # one, or the configured source
    expected.add_argument(
        "--source",
        metavar="FILE",
        help="compute the expected state from a JSON Lines source (- for stdin; default: "
        "the configuration file's source, when it lists exactly one)",
    )
    expected.add_argument(
        "--expected-checksum",
        metavar="HEX",
        help="the canonical checksum of the expected state (README)",
    )
    expected.add_argument(
        "--expected",
        metavar="FILE",
        help='an expected state: {"categories": {NAME: {"count", "total"}}}',
    )
    verify_.add_argument("--all", action="store_true", help="list matching categories too")
    verify_.add_argument("--html", metavar="FILE", help="also save the report as HTML")
    verify_.add_argument("--svg", metavar="FILE", help="also save the report as SVG")
    max_line_option(verify_)
    limit_option(verify_)
    output_options(verify_)
    verify_.set_defaults(run=verify)
    reconcile_ = command(
        commands,
        "reconcile",
        "replay the source events the store lacks, then verify again",
        "Finds missing events by id, replays them in event order (timestamp,\n"
        "then source position) through the idempotent ingest, catches the\n"
        "projection up and verifies. exit 0 when it matches after, 1 if not.\n"
        "examples:\n"
        "  eventfold reconcile events.jsonl --dry-run\n"
        "  eventfold reconcile events.jsonl --json\n"
        "  eventfold reconcile events.jsonl --html reconcile.html\n",
    )
    reconcile_.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        help="the JSON Lines source, or - for stdin (default: the configuration file's "
        "source, when it lists exactly one)",
    )
    store_options(reconcile_)
    reconcile_.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; write nothing"
    )
    batch_option(reconcile_, "events per atomic commit while replaying (default 1000)")
    reconcile_.add_argument("--html", metavar="FILE", help="also save the report as HTML")
    max_line_option(reconcile_)
    limit_option(reconcile_)
    output_options(reconcile_)
    reconcile_.set_defaults(run=reconcile)


def verify(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.proving.verify import verify as run_verify
    from eventfold.reports.progress import progress_on
    from eventfold.reports.verify import render_verify, verdict

    if args.source is None and args.expected_checksum is None and args.expected is None:
        given = "one of --source FILE, --expected FILE, --expected-checksum HEX"
        args.source = one_configured_source(args, "verify", given)
    app = open_application(args)
    try:
        with progress_on(err) as progress:
            report = run_verify(
                app,
                app.state_dir,
                source=args.source,
                expected_checksum=args.expected_checksum,
                expected_document=args.expected,
                max_line=args.max_line_bytes,
                limit=args.limit,
                progress=progress,
            )
        sources = [("source", args.source)] if args.source else []
        sources += [("expected state", args.expected)] if args.expected else []
        context = report_context(app, args, sources)
    finally:
        app.close()
    rendered = render_verify(report, show_all=args.all, store_options=given_store_options(args))
    emit(args, out, report.to_json, lambda: rendered, lambda: verdict(report))
    save_reports(args.html, args.svg, report, context, rendered)
    return EXIT_OK if report.matches else EXIT_MISMATCH


def report_context(
    app: Eventfold, args: argparse.Namespace, sources: list[tuple[str, str]]
) -> ReportContext:
    """When and where a report is made, for its HTML page."""
    from eventfold.reports.html import ReportContext

    return ReportContext(
        store=app.backend.describe(),
        backend=app.backend.name,
        sources=sources,
        store_options=absolute_store_options(args),
        show_all=getattr(args, "all", False),
    )


def save_reports(
    html: str | None,
    svg: str | None,
    report: VerifyReport,
    context: ReportContext,
    rendered: RenderableType,
) -> None:
    """Write the HTML page and/or the SVG picture of the terminal report.

    Called after the verdict is printed: a file that cannot be written is then one
    ``OutputWriteError`` (exit 2) naming it, and the verdict is not lost.
    """
    from eventfold.reports.html import render_verify_html
    from eventfold.reports.svg import render_svg

    if html:
        write_report(html, "HTML report", render_verify_html(report, context))
    if svg:
        write_report(svg, "SVG report", render_svg(rendered, title="eventfold verify"))


def write_report(path: str, what: str, text: str) -> None:
    """Write ``text`` to ``path``; a failure is an ``OutputWriteError`` naming the file."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        msg = f"{path}: cannot write the {what} ({e.strerror or e}); the verdict above stands"
        raise OutputWriteError(msg) from None


def reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.proving.reconcile import reconcile as run_reconcile
    from eventfold.reports.html_reconcile import render_reconcile_html
    from eventfold.reports.progress import progress_on
    from eventfold.reports.reconcile import render_reconcile
    from eventfold.reports.verify import verdict

    if args.source is None:
        args.source = one_configured_source(args, "reconcile", "a SOURCE")
    app = open_application(args, writes=not args.dry_run)
    try:
        with progress_on(err) as progress:
            report = run_reconcile(
                app,
                app.state_dir,
                args.source,
                dry_run=args.dry_run,
                batch=args.batch,
                max_line=args.max_line_bytes,
                limit=args.limit,
                progress=progress,
            )
        context = report_context(app, args, [("source", args.source)])
    finally:
        app.close()
    emit(
        args,
        out,
        lambda: report.to_json(absolute_store_options(args)),
        lambda: render_reconcile(report, given_store_options(args)),
        lambda: verdict(report.after or report.before),
    )
    if args.html:  # after the verdict: a file that cannot be written does not hide it
        write_report(args.html, "HTML report", render_reconcile_html(report, context))
    return EXIT_OK if report.matches else EXIT_MISMATCH
