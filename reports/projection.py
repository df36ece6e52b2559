"""Reports of ``rebuild``, ``catchup`` and ``snapshots``: the state, then a summary panel."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.projections.base import canonical_decimal
from eventfold.reports.fold import glued
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.text import grouped, plain, plural, visible

if TYPE_CHECKING:  # the reports of catchup and rebuild need no more of the application
    from eventfold.application.admin.partitions import PartitionsStatus
    from eventfold.application.admin.status import StoreStatus
    from eventfold.application.projecting import ProjectionReport
    from eventfold.application.projecting.distributed import SharedRun
    from eventfold.application.projecting.generations import Generations
    from eventfold.projections.snapshots import SnapshotInfo

MAX_ROWS = 200


def render_projection(report: ProjectionReport) -> Group:
    parts: list[RenderableType] = [state_table(report.projection, report.canonical, report.figures)]
    for skipped in report.skipped:
        parts.append(plain(f"skipped snapshot {skipped.path}: {skipped.reason}", style="yellow"))
    parts.append(_summary(report))
    return Group(*parts)


def state_table(
    projection: str,
    canonical: dict[str, Any],
    figures: dict[str, dict[str, Any]] | None = None,
) -> FigureTable:
    """The canonical state as a table: categories (and hours) with count and total, and
    the projection's further ``figures`` per category (min, max, first, last)."""
    rows: Iterator[tuple[tuple[str, ...], Any]]
    columns = [Col("category", "key")]
    if "categories" not in canonical and "hours" not in canonical:
        return _any_table(projection, canonical)
    if "categories" in canonical:
        count = len(canonical["categories"])
        rows = (((name,), v) for name, v in sorted(canonical["categories"].items()))
    else:
        hours = canonical.get("hours", {})
        count = sum(len(by_hour) for by_hour in hours.values())
        rows = (  # only the rows shown are sorted: a category's hours, as they are reached
            ((name, hour), v)
            for name, by_hour in sorted(hours.items())
            for hour, v in sorted(by_hour.items())
        )
        columns.append(Col("hour (UTC)", "word"))
    columns += [Col("count"), Col("total")]
    extra = sorted({key for f in (figures or {}).values() for key in f}, key=_figure_order)
    columns += [Col(key.replace("_", " ")) for key in extra]
    cells: list[list[str | Text]] = []
    for key, value in itertools.islice(rows, MAX_ROWS):
        more = (figures or {}).get(key[0], {})
        cells.append(
            [
                *key,
                grouped(value["count"]),
                grouped(value["total"]),
                *(_figure(more.get(k)) for k in extra),
            ]
        )
    caption = None
    if count > MAX_ROWS:
        caption = f"{plural(count - MAX_ROWS, 'more row')}: use --json for all"
    resting = sum(1 for f in (figures or {}).values() if "reconstructed_count" in f)
    if resting:
        part = (
            f"{plural(resting, 'total')} rest in part on reconstructions (the reconstructed "
            "columns: not proven from raw events; eventfold reconstruct --list)"
        )
        caption = part if caption is None else f"{caption}; {part}"
    if not count:
        caption = "no events applied"
    return FigureTable(columns, cells, title=plain(projection), caption=caption)


def _any_table(projection: str, canonical: Any) -> FigureTable:
    """Another projection's canonical state: a row per leaf of its nested objects (under
    its one top-level key, if it has one), a column per member of a leaf that is an object
    of plain values (its measures), else the leaf's value as JSON."""
    doc = canonical
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        doc = next(iter(doc.values()))
    rows: list[tuple[tuple[str, ...], Any]] = []
    _leaves(doc, (), rows)
    depth = max((len(k) for k, _ in rows), default=1)
    measures = sorted(
        {m for _, v in rows if isinstance(v, dict) for m in v}
        if all(isinstance(v, dict) for _, v in rows)
        else set()
    )
    columns = [
        Col("key" if i == 0 else f"key {i + 1}", "key" if i == 0 else "text") for i in range(depth)
    ]
    columns += [Col(m) for m in measures] or [Col("value", "text")]
    cells: list[list[str | Text]] = []
    for key, value in rows[:MAX_ROWS]:
        cells.append([*(plain(k) for k in key), *([""] * (depth - len(key)))])
        if measures:
            cells[-1] += [_figure(value.get(m)) for m in measures]
        else:
            cells[-1].append(
                plain(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))
            )
    caption = None
    if len(rows) > MAX_ROWS:
        caption = f"{plural(len(rows) - MAX_ROWS, 'more row')}: use --json for all"
    if not rows:
        caption = "no events applied"
    return FigureTable(columns, cells, title=plain(projection), caption=caption)


