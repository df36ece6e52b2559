"""What a verify report suggests running next: one list for every rendering of it."""

from __future__ import annotations

from collections.abc import Sequence

from eventfold.application.proving.verify import VerifyReport
from eventfold.reports.text import command_line


def next_steps(report: VerifyReport, store_options: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The commands ``report`` suggests, each with what it does; ``store_options``
    (``--store DIR`` ...) go into each command."""
    e = report.events
    if report.source is not None and e is not None and e.missing_count:
        return [
            (command_line("reconcile", report.source, *store_options), "replays what is missing")
        ]
    return []
