"""``follow``: keep a projection current as events are committed, by any process.

The rules (docs and the ``follow`` command rely on them):

- **Position** is the last notification id follow has seen, of any type (events
  the projection does not handle are skipped, not waited for), so once follow is
  current its position is the store's last notification id.
- **Counts**: ``events_applied`` is the number of events applied since follow
  started, the catch-up's included; ``elapsed`` is the wall time since it started.
- **Snapshots**: every ``snapshot_every`` events applied (a large state less
  often: ``Projector.snapshot_gap``); and, whenever the
  position moved since the last snapshot and ``snapshot_seconds`` have passed
  since it, even while no new event arrives (so ``status`` shows lag 0 once
  follow is current); and once more when it stops.
- **Updates**: ``on_update`` is called once right after the catch-up (before any
  new event), then every ``update_seconds`` while it runs, new events or not;
  with ``changes_only``, only for the intervals in which the position moved.
  Events arrive in bursts of any size: an update never waits for the next one.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Notification, Subscription

if TYPE_CHECKING:
    from eventfold.application.progress import Progress
    from eventfold.application.projecting.projector import ProjectionReport, Projector

MIN_TICK = 0.05  # seconds: the shortest wait for new events between two checks
MAX_TICK = 0.25  # seconds: the longest, so that a stop is seen at once
BURST = 1000  # notifications applied between two checks of the clock


def follow_events(
    projector: Projector,
    stop: threading.Event,
    on_update: Callable[[ProjectionReport], None] | None,
    snapshot_seconds: float,
    update_seconds: float,
    changes_only: bool = False,
    progress: Progress | None = None,
) -> ProjectionReport:
    """Catch up (telling ``progress``), then follow until ``stop`` (or KeyboardInterrupt);
    the final report."""
    started = time.monotonic()
    report = projector._catchup(True, progress)
    report.mode = "follow"
    state, position = report.state, report.position
    newest = report.snapshot_written or report.snapshot_used  # the catch-up's state
    total = newest.events_applied if newest else 0
    generation = report.generation
    if stop.is_set():  # asked to stop during the catch-up: its snapshot is the final one
        report.elapsed = time.monotonic() - started
        return report
    handled = projector.handled_topics()
    feed = _Feed(projector.app.recorder.subscribe(gt=position))
    snapped_at, last_snapshot = position, time.monotonic()
    shown_at, last_update, pending = -1, 0.0, 0
    gap = projector.snapshot_gap(newest)

    def snapshot() -> None:
        nonlocal pending, last_snapshot, snapped_at, gap
        report.snapshot_written = projector.snapshots.write(generation, state, position, total)
        pending, last_snapshot, snapped_at = 0, time.monotonic(), position
        gap = projector.snapshot_gap(report.snapshot_written)

    try:
        while not stop.is_set():
            now = time.monotonic()
            if on_update is not None and now - last_update >= update_seconds:
                if not changes_only or position != shown_at:
                    projector._refresh(report, state, position)
                    report.elapsed = now - started
                    on_update(report)
                    shown_at = position
                last_update = now
            wait = MAX_TICK if on_update is None else min(update_seconds, MAX_TICK)
            if position != snapped_at:
                wait = min(wait, last_snapshot + snapshot_seconds - now)
            for notification in feed.take(max(wait, MIN_TICK)):
                if notification.topic in handled:
                    projector._apply_one(state, notification)
                    total, pending = total + 1, pending + 1
                    report.events_applied += 1
                position = notification.id
                if pending >= gap:
                    snapshot()
            if position != snapped_at and time.monotonic() - last_snapshot >= snapshot_seconds:
                snapshot()
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
        stop.set()
    if position != snapped_at:
        snapshot()
    projector._refresh(report, state, position)
    report.elapsed = time.monotonic() - started
    return report


class _Feed:
    """The library's subscription, read in a thread, so that follow can wait with a timeout."""

    def __init__(self, subscription: Subscription[Any]) -> None:
        self._subscription = subscription
        self._queue: queue.Queue[Notification] = queue.Queue(maxsize=10 * BURST)
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for notification in self._subscription:
                while not self._stopped.is_set():
                    with contextlib.suppress(queue.Full):
                        self._queue.put(notification, timeout=0.1)
                        break
                if self._stopped.is_set():
                    return
        except BaseException as e:  # handed to follow's thread, raised there
            self._error = e

    def take(self, timeout: float) -> list[Notification]:
        """The notifications committed since the last call (up to ``BURST``), waiting up to
        ``timeout`` seconds for the first; raises what stopped the subscription, if anything."""
        taken: list[Notification] = []
        with contextlib.suppress(queue.Empty):
            taken.append(self._queue.get(timeout=timeout))
            while len(taken) < BURST:
                taken.append(self._queue.get_nowait())
        if not taken and self._error is not None:
            raise self._error
        return taken

    def stop(self) -> None:
        self._stopped.set()
        self._subscription.stop()
        self._thread.join(timeout=5.0)
