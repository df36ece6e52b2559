"""``follow``: keep a projection current as events are committed, by any process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from eventsourcing.utils import get_topic

if TYPE_CHECKING:
    from eventfold.application.projecting.projector import ProjectionReport, Projector


def follow_events(
    projector: Projector,
    stop: threading.Event,
    on_update: Callable[[ProjectionReport], None] | None,
    snapshot_seconds: float,
    update_seconds: float,
) -> ProjectionReport:
    report = projector._catchup(True, None)
    state, position = report.state, report.position
    newest = report.snapshot_written or report.snapshot_used  # the catch-up's state
    total = newest.events_applied if newest else 0
    generation, topics = report.generation, [get_topic(c) for c in projector.projection.handlers]
    if stop.is_set():  # asked to stop during the catch-up: its snapshot is the final one
        report.mode = "follow"
        return report
    subscription = projector.app.recorder.subscribe(gt=position, topics=topics)

    def stop_when_asked() -> None:
        stop.wait()
        subscription.stop()

    watcher = threading.Thread(target=stop_when_asked, daemon=True)
    watcher.start()
    pending, last_snapshot, last_update = 0, time.monotonic(), 0.0

    def snapshot() -> None:
        nonlocal pending, last_snapshot
        report.snapshot_written = projector.snapshots.write(generation, state, position, total)
        pending, last_snapshot = 0, time.monotonic()

    try:
        for notification in subscription:
            if stop.is_set():
                break
            projector._apply_one(state, notification)
            position, total, pending = notification.id, total + 1, pending + 1
            report.events_applied += 1
            now = time.monotonic()
            if pending >= projector.snapshot_every or now - last_snapshot >= snapshot_seconds:
                snapshot()
            if on_update is not None and now - last_update >= update_seconds:
                last_update = now
                projector._refresh(report, state, position)
                on_update(report)
    except KeyboardInterrupt:
        pass
    finally:
        subscription.stop()
        stop.set()
    if pending:
        snapshot()
    projector._refresh(report, state, position)
    report.mode = "follow"
    return report