def _leaves(doc: Any, prefix: tuple[str, ...], rows: list[tuple[tuple[str, ...], Any]]) -> None:
    if not isinstance(doc, dict):
        rows.append((prefix or ("-",), doc))
        return
    for name, value in sorted(doc.items()):
        nested = isinstance(value, dict) and any(isinstance(v, dict) for v in value.values())
        if nested:
            _leaves(value, (*prefix, str(name)), rows)
        else:
            rows.append(((*prefix, str(name)), value))


def _figure_order(key: str) -> tuple[int, str]:
    known = ("reconstructed_count", "reconstructed_total", "min", "max", "first", "last")
    return (known.index(key), key) if key in known else (len(known), key)


def _figure(value: Any) -> str:
    """A figure as recorded (``600.00`` stays), grouped; one written with an exponent
    without it (``1E+3`` -> ``1,000``), as totals are shown."""
    if value is None:
        return "-"
    text = str(value)
    if "E" not in text.upper():
        return grouped(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return grouped(canonical_decimal(number)) if number.is_finite() else text


def _summary(report: ProjectionReport) -> Summary:
    applied = (  # ours: the glue between figure and unit is not made visible, as plain() would
        f"position {report.position:,} (from {report.from_position:,}); "
        f"{plural(report.events_applied, 'event')} applied in "
    )
    lines = [
        f"{report.mode}: generation {report.generation}, {plural(report.workers, 'worker')}",
        f"checksum {report.checksum}",
        "snapshot used: " + _snapshot(report.snapshot_used),
        "snapshot written: " + _written(report),
    ]
    if report.reason:
        lines.append(f"rebuilt from scratch: {report.reason}")
    if report.shared is not None:
        lines += _shared_lines(report.shared)
    texts = [plain(line) for line in lines]
    texts.insert(1, Text(applied + glued(f"{report.elapsed:.2f}", "s")))
    return Summary(texts, title=visible(report.projection))


def _shared_lines(run: SharedRun) -> list[str]:
    """Which worker of the shared rebuild this was, what became of its part, the merge."""
    plan = run.plan
    if run.written:
        part = "written"
    elif run.parts:
        part = "written before (not again)"
    else:
        part = "not written (not needed)"
    lines = [
        f"worker {run.worker} ({'opened' if run.opened else 'joined'} the plan of "
        f"{plan.generation}: {plural(plan.workers, 'worker')}, {_range(0, plan.until)})",
        f"part {run.worker.index}: {_range(run.after, run.last)}, "
        f"{plural(run.applied, 'event')} applied, {part}",
    ]
    if run.merged:
        lines.append(f"merged the {plural(plan.workers, 'part')} and switched to {plan.generation}")
        if run.left_to_catchup:
            lines.append(
                f"{plural(run.left_to_catchup, 'notification')} after {plan.until:,} "
                "left to eventfold catchup"
            )
    else:
        lines.append(f"not merged: {run.note}")
    return lines


def _range(after: int, last: int) -> str:
    return f"notifications {after + 1:,} to {last:,}" if last > after else "no notifications"


def _written(report: ProjectionReport) -> str:
    """The snapshot this run wrote, or why it wrote none."""
    if report.snapshot_written is not None:
        return _snapshot(report.snapshot_written)
    if report.unwritten:
        return f"none ({report.unwritten})"
    if report.reason:
        return "none"  # the reason line says why
    if report.snapshot_used is not None and report.position == report.snapshot_used.position:
        return "none (nothing new to apply: the snapshot used is current)"
    return "none"


def _snapshot(info: SnapshotInfo | None) -> str:
    if info is None:
        return "none"
    return f"{info.path} (position {info.position:,})"


def render_snapshots(
    projection: str, generation: str | None, rows: list[tuple[str, SnapshotInfo | None, str | None]]
) -> FigureTable:
    columns = [
        Col("file", "key"),
        Col("position"),
        Col("created", "word"),
        Col("events applied"),
        Col("checksum"),
        Col("status", "text"),
    ]
    cells: list[list[str | Text]] = []
    for path, info, problem in rows:
        if info is None:
            cells.append([path, "-", "-", "-", "-", Text(f"unusable: {problem}", style="red")])
        else:
            cells.append(
                [
                    path,
                    grouped(info.position),
                    info.created,
                    grouped(info.events_applied),
                    info.checksum,
                    Text("ok", style="green"),
                ]
            )
    return FigureTable(
        columns, cells, title=plain(f"{projection} snapshots ({generation or 'no rebuild yet'})")
    )


def follow_line(report: ProjectionReport) -> Text:
    """One line of a running ``follow``: where it stands, since when."""
    return plain(
        f"following {report.projection}: position {report.position:,}, "
        f"{plural(report.events_applied, 'event')} applied in {report.elapsed:,.0f} s, "
        f"checksum {report.checksum} (Ctrl-C stops)"
    )


def render_status(status: StoreStatus) -> Group:
    from eventfold.reports.sources import status_line

    title = f"store {status.path}"
    if not status.files_are_the_store:
        title += f" (the events are in {status.location}; files here are this machine's)"
    store = FigureTable(
        [Col("measure", "key"), Col("")],
        [
            ["events", grouped(status.events)],
            ["last notification id", grouped(status.last_notification_id)],
            ["files", grouped(status.files)],
            ["bytes", grouped(status.bytes)],
        ],
        title=plain(title),
        show_header=False,
    )
    columns = [
        Col("projection", "key"),
        Col("generation", "key"),
        Col("position"),
        Col("lag"),
        Col("snapshots", "text"),
        Col("note", "text"),
    ]
    cells: list[list[str | Text]] = []
    for p in status.projections:
        valid = sum(1 for s in p.snapshots if s.get("valid"))
        cells.append(
            [
                p.name,
                p.generation or "-",
                "-" if p.position is None else grouped(p.position),
                "-" if p.lag is None else grouped(p.lag),
                f"{valid:,} valid of {len(p.snapshots):,}",
                p.note,
            ]
        )
    caption = None if status.projections else "none yet: eventfold rebuild builds one"
    projections = FigureTable(columns, cells, title="projections", caption=caption)
    parts: list[RenderableType] = [store, projections]
    if status.standing or status.retired:
        parts.append(
            plain(
                f"reconstructions: standing {', '.join(status.standing) or 'none'}; "
                f"retired {len(status.retired):,} (eventfold reconstruct --list)"
            )
        )
    if status.partitions is not None:
        parts.append(_partitions_line(status.partitions))
    if status.sources is not None:
        parts.append(status_line(status.sources))
    return Group(*parts)


def _partitions_line(p: PartitionsStatus) -> Text:
    """How a partitioned store's join stands, in one line."""
    text = (
        f"partitions: {p.count}; {grouped(p.files_joined)} of "
        f"{plural(p.files_planned, 'file')} of the last plan joined the log"
    )
    if p.waiting_file is None:
        return plain(text + "; nothing waiting", style="green")
    text += f"; {plural(p.events_waiting, 'event')} in partitions' tables wait on "
    if p.waiting_because == "read":
        text += f"{p.waiting_file}, read: it joins at the next run of any partition"
    elif p.waiting_because == "reading":
        text += f"partition {p.waiting_on}, which is reading {p.waiting_file}"
    else:
        text += (
            f"partition {p.waiting_on}, which has not read {p.waiting_file} and is not "
            f"running: start it (eventfold ingest, the same files, --partition {p.waiting_on})"
        )
    return plain(text, style="yellow")


def render_generations(listing: Generations) -> RenderableType:
    """A row per generation: in use or not, position, checksum of its newest snapshot."""
    if not listing.generations:
        return plain(f"{listing.projection}: no generation yet (eventfold rebuild makes one)")
    columns = [
        Col("generation", "key"),
        Col("in use", "text"),
        Col("position"),
        Col("snapshots"),
        Col("version"),
        Col("checksum", "text"),
    ]
    cells: list[list[str | Text]] = []
    for g in listing.generations:
        n = g.newest
        cells.append(
            [
                g.name,
                "yes" if g.current else "no",
                "-" if n is None else grouped(n.position),
                grouped(g.snapshots),
                "-" if n is None else str(n.version),
                "none verifies" if n is None else n.checksum,
            ]
        )
    return FigureTable(columns, cells, title=plain(f"{listing.projection}: generations"))
