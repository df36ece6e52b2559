"""eventfold projections driven by the library's own ``ProjectionRunner``.

The library's contract is a ``Projection`` whose ``process_event(event,
tracking)`` updates a materialised view, a ``TrackingRecorder``. ``FoldView``
is that view for any eventfold projection (state in memory, tracking records
in the file store), and ``library_projection`` wraps an eventfold projection
class as a library ``Projection``, so::

    ProjectionRunner(application_class=Eventfold,
                     projection_class=library_projection(CategoryTotals),
                     view_class=fold_view(CategoryTotals), env=...)

runs it on the library's machinery (a subscription, a processing thread,
tracking per event). eventfold's own ``Projector`` is the fast path for
rebuilds and catch-ups; both fold with the same handlers (tested).
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection as LibraryProjection
from eventsourcing.utils import get_topic

from eventfold.domain.model import Category
from eventfold.projections.base import Projection, RecordedFact


class FoldView(TrackingRecorder):
    """A materialised view: an eventfold projection's state, with tracking records.

    Mixed with the backend's tracking recorder (``fold_view``), whose records it keeps.
    """

    projection_class: ClassVar[type[Projection[Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.projection = self.projection_class()
        self.state = self.projection.initial()

    def apply(self, event: Any, tracking: Tracking) -> None:
        handler = self.projection.handler(type(event))
        if handler is not None:
            if isinstance(event, Category.Recorded):
                e: Any = event
                event = RecordedFact(
                    tracking.notification_id,
                    e.event_id,
                    e.category,
                    e.value,
                    e.occurred_at,
                    e.source,
                    e.line,
                    e.offset,
                )
            handler(self.state, event)
        self.insert_tracking(tracking)


def fold_view(
    projection_class: type[Projection[Any]], recorder_class: type[TrackingRecorder]
) -> type[FoldView]:
    """The view class of an eventfold projection over a backend's tracking recorder class
    (``app.backend.tracking_recorder_class``), for ``ProjectionRunner(view_class=...)``."""
    return type(
        f"{projection_class.__name__}View",
        (FoldView, recorder_class),
        {"projection_class": projection_class},
    )


def library_projection(projection_class: type[Projection[Any]]) -> type[LibraryProjection[Any]]:
    """An eventfold projection class as the library's ``Projection`` class."""

    def process_event(
        self: LibraryProjection[FoldView], domain_event: Any, tracking: Tracking
    ) -> None:
        self.view.apply(domain_event, tracking)

    return type(
        f"Library{projection_class.__name__}",
        (LibraryProjection,),
        {
            "name": projection_class.name,
            "topics": tuple(get_topic(c) for c in projection_class.handlers),
            "process_event": process_event,
        },
    )
