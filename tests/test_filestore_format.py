"""The worked example of docs/FORMAT.md, byte for byte."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from eventfold.infra.filestore.format import decode_body, decode_header, encode_commit, encode_event
from storehelpers import factory_for, recorder_of, segment


def test_worked_example_bytes(store_path: Path) -> None:
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    recorder.insert_events([StoredEvent(UUID(int=1), 1, "Deposited", b"{}")])
    factory.close()
    data = segment(store_path).read_bytes()
    assert len(data) == 92
    assert data[0x00:0x04] == b"EFC1"
    assert struct.unpack_from("<HHIIQ", data, 0x04) == (0, 0, 60, 1, 1)
    assert struct.unpack_from("<I", data, 0x18)[0] == zlib.crc32(data[0x20:0x5C])
    assert struct.unpack_from("<I", data, 0x1C)[0] == zlib.crc32(data[0x00:0x1C])
    assert struct.unpack_from("<I", data, 0x20)[0] == 52
    assert struct.unpack_from("<I", data, 0x24)[0] == zlib.crc32(data[0x28:0x5C])
    assert struct.unpack_from("<QqBHHI", data, 0x28) == (1, 1, 1, 16, 9, 2)
    assert data[0x41:0x51] == UUID(int=1).bytes
    assert data[0x51:0x5A] == b"Deposited"
    assert data[0x5A:0x5C] == b"{}"
    assert data == encode_commit(1, [encode_event(1, UUID(int=1), 1, "Deposited", b"{}")], None)


def test_tracking_record_round_trips() -> None:
    frame = encode_commit(7, [encode_event(7, "a-string-id", 3, "t", b"s")], ("upstream", 41))
    header = decode_header(frame)
    tracking, events = decode_body(header, frame[32:])
    assert tracking == ("upstream", 41)
    [(_, event)] = events
    assert (event.id, event.originator_id, event.originator_version) == (7, "a-string-id", 3)
