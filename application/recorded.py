"""``Category.Recorded``, the event of almost every line: encoded and decoded in bulk
(and ``Category.Opened``, the first event of each category's stream: encoded).

Encoding: the library's per-event path (command method, event object, ``vars()``,
``JSONEncoder`` with a ``default`` hook per decimal and datetime) costs tens
of microseconds. Ingest writes millions of one event type whose JSON shape is
fixed, so ``RecordedCodec`` formats that JSON directly. It is used only when
the application's mapper is the library's default JSON transcoding (any
compressor or cipher is still applied); otherwise it builds the event object
and calls the mapper. A test holds both paths to the same bytes.

Decoding: the library's mapper builds a domain event object per event (about
15 µs). When the mapper is the library's plain JSON (no compressor, no
cipher), stored states are decoded with ``msgspec`` into typed structs and
made into the projections' ``RecordedFact`` (``states.py``: a page at a time, or
field by field); otherwise the mapper is used.
Both give equal facts (tested). The fields are those of ``Category.Recorded``
(``RECORDED_FIELDS``); a test checks every spelling of them here against it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from hashlib import blake2b
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from eventfold.application.pages import PAGE, notification_pages
from eventfold.application.states import (
    StatesPage,
    decode_last,
    decode_lasts,
    decode_state,
    decode_tallies,
)
from eventfold.domain.model import Category
from eventfold.projections.base import CategoryGroup, PageColumns, RecordedFact

if TYPE_CHECKING:
    from eventfold.application.app import Eventfold
    from eventfold.application.ingest.rules import SourceEvent

RECORDED_TOPIC = get_topic(Category.Recorded)
_OPENED: Any = Category.Opened  # type: ignore[attr-defined]  # made by ``@event("Opened")``
OPENED_TOPIC = get_topic(_OPENED)
_CATEGORY_TOPIC = get_topic(Category)
RECORDED_FIELDS = ("event_id", "category", "value", "occurred_at", "source", "line", "offset")
NIL = UUID(int=0)  # the state does not depend on the originator
_CONTENT_HASH = blake2b(digest_size=8, person=b"eventfold-body")


def _category_part(category: str) -> str:
    return (
        ',"category":' + encode_basestring(category) + ',"value":{"_type_":"decimal_str","_data_":"'
    )


def _when_part(iso: str | None) -> str:
    when = "null" if iso is None else '{"_type_":"datetime_iso","_data_":"' + iso + '"}'
    return '"},"occurred_at":' + when


def content_digest(category: str, value: Decimal, occurred_iso: str | None) -> bytes:
    """8 bytes naming a ``Recorded`` event's content: category, value as written, instant.

    Equal digests are equal content, so a repeated id with the digest of its first
    recording is a duplicate. Unequal digests may still be equal content (``1.5``
    and ``1.50``): the first recording is then read and compared numerically.
    """
    digest = _CONTENT_HASH.copy()
    digest.update(f"{_category_part(category)}{value!s}{_when_part(occurred_iso)}".encode())
    return digest.digest()


def _default_json(mapper: Mapper[Any]) -> bool:
    transcoder = mapper.transcoder
    return (
        type(transcoder) is JSONTranscoder
        and type(transcoder.types.get(Decimal)) is DecimalAsStr
        and type(transcoder.types.get(datetime)) is DatetimeAsISO
        and getattr(Category.Recorded, "class_version", 1) == 1
    )


class RecordedCodec:
    """Stored events of ``Category.Recorded`` for one application's mapper.

    The stored state does not hold the originator id or version, so it can be
    made before versions are known (even in another process: ``plain``).
    ``prepare`` fixes the event timestamp and source name shared by a batch;
    ``state`` then costs a few string joins per event.
    """

    def __init__(self, mapper: Mapper[Any] | None) -> None:
        self.mapper = mapper
        self.fast = mapper is None or _default_json(mapper)
        self.plain_json = mapper is None or (
            self.fast and not mapper.compressor and not mapper.cipher
        )
        self._categories: dict[str, str] = {}
        self._opened_at: tuple[datetime | None, str] = (None, "")
        self.prepare(datetime.now().astimezone(), "")

    @classmethod
    def plain(cls) -> RecordedCodec:
        """The library's default JSON, without a mapper (for a reader process)."""
        return cls(None)

    def prepare(self, timestamp: datetime, source: str) -> None:
        self.timestamp, self.source = timestamp, source
        self._head = (
            '{"timestamp":{"_type_":"datetime_iso","_data_":"'
            + timestamp.isoformat()
            + '"},"event_id":'
        )
        self._source = ',"source":' + encode_basestring(source)

    def state(self, event: SourceEvent, line: int, offset: int) -> bytes:
        """The stored state of the ``Recorded`` event of one source event."""
        return self.encoded(event, line, offset)[0]

    def encoded(self, event: SourceEvent, line: int, offset: int) -> tuple[bytes, bytes]:
        """The stored state of the ``Recorded`` event of one source event, and the digest
        of its content (``content_digest``), made from the same pieces."""
        iso = event.occurred_iso
        if iso is None and event.occurred_at is not None:
            iso = event.occurred_at.isoformat()
        if not self.fast:
            assert self.mapper is not None
            stored = self.mapper.to_stored_event(self._domain_event(event, line, offset))
            return stored.state, content_digest(event.category, event.value, iso)
        category = self._categories.get(event.category)
        if category is None:
            category = self._categories[event.category] = _category_part(event.category)
        content = f"{category}{event.value!s}{_when_part(iso)}"
        state = (
            f"{self._head}{encode_basestring(event.event_id)}{content}"
            f'{self._source},"line":{line},"offset":{offset}}}'
        ).encode()
        digest = _CONTENT_HASH.copy()
        digest.update(content.encode())
        return (self.finish(state) if self.mapper is not None else state), digest.digest()

    def finish(self, state: bytes) -> bytes:
        """Apply the mapper's compressor and cipher (if any) to plain JSON state."""
        if self.mapper is not None:
            if self.mapper.compressor:
                state = self.mapper.compressor.compress(state)
            if self.mapper.cipher:
                state = self.mapper.cipher.encrypt(state)
        return state

    def opened(
        self, name: str, timestamp: datetime, originator_id: UUID | None = None
    ) -> StoredEvent:
        """The stored ``Category.Opened`` event that starts the stream of category ``name``
        (version 1), as the library's mapper writes it, without the aggregate.
        ``originator_id``: ``Category.create_id(name)``, if the caller has it."""
        if originator_id is None:
            originator_id = Category.create_id(name)
        if not self.fast or getattr(_OPENED, "class_version", 1) != 1:
            event = _OPENED(
                originator_id=originator_id,
                originator_version=1,
                timestamp=timestamp,
                originator_topic=_CATEGORY_TOPIC,
                name=name,
            )
            assert self.mapper is not None
            stored: StoredEvent = self.mapper.to_stored_event(event)
            return stored
        if self._opened_at[0] != timestamp:  # one timestamp for the categories of a batch
            self._opened_at = (
                timestamp,
                '{"timestamp":{"_type_":"datetime_iso","_data_":"'
                + timestamp.isoformat()
                + '"},"originator_topic":'
                + encode_basestring(_CATEGORY_TOPIC)
                + ',"name":',
            )
        state = (self._opened_at[1] + encode_basestring(name) + "}").encode()
        return StoredEvent(originator_id, 1, OPENED_TOPIC, self.finish(state))

    def encode(
        self, originator_id: UUID, version: int, event: SourceEvent, line: int, offset: int
    ) -> StoredEvent:
        """The stored ``Category.Recorded`` event for one source event."""
        return StoredEvent(originator_id, version, RECORDED_TOPIC, self.state(event, line, offset))

    def _domain_event(self, event: SourceEvent, line: int, offset: int) -> Any:
        return Category.Recorded(  # type: ignore[call-arg]
            originator_id=NIL,
            originator_version=1,
            timestamp=self.timestamp,
            event_id=event.event_id,
            category=event.category,
            value=event.value,
            occurred_at=event.occurred_at,
            source=self.source,
            line=line,
            offset=offset,
        )


