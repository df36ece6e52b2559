"""``eventfold demo``: the whole story on an embedded store, in well under a minute.

A bus archive (``events.jsonl``: duplicates, conflicts, bad lines, events out
of order) and the feed a worker actually consumed (``worker-feed.jsonl``: the
same lines, less a slice lost in a consumer rebalance). The worker's ingest is
killed with SIGKILL part way and resumed; projections catch up from their last
snapshot; the totals are verified against the archive (the report shows the
damage), reconciled, and verified again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.app import open_store
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.report import IngestReport
from eventfold.application.projecting import ProjectionReport, Projector
from eventfold.application.proving.reconcile import ReconcileReport, reconcile
from eventfold.application.proving.verify import VerifyReport, verify
from eventfold.projections.builtin import CategoryTotals, HourlyTotals

EVENTS = 30_000
LOST = (17_001, 17_800)  # the worker never saw these lines of the archive
CRASH_AFTER_COMMITS = 12
RATES = SampleRates(duplicates=0.04, conflicts=0.01, invalid=0.02, out_of_order=0.3)


@dataclass
class Step:
    title: str
    lines: list[str] = field(default_factory=list)
    result: Any = None  # a report to render, if any


def run_demo(directory: str, show: Callable[[Step], None]) -> bool:
    """Run the story in ``directory``; True when the final verification matches."""
    archive = os.path.join(directory, "events.jsonl")
    feed = os.path.join(directory, "worker-feed.jsonl")
    store = os.path.join(directory, "store")
    lost = _write_sources(archive, feed)
    show(
        Step(
            "1. A day on the bus",
            [
                f"{archive}: {EVENTS:,} lines, with duplicates, conflicting repeats, bad lines "
                "and events out of time order (late arrivals)",
                f"{feed}: what the worker consumed; {lost:,} lines ({LOST[0]:,}-{LOST[1]:,}) were "
                "lost in a consumer rebalance",
            ],
        )
    )

    killed = _crashing_ingest(store, feed)
    app = open_store(store)
    try:
        first = Projector(app, store, CategoryTotals()).catchup()
        show(
            Step(
                "2. The worker's ingest is killed (SIGKILL) part way",
                [
                    f"killed after {CRASH_AFTER_COMMITS} commits"
                    if killed
                    else "(it finished before the kill)",
                    "category_totals built from what was committed: "
                    f"{first.events_applied:,} events up to notification {first.position:,}, "
                    "snapshot written",
                ],
            )
        )
        with Ingestor(app, store, batch=500) as ingestor:
            resumed = ingestor.run(feed)
        title = "3. Ingest again: it resumes where the last commit ended"
        show(Step(title, _ingest_lines(resumed)))
        caught = [Projector(app, store, p).catchup() for p in (CategoryTotals(), HourlyTotals())]
        show(Step("4. Projections catch up from their last snapshot", _catchup_lines(caught)))
        before = verify(app, store, source=archive)
        show(
            Step(
                "5. Verify the totals against the bus archive",
                [
                    "expected state computed from the archive by the ingest rules, independently",
                ],
                before,
            )
        )
        fixed = reconcile(app, store, archive)
        show(Step("6. Reconcile: replay what the store lacks", _reconcile_lines(fixed)))
        after = verify(app, store, source=archive)
        show(Step("7. Verify again", [], after))
    finally:
        app.close()
    return after.matches and not before.matches


def _write_sources(archive: str, feed: str) -> int:
    with open(archive, "wb") as f:
        write_sample(f, EVENTS, rates=RATES, seed=2026)
    lost = 0
    with open(archive, "rb") as source, open(feed, "wb") as out:
        for number, line in enumerate(source, 1):
            if LOST[0] <= number <= LOST[1]:
                lost += 1
                continue
            out.write(line)
    return lost


def _crashing_ingest(store: str, feed: str) -> bool:
    """``eventfold ingest`` in a child process, killed (SIGKILL) at the end of its
    ``CRASH_AFTER_COMMITS``-th commit through its documented failpoint; True if it was."""
    env = os.environ | {"EVENTFOLD_FAILPOINT": f"ingest.after-commit@{CRASH_AFTER_COMMITS}"}
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventfold",
            "ingest",
            feed,
            "--store",
            store,
            "--batch",
            "500",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    return child.returncode == -signal.SIGKILL


def _ingest_lines(r: IngestReport) -> list[str]:
    return [
        f"resumed from byte {r.resumed_from:,}; read {r.read:,} more lines: ingested "
        f"{r.ingested:,}, duplicates {r.duplicates:,}, conflicts {r.conflicts:,}, "
        f"invalid {r.invalid:,} (quarantined)",
        "nothing was lost or counted twice: every commit carries its source position",
    ]


def _catchup_lines(reports: list[ProjectionReport]) -> list[str]:
    return [
        f"{r.projection}: from its snapshot at notification {r.from_position:,}, applied "
        f"only the {r.events_applied:,} events after it; checksum {r.checksum}"
        if r.snapshot_used is not None
        else f"{r.projection}: no snapshot yet, built from scratch ({r.events_applied:,} "
        f"events); checksum {r.checksum}"
        for r in reports
    ]


def _reconcile_lines(r: ReconcileReport) -> list[str]:
    replayed = r.replay.ingested if r.replay else 0
    return [
        f"found {r.missing:,} missing events in {len(r.gaps):,} "
        f"{'gap' if len(r.gaps) == 1 else 'gaps'}; replayed {replayed:,} "
        "in event order (timestamp, then source position)",
        "a second reconcile would replay nothing: ids already recorded are duplicates",
    ]


__all__ = ["Step", "VerifyReport", "run_demo"]
