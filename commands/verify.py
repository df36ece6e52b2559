"""`eventfold verify` and `eventfold reconcile`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from eventfold.application.app import Eventfold
    from eventfold.application.proving.expected import Columns
    from eventfold.application.proving.keyed import Narrowing
    from eventfold.application.proving.numbers import NumberFormat
    from eventfold.application.proving.verify import VerifyReport
    from eventfold.application.sources import SourceList
    from eventfold.projections.base import Projection
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
    as_of_options,
    as_of_point,
    batch_option,
    command,
    configured_sources_of,
    expected_file_options,
    expected_reading,
    limit_option,
    max_line_option,
    narrowing_options,
    output_options,
    projection_option,
    sha256_hex,
    source_list,
    source_list_options,
    store_options,
)
from eventfold.infra.errors import MissingArgumentError, OutputWriteError


def register(commands: Commands) -> None:
    verify_ = command(
        commands,
        "verify",
        "prove a projection against an expected state; show what differs",
        "Catches the projection up, then compares it row by row. Sources (files,\n"
        "directories, quoted patterns, - for stdin; --source FILE is one too) are read\n"
        "in order as ingest reads them: the first valid occurrence of an id counts.\n"
        "--expected reads a worker's output: CSV, TSV, JSON or JSON Lines. exit 0\n"
        "match, 1 mismatch, 2 when the evidence cannot be used (no valid event in it,\n"
        "unreadable, binary, damaged compressed data, a number it cannot read).\n"
        "examples:\n"
        "  eventfold verify --source events.jsonl\n"
        "  eventfold verify logs/ 'archive/*.jsonl.gz' --order mtime\n"
        "  eventfold verify --expected-checksum 3f2a...\n"
        "  eventfold verify --expected totals.csv --key name --total-col amount\n"
        "  eventfold verify --projection hourly_totals --expected hourly.jsonl\n"
        "  eventfold verify events.jsonl --category 'shop-*' --export diff.csv\n",
    )
    verify_.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="*",
        help="JSON Lines sources, maybe compressed: files, directories, quoted patterns, "
        "- for stdin (default: the configuration file's sources)",
    )
    store_options(verify_)
    expected = verify_.add_mutually_exclusive_group()  # sources, or one of the others
    expected.add_argument(
        "--source",
        metavar="FILE",
        action="append",
        help="a source, as SOURCE is (repeatable; - for stdin)",
    )
    expected.add_argument(
        "--expected-checksum",
        metavar="HEX",
        type=sha256_hex,
        help="the canonical checksum of the expected state (README)",
    )
    expected.add_argument(
        "--expected",
        metavar="FILE",
        help="an expected state: CSV, TSV, JSON (the canonical state, or rows) or JSON Lines",
    )
    projection_option(verify_)
    expected_file_options(verify_)
    narrowing_options(verify_)
    verify_.add_argument(
        "--by",
        choices=("hour", "day"),
        help="also compare per UTC hour or day: a timeline of where the damage is "
        "(needs sources, or --expected with --projection hourly_totals)",
    )
    as_of_options(verify_)
    verify_.add_argument(
        "--export",
        metavar="FILE",
        help="write every difference (keys, and events with sources) to FILE: .csv or .jsonl",
    )
    verify_.add_argument("--all", action="store_true", help="list matching rows too")
    verify_.add_argument("--html", metavar="FILE", help="also save the report as HTML")
    verify_.add_argument("--svg", metavar="FILE", help="also save the report as SVG")
    source_list_options(verify_)
    max_line_option(verify_)
    limit_option(verify_)
    output_options(verify_)
    verify_.set_defaults(run=verify)
    reconcile_ = command(
        commands,
        "reconcile",
        "replay the source events the store lacks, then verify again",
        "Finds missing events by id in the sources (read in order as ingest reads\n"
        "them), replays them in event order (timestamp, then file order, then\n"
        "position) through the idempotent ingest, each with its own file and line,\n"
        "catches the projection up and verifies. exit 0 when it matches after, 1 if\n"
        "not, 2 when the evidence cannot be used.\n"
        "examples:\n"
        "  eventfold reconcile events.jsonl --dry-run\n"
        "  eventfold reconcile logs/ 'archive/*.jsonl.gz'\n"
        "  eventfold reconcile events.jsonl --json\n"
        "  eventfold reconcile events.jsonl --html reconcile.html\n",
    )
    reconcile_.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="*",
        help="JSON Lines sources, maybe compressed: files, directories, quoted patterns, "
        "- for stdin (default: the configuration file's sources)",
    )
    store_options(reconcile_)
    source_list_options(reconcile_)
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
    from eventfold.application.admin.partitions import partitions_waiting
    from eventfold.application.proving.export import export_format
    from eventfold.application.proving.verify import verify as run_verify
    from eventfold.projections.registry import load_projection
    from eventfold.reports.progress import progress_on
    from eventfold.reports.verify import render_verify, verdict

    if args.export is not None:
        export_format(args.export)  # an unknown suffix is refused before anything is read
    asked, paths = _verify_sources(args)
    projection = load_projection(args.projection)
    narrowing = narrowing_of(args, projection, with_rows=not paths)
    columns, numbers = columns_of(args)
    app = open_application(args)
    try:
        with progress_on(err) as progress:
            report = run_verify(
                app,
                app.state_dir,
                sources=paths,
                expected_checksum=args.expected_checksum,
                expected_document=args.expected,
                max_line=args.max_line_bytes,
                limit=args.limit,
                progress=progress,
                projection=projection,
                columns=columns,
                numbers=numbers,
                narrowing=narrowing,
                export=args.export,
                by=args.by,
                as_of=as_of_point(args),
            )
        sources = [("expected state", args.expected)] if args.expected else []
        context = report_context(app, args, sources, asked, report.sources)
        waiting = partitions_waiting(app)
    finally:
        app.close()
    if waiting:
        err.print(Text(f"eventfold: warning: {waiting}"), soft_wrap=True)
    rendered = render_verify(
        report, show_all=args.all, store_options=given_store_options(args), asked=asked
    )
    emit(args, out, report.to_json, lambda: rendered, lambda: verdict(report))
    save_reports(args.html, args.svg, report, context, rendered)
    return EXIT_OK if report.matches else EXIT_MISMATCH


def narrowing_of(
    args: argparse.Namespace, projection: Projection[Any], with_rows: bool
) -> Narrowing:
    """``--category``, ``--since`` and ``--until`` as a ``Narrowing``; a usage error where
    they cannot narrow anything: a bare checksum, or a time window over a projection
    without a time key when there are no sources' events to narrow (``with_rows``)."""
    from eventfold.application.proving.keyed import Narrowing

    narrowing = Narrowing(tuple(args.category or ()), args.since, args.until)
    if narrowing and args.expected_checksum is not None:
        msg = "--category, --since and --until cannot narrow a bare checksum (--expected-checksum)"
        raise MissingArgumentError(msg)
    if narrowing.categories and "category" not in projection.keys:
        keys = ", ".join(projection.keys)
        msg = f"--category: {projection.name} has no category in its keys ({keys})"
        raise MissingArgumentError(msg)
    if narrowing.timed and with_rows and projection.time_key is None:
        msg = (
            f"--since/--until: {projection.name} has no time in its keys; they narrow a "
            "time-keyed projection (hourly_totals) or, with sources, the events compared"
        )
        raise MissingArgumentError(msg)
    return narrowing