# -- decoding ------------------------------------------------------------------


@functools.cache
def plain_json(mapper: Any) -> bool:
    """Whether the mapper stores the library's plain JSON (no compressor, no cipher)."""
    return RecordedCodec(mapper).plain_json


def recorded_values(states: list[bytes]) -> tuple[list[Decimal], datetime]:
    """The values of stored ``Recorded`` states (plain JSON), and the last one's timestamp."""
    values = [t.value.data for t in decode_tallies(b"[" + b",".join(states) + b"]")]
    return values, decode_last(states[-1]).timestamp.data


class FactsPage:
    """A ``RecordedPage`` over facts already built (a mapper other than plain JSON)."""

    __slots__ = ("_facts",)

    def __init__(self, facts: list[RecordedFact]) -> None:
        self._facts = facts

    def __len__(self) -> int:
        return len(self._facts)

    @property
    def last_id(self) -> int:
        return self._facts[-1].notification_id

    def mentions(self, text: bytes) -> bool:
        """Always True: the stored states are not at hand (their facts are)."""
        return True

    def facts(self) -> list[RecordedFact]:
        return self._facts

    def columns(self) -> PageColumns:
        facts = self._facts
        return PageColumns(
            [f.category for f in facts], [f.value for f in facts], [f.occurred_at for f in facts]
        )

    def by_category(self) -> dict[str, CategoryGroup]:
        groups: dict[str, CategoryGroup] = {}
        for f in self._facts:
            group = groups.get(f.category)
            if group is None:
                group = groups[f.category] = CategoryGroup([], [])
            group.values.append(f.value)
            if f.occurred_at is not None:
                group.occurred_at.append(f.occurred_at)
        return groups


