"""Bulk encoding of ``Category.Recorded`` events, exactly as the library's mapper would.

The library's per-event path (command method, event object, ``vars()``,
``JSONEncoder`` with a ``default`` hook per decimal and datetime) costs tens
of microseconds. Ingest writes millions of one event type whose JSON shape is
fixed, so ``RecordedCodec`` formats that JSON directly. It is used only when
the application's mapper is the library's default JSON transcoding (any
compressor or cipher is still applied); otherwise it builds the event object
and calls the mapper. A test holds both paths to the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from hashlib import blake2b
from json.encoder import encode_basestring
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from eventfold.domain.model import Category
from eventfold.infra.source import SourceEvent

RECORDED_TOPIC = get_topic(Category.Recorded)
NIL = UUID(int=0)  # the state does not depend on the originator
_CONTENT_HASH = blake2b(digest_size=8, person=b"eventfold-body")


def _category_part(category: str) -> str:
    return (',"category":' + encode_basestring(category)
            + ',"value":{"_type_":"decimal_str","_data_":"')  # fmt: skip


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