def columns_of(args: argparse.Namespace) -> tuple[Columns, NumberFormat]:
    """How ``--expected`` is read: ``--key``, ``--count-col``, ``--total-col``,
    ``--number-format`` (a usage error without ``--expected``)."""
    needs = ("an expected file", "--expected FILE") if args.expected is None else None
    columns, numbers = expected_reading(args, needs)
    return columns, numbers


def _verify_sources(args: argparse.Namespace) -> tuple[SourceList | None, list[str]]:
    """The sources of ``verify`` as given, and the files it reads, resolved and looked at
    before anything is read (none with --expected or --expected-checksum, which cannot be
    combined with sources)."""
    from eventfold.application.sources import resolve_sources

    given = [*(args.source or []), *args.sources]
    other = "--expected" if args.expected else "--expected-checksum"
    if args.expected is not None or args.expected_checksum is not None:
        if given or args.sources_from is not None:
            msg = f"argument {other}: not allowed with sources (SOURCE, --source, --sources-from)"
            raise MissingArgumentError(msg)
        return None, []
    if not given and args.sources_from is None:
        want = "one of --source FILE (or SOURCE), --expected FILE, --expected-checksum HEX"
        given = configured_sources_of(args, "verify", want)
    asked = source_list(args, given)
    return asked, resolve_sources(asked, args.max_line_bytes)


