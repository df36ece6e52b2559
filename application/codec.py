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
NIL = UUID(int=0)  # the state does not depend on the originator


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
        if not self.fast:
            assert self.mapper is not None
            return self.mapper.to_stored_event(self._domain_event(event, line, offset)).state
        iso = event.occurred_iso
        if iso is None and event.occurred_at is not None:
            iso = event.occurred_at.isoformat()
        when = "null" if iso is None else '{"_type_":"datetime_iso","_data_":"' + iso + '"}'
        category = self._categories.get(event.category)
        if category is None:
            category = self._categories[event.category] = (
                ',"category":' + encode_basestring(event.category)
                + ',"value":{"_type_":"decimal_str","_data_":"'
            )  # fmt: skip
        state = (
            f"{self._head}{encode_basestring(event.event_id)}{category}{event.value!s}"
            f'"}},"occurred_at":{when}{self._source},"line":{line},"offset":{offset}}}'
        ).encode()
        return self.finish(state) if self.mapper is not None else state

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
