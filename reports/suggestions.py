"""What a report suggests doing next: one wording for every rendering of it.

The terminal reports and the HTML pages take their next steps from here, so they
cannot drift apart. A step is ``(before, command, after)``: the terminal prints it
as one line, the HTML shows the command as code. ``program`` is how the command
starts: None for ``program()`` (this run, for the terminal), ``"eventfold"`` for a
page meant to be shared.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from eventfold.application.proving.reconcile import DECIDE, ReconcileReport, left_parts, left_steps
from eventfold.application.proving.verify import VerifyReport
from eventfold.application.sources import SourceList
from eventfold.reports.text import command_line, grouped, plural

Step = tuple[str, str, str]  # (text before the command, the command, text after it)


def command(program: str | None, *args: str) -> str:
    """A command line to paste: ``program`` (None: ``program()``) then ``args``, quoted."""
    if program is None:
        return command_line(*args)
    return " ".join([program, *map(shlex.quote, args)])


def joined(step: Step) -> str:
    """A step as one line of text."""
    return "".join(step)


def next_steps(
    report: VerifyReport,
    store_options: Sequence[str] = (),
    program: str | None = None,
    asked: SourceList | None = None,
) -> list[tuple[str, str]]:
    """The commands ``report`` suggests, each with what it does; ``store_options``
    (``--store DIR`` ...) go into each command, and the sources as they were given
    (``asked``; None: each file read)."""
    e = report.events
    if report.sources and e is not None and e.missing_count:
        given = report.sources if asked is None else asked.arguments()
        reconcile = command(program, "reconcile", *given, *store_options)
        return [(reconcile, "replays what is missing")]
    return []


def conflict_steps(report: VerifyReport) -> list[Step]:
    """What to do about events the store and the source disagree on (none: [])."""
    e = report.events
    if e is None or not e.conflicting_count:
        return []
    told = (
        f"{plural(e.conflicting_count, 'conflicting event')} (the store and the source "
        "disagree): compare both versions of each (the conflicting table above, with their "
        "lines) and "
    )
    return [(told + DECIDE, "", "")]


def unresolved_steps(
    report: ReconcileReport,
    store_options: Sequence[str] = (),
    program: str | None = None,
    asked: SourceList | None = None,
) -> list[Step]:
    """What reconcile did not do (it only adds missing events), and the next steps;
    ``store_options`` and the sources as given (``asked``) go into their command."""
    left = report.unresolved(store_options, asked)
    final = report.after or report.before
    if left is None or final.events is None:
        return []
    parts = left_parts(final.events, len(report.sources) > 1)
    steps: list[Step] = [
        (
            f"not done: {', '.join(parts)}: reconcile only adds what is missing and never "
            "changes a recorded event, so these stay as they are",
            "",
            "",
        )
    ]
    if left["conflicting_ids"]:
        more = left["conflicting_events"] - len(left["conflicting_ids"])
        ids = ", ".join(left["conflicting_ids"]) + (f" and {grouped(more)} more" if more else "")
        steps.append((f"conflicting ids: {ids}", "", ""))
    inspect = command(program, "verify", *report.verify_arguments(asked), *store_options)
    for step in left_steps(final.events, "\0"):
        before, _, after = step.partition("\0")
        steps.append(("next: " + before, inspect, after))
    return steps
