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
from json.encoder import encode_basestring  # type: ignore[attr-defined]
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
        self,
        originator_id: UUID,
        version: int,
        event_id: str,
        category: str,
        value: Decimal,
        occurred_at: datetime | None,
        line: int,
        offset: int,
    ) -> StoredEvent:
        if not self.fast:
            event = Category.Recorded(  # type: ignore[call-arg]
                originator_id=originator_id,
                originator_version=version,
                timestamp=self.timestamp,
                event_id=event_id,
                category=category,
                value=value,
                occurred_at=occurred_at,
                source=self.source,
                line=line,
                offset=offset,
            )
            return self.mapper.to_stored_event(event)
        when = (
            "null"
            if occurred_at is None
            else '{"_type_":"datetime_iso","_data_":"' + occurred_at.isoformat() + '"}'
        )
        state = (
            f"{self._head}{encode_basestring(event_id)}"
            f',"category":{encode_basestring(category)}'
            f',"value":{{"_type_":"decimal_str","_data_":"{value}"}}'
            f',"occurred_at":{when}{self._source},"line":{line},"offset":{offset}}}'
        ).encode()
        if self.mapper.compressor:
            state = self.mapper.compressor.compress(state)
        if self.mapper.cipher:
            state = self.mapper.cipher.encrypt(state)
        return StoredEvent(originator_id, version, RECORDED_TOPIC, state)
