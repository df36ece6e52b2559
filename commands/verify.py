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
    given_store_options,
    open_application,
)
from eventfold.commands.options import (
    Commands,
    batch_option,
    command,
    max_line_option,
    output_options,
    store_options,
)


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
    expected = verify_.add_mutually_exclusive_group(required=True)
    expected.add_argument(
        "--source", metavar="FILE", help="compute the expected state from a JSON Lines source"
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
        "  eventfold reconcile events.jsonl --json\n",
    )
    reconcile_.add_argument("source", metavar="SOURCE", help="the JSON Lines source")
    store_options(reconcile_)
    reconcile_.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; write nothing"
    )
    batch_option(reconcile_, "events per atomic commit while replaying (default 1000)")
    max_line_option(reconcile_)
    output_options(reconcile_)
    reconcile_.set_defaults(run=reconcile)


def verify(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.proving.verify import verify as run_verify
    from eventfold.reports.verify import render_verify, verdict

    app = open_application(args)
    try:
        report = run_verify(
            app,
            app.state_dir,
            source=args.source,
            expected_checksum=args.expected_checksum,
            expected_document=args.expected,
            max_line=args.max_line_bytes,
        )
    finally:
        app.close()
    rendered = render_verify(report, show_all=args.all, store_options=given_store_options(args))
    save_report(rendered, html=args.html, svg=args.svg, title="eventfold verify")
    emit(args, out, report.to_json, lambda: rendered, lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH


def save_report(rendered: RenderableType, *, html: str | None, svg: str | None, title: str) -> None:
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


def reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.proving.reconcile import reconcile as run_reconcile
    from eventfold.reports.reconcile import render_reconcile
    from eventfold.reports.verify import verdict

    app = open_application(args, writes=not args.dry_run)
    try:
        report = run_reconcile(
            app,
            app.state_dir,
            args.source,
            dry_run=args.dry_run,
            batch=args.batch,
            max_line=args.max_line_bytes,
        )
    finally:
        app.close()
    emit(
        args,
        out,
        report.to_json,
        lambda: render_reconcile(report, given_store_options(args)),
        lambda: verdict(report.after or report.before),
    )
    return EXIT_OK if report.matches else EXIT_MISMATCH
