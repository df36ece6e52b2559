"""The worked examples of docs/FORMAT.md, byte for byte."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from eventfold.infra.compression import zstd_module
from eventfold.infra.filestore.columns import encode_columns, encode_columns3
from eventfold.infra.filestore.format import (
    EventColumns,
    FormatError,
    decode_body,
    decode_header,
    encode_commit,
    encode_commit2,
    encode_commit3,
    encode_event,
)
from storehelpers import factory_for, recorder_of, segment


def test_worked_example_bytes(store_path: Path) -> None:
    factory = factory_for(store_path, compression="none")
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


def test_worked_example_columns_bytes() -> None:
    data = encode_commit2(1, 1, _columns(), None)  # an EFC2 commit, as earlier versions wrote
    assert data[0x00:0x04] == b"EFC2"
    flags, codec, reserved, body_len, n_events, first_id, raw_len = struct.unpack_from(
        "<HBBIIQI", data, 0x04
    )
    assert (flags, codec, reserved, n_events, first_id, raw_len) == (0, 1, 0, 1, 1, 55)
    assert len(data) == 36 + body_len
    assert struct.unpack_from("<I", data, 0x1C)[0] == zlib.crc32(data[0x24:])
    assert struct.unpack_from("<I", data, 0x20)[0] == zlib.crc32(data[0x00:0x20])
    raw = zstd_module().decompress(data[0x24:])
    assert struct.unpack_from("<HI", raw, 0x00) == (1, 1)  # topics, originators
    assert struct.unpack_from("<H", raw, 0x06)[0] == 9
    assert raw[0x08:0x11] == b"Deposited"
    assert struct.unpack_from("<BH", raw, 0x11) == (1, 16)
    assert raw[0x14:0x24] == UUID(int=1).bytes
    assert raw[0x24] == 0  # topic_col: topic 0
    assert struct.unpack_from("<IqI", raw, 0x25) == (0, 1, 2)  # name 0, version 1, end 2
    assert raw[0x35:0x37] == b"{}"
    assert len(raw) == 55


def _efc3(version: int, lookup: dict[tuple[int, bytes], int], known: int) -> bytes:
    """The ``EFC3`` commit of one event of ``UUID(int=1)``, as versions before ``EFC4``
    wrote it, in a segment whose dictionary names ``known`` originators."""
    events = EventColumns([UUID(int=1)], [version], ["Deposited"], [b"{}"])
    encoded = encode_columns3(events, lookup, known, 9)
    assert encoded is not None
    return encode_commit3(version, 1, encoded[0], encoded[1], None)


def test_worked_example_compressed_bytes() -> None:
    first = _efc3(1, {}, 0)
    data = first + _efc3(2, {(1, UUID(int=1).bytes): 0}, 1)
    assert data[0x00:0x04] == b"EFC3"
    flags, codec, reserved, body_len, n_events, first_id, raw_len = struct.unpack_from(
        "<HBBIIQI", data, 0x04
    )
    # 32 bytes of columns that zstd would not make smaller: stored as they are (codec 0)
    assert (flags, codec, reserved, n_events, first_id, raw_len) == (0, 0, 0, 1, 1, 32)
    assert body_len == 16 + 19 + 32
    assert struct.unpack_from("<I", data, 0x1C)[0] == zlib.crc32(data[0x24 : 0x24 + body_len])
    assert struct.unpack_from("<I", data, 0x20)[0] == zlib.crc32(data[0x00:0x20])
    assert struct.unpack_from("<III", data, 0x24) == (19, 0, 1)  # names_len, known, new
    names_crc = zlib.crc32(data[0x34:0x47], zlib.crc32(data[0x24:0x30]))
    assert struct.unpack_from("<I", data, 0x30)[0] == names_crc
    assert struct.unpack_from("<BH", data, 0x34) == (1, 16)
    assert data[0x37:0x47] == UUID(int=1).bytes
    raw = data[0x47 : 0x24 + body_len]
    assert struct.unpack_from("<HH", raw, 0x00) == (1, 9)  # topics, the first one's length
    assert raw[0x04:0x0D] == b"Deposited"
    assert raw[0x0D] == 0  # topic_col: topic 0
    assert raw[0x0E:0x12] == bytes([0, 0, 0, 0])  # name_planes: originator 0
    assert raw[0x12:0x1A] == bytes([1, 0, 0, 0, 0, 0, 0, 0])  # version_planes: 1
    assert raw[0x1A:0x1E] == bytes([2, 0, 0, 0])  # length_planes: 2
    assert raw[0x1E:0x20] == b"{}"
    assert len(raw) == 32
    # The second commit names the same originator by its number: no new names.
    second = data[0x24 + body_len :]
    assert second[0x00:0x04] == b"EFC3"
    assert struct.unpack_from("<III", second, 0x24) == (0, 1, 0)
    assert len(first) == 0x24 + body_len
    events = [event for _, event in decode_body(decode_header(first), first[0x24:])[1]]
    assert [(e.id, e.originator_id, e.state) for e in events] == [(1, UUID(int=1), b"{}")]


def test_worked_example_by_field_bytes(store_path: Path) -> None:
    factory = factory_for(store_path)  # FILESTORE_COMPRESSION=zstd, the default
    recorder = recorder_of(factory)
    recorder.insert_events(
        [
            StoredEvent(UUID(int=1), 1, "Deposited", b'{"amount":5}'),
            StoredEvent(UUID(int=1), 2, "Deposited", b'{"amount":7}'),
        ]
    )
    factory.close()
    data = segment(store_path).read_bytes()
    assert data[0x00:0x04] == b"EFC4"
    flags, codec, _, body_len, n_events, first_id, raw_len = struct.unpack_from(
        "<HBBIIQI", data, 0x04
    )
    assert (flags, codec, n_events, first_id, raw_len) == (0, 1, 2, 1, 82)
    assert len(data) == 0x24 + body_len
    assert struct.unpack_from("<III", data, 0x24) == (19, 0, 1)  # names_len, known, new
    assert struct.unpack_from("<BH", data, 0x34) == (1, 16)
    assert data[0x37:0x47] == UUID(int=1).bytes
    raw = zstd_module().decompress(data[0x47:])
    assert len(raw) == 82
    assert struct.unpack_from("<HH", raw, 0x00) == (1, 9)  # topics, the first one's length
    assert raw[0x04:0x0D] == b"Deposited"
    assert raw[0x0D:0x0F] == bytes([0, 0])  # topic_col: topic 0, topic 0
    assert raw[0x0F:0x17] == bytes(8)  # name_planes: originator 0, originator 0
    assert raw[0x17:0x27] == bytes([1, 2]) + bytes(14)  # version_planes: 1, 2
    assert raw[0x27] == 1  # the topic's group: shaped
    assert struct.unpack_from("<HII", raw, 0x28) == (1, 10, 1)  # 1 hole; pieces of 10, 1
    assert raw[0x32:0x3D] == b'{"amount":}'  # the pieces
    assert struct.unpack_from("<BI", raw, 0x3D) == (2, 16)  # an integer column, 16 bytes
    assert raw[0x42:0x52] == bytes([5, 2]) + bytes(14)  # 5, then 7 - 5, by planes


def test_a_body_that_does_not_shrink_is_stored_as_it_is() -> None:
    noise = random.Random(1).randbytes(32)  # zstd cannot make a record of noise smaller
    oid = UUID(int=random.Random(2).getrandbits(128))
    frame = encode_commit2(5, 1, _columns([oid], noise), None)
    header = decode_header(frame)
    assert (header.version, header.codec, header.body_len) == (2, 0, header.raw_len)
    [(_, event)] = decode_body(header, frame[36:])[1]
    assert (event.id, event.state) == (5, noise)


def _columns(oids: list[UUID | str] | None = None, state: bytes = b"{}") -> list[bytes]:
    topic = "T" if oids else "Deposited"
    columns = encode_columns(EventColumns(oids or [UUID(int=1)], [1], [topic], [state]))
    assert columns is not None
    return columns


def test_tracking_record_round_trips() -> None:
    frame = encode_commit(7, [encode_event(7, "a-string-id", 3, "t", b"s")], ("upstream", 41))
    header = decode_header(frame)
    tracking, events = decode_body(header, frame[32:])
    assert tracking == ("upstream", 41)
    [(_, event)] = events
    assert (event.id, event.originator_id, event.originator_version) == (7, "a-string-id", 3)


def test_columns_that_do_not_add_up_are_refused_with_their_offset() -> None:
    columns = _columns()
    ends = columns[-2]
    assert ends == struct.pack("<I", 2)
    columns[-2] = struct.pack("<I", 1)  # the state would end before the states do
    frame = encode_commit2(1, 1, columns, None)
    with pytest.raises(FormatError, match=r"event columns do not add up \(at byte 36 of"):
        decode_body(decode_header(frame), frame[36:])
