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

    ``prepare`` fixes the event timestamp and source name shared by a batch;
    ``encode`` then costs a few string joins per event.
    """

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        self.fast = _default_json(mapper)
        self._categories: dict[str, str] = {}
        self.prepare(datetime.now().astimezone(), "")

    def prepare(self, timestamp: datetime, source: str) -> None:
        self.timestamp, self.source = timestamp, source
        self._head = (
            '{"timestamp":{"_type_":"datetime_iso","_data_":"'
            + timestamp.isoformat()
            + '"},"event_id":'
        )
        self._source = ',"source":' + encode_basestring(source)

    def encode(
        self, originator_id: UUID, version: int, event: SourceEvent, line: int, offset: int
    ) -> StoredEvent:
        """The stored ``Category.Recorded`` event for one source event."""
        if not self.fast:
            domain_event = Category.Recorded(  # type: ignore[call-arg]
                originator_id=originator_id,
                originator_version=version,
                timestamp=self.timestamp,
                event_id=event.event_id,
                category=event.category,
                value=event.value,
                occurred_at=event.occurred_at,
                source=self.source,
                line=line,
                offset=offset,
            )
            return self.mapper.to_stored_event(domain_event)
        iso = event.occurred_iso
        if iso is None and event.occurred_at is not None:
            iso = event.occurred_at.isoformat()
        when = "null" if iso is None else '{"_type_":"datetime_iso","_data_":"' + iso + '"}'
        category = self._categories.get(event.category)
        if category is None:
            category = self._categories[event.category] = encode_basestring(event.category)
        state = (
            f"{self._head}{encode_basestring(event.event_id)},\"category\":{category}"
            f',"value":{{"_type_":"decimal_str","_data_":"{event.value!s}"}}'
            f',"occurred_at":{when}{self._source},"line":{line},"offset":{offset}}}'
        ).encode()
        if self.mapper.compressor:
            state = self.mapper.compressor.compress(state)
        if self.mapper.cipher:
            state = self.mapper.cipher.encrypt(state)
        return StoredEvent(originator_id, version, RECORDED_TOPIC, state)