def recorded_pages(
    app: Eventfold, after: int, last: int, page: int = PAGE
) -> Iterator[StatesPage | FactsPage]:
    """Pages (never empty) of the ``Recorded`` facts of notifications ``after+1 .. last``,
    in order: about ``page`` events each (the file store's pages end with a commit, so
    they may hold more)."""
    scan = getattr(app.recorder, "scan_parts", None)
    if plain_json(app.mapper) and scan is not None:
        for ids, parts in scan(after, last, RECORDED_TOPIC, page):
            yield StatesPage(ids, parts)
        return
    for notifications in notification_pages(app, after, last, [RECORDED_TOPIC], page):
        yield FactsPage([fact_of(app, n) for n in notifications])


def recorded_facts(app: Eventfold, after: int, last: int) -> Iterator[list[RecordedFact]]:
    """Pages of the facts of notifications ``after+1 .. last``, in order."""
    for page in recorded_pages(app, after, last):
        yield page.facts()


def recorded_facts_timed(
    app: Eventfold, after: int, last: int
) -> Iterator[list[tuple[RecordedFact, datetime]]]:
    """Pages of the facts of notifications ``after+1 .. last`` with each one's recorded
    time (the domain event's ``timestamp``: when ingest recorded it), in order."""
    scan = getattr(app.recorder, "scan_parts", None)
    if plain_json(app.mapper) and scan is not None:
        for ids, parts in scan(after, last, RECORDED_TOPIC):
            page = StatesPage(ids, parts)
            times = [t.timestamp.data for t in decode_lasts(page.json())]
            yield list(zip(page.facts(), times, strict=True))
        return
    for notifications in notification_pages(app, after, last, [RECORDED_TOPIC]):
        yield [(fact_of(app, n), recorded_time(app, n)) for n in notifications]


def recorded_time(app: Eventfold, notification: Any) -> datetime:
    """When the event of ``notification`` was recorded (its ``timestamp``)."""
    if plain_json(app.mapper):
        return decode_last(notification.state).timestamp.data
    event: Any = app.mapper.to_domain_event(notification)
    stamp: datetime = event.timestamp
    return stamp


def fact_of(app: Eventfold, notification: Any) -> RecordedFact:
    """The fact of one ``Category.Recorded`` notification."""
    return _fact_of(app, notification.id, notification)


def stored_fact(app: Eventfold, stored: Any) -> RecordedFact:
    """The fact of one stored ``Category.Recorded`` event read from its stream (its
    notification id is not known there: 0)."""
    return _fact_of(app, 0, stored)


def _fact_of(app: Eventfold, nid: int, stored: Any) -> RecordedFact:
    if plain_json(app.mapper):
        return _fact(nid, decode_state(stored.state))
    event: Any = app.mapper.to_domain_event(stored)
    return RecordedFact(
        nid,
        event.event_id,
        event.category,
        event.value,
        event.occurred_at,
        event.source,
        event.line,
        event.offset,
    )


def _fact(nid: int, s: Any) -> RecordedFact:
    when = s.occurred_at
    occurred_at = None if when is None else when.data
    return RecordedFact(
        nid, s.event_id, s.category, s.value.data, occurred_at, s.source, s.line, s.offset
    )