def _reconcile_sources(args: argparse.Namespace) -> tuple[SourceList, list[str]]:
    """The sources of ``reconcile`` as given, and the files it reads, resolved and looked
    at before anything is read."""
    from eventfold.application.sources import resolve_sources

    given = list(args.sources)
    if not given and args.sources_from is None:
        given = configured_sources_of(args, "reconcile", "a SOURCE")
    asked = source_list(args, given)
    return asked, resolve_sources(asked, args.max_line_bytes)


def report_context(
    app: Eventfold,
    args: argparse.Namespace,
    rows: list[tuple[str, str]],
    asked: SourceList | None = None,
    read: Sequence[str] = (),
) -> ReportContext:
    """When and where a report is made, for its HTML page: the sources as given
    (``asked``, absolute; one ``source`` row when it names one file and that was read,
    else a ``sources`` row and the number of files ``read``), then ``rows``."""
    import shlex

    from eventfold.reports.html import ReportContext

    shared = None if asked is None else asked.absolute()
    facts: list[tuple[str, str]] = []
    files_read = None
    if shared is not None and shared.arguments() == list(shared.sources) and len(read) == 1:
        facts.append(("source", read[0]))  # one file, named as the report names it
    elif shared is not None:
        facts.append(("sources", shlex.join(shared.arguments())))
        files_read = len(read)
    return ReportContext(
        store=app.backend.describe(),
        backend=app.backend.name,
        sources=facts + rows,
        store_options=absolute_store_options(args),
        asked=shared,
        files_read=files_read,
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
    from eventfold.application.ingest.layout import refuse_if_partitioned
    from eventfold.application.proving.reconcile import reconcile as run_reconcile
    from eventfold.reports.html_reconcile import render_reconcile_html
    from eventfold.reports.progress import progress_on
    from eventfold.reports.reconcile import render_reconcile
    from eventfold.reports.verify import verdict

    asked, paths = _reconcile_sources(args)
    app = open_application(args, writes=not args.dry_run)
    try:
        if not args.dry_run:
            refuse_if_partitioned(app, "reconcile")
        with progress_on(err) as progress:
            report = run_reconcile(
                app,
                app.state_dir,
                paths,
                dry_run=args.dry_run,
                batch=args.batch,
                max_line=args.max_line_bytes,
                limit=args.limit,
                progress=progress,
            )
        context = report_context(app, args, [], asked, report.sources)
    finally:
        app.close()
    emit(
        args,
        out,
        lambda: report.to_json(absolute_store_options(args), asked.absolute()),
        lambda: render_reconcile(report, given_store_options(args), asked),
        lambda: verdict(report.after or report.before),
    )
    if args.html:  # after the verdict: a file that cannot be written does not hide it
        write_report(args.html, "HTML report", render_reconcile_html(report, context))
    return EXIT_OK if report.matches else EXIT_MISMATCH
