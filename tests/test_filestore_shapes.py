"""``EFC4`` commits: each topic's states in a group, kept by field where they share a
shape; every state read back byte for byte, each column in its narrowest kind, and a
group that does not add up refused with its offset."""

from __future__ import annotations

import json
import random
import struct
from array import array
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from clihelpers import run
from eventfold.application.demo.sample import write_sample
from eventfold.infra.filestore.columns import Columns, encode_columns3
from eventfold.infra.filestore.format import (
    NAMES_HEAD,
    EventColumns,
    FormatError,
    decode_header,
    encode_commit3,
    new_names,
    pack_location,
    raw_body,
    tracking_of,
)
from eventfold.infra.filestore.scan import CommitScanner
from eventfold.infra.filestore.shapes import (
    HEX,
    INTEGER,
    PLAIN,
    SAME,
    SHAPED,
    TEXT,
    ByField,
    Fields,
    Group,
    Values,
    encode_group,
)
from storehelpers import factory_for, recorder_of, segment

# JSON scalars as a mapper writes them, and some that only look like numbers.
SCALARS = st.one_of(
    st.integers(-(10**20), 10**20).map(lambda n: str(n).encode()),
    st.sampled_from([b"-0", b"007", b"1.5", b"1e3", b"true", b"null", b'""', b'"a,b"']),
    st.text(max_size=12).map(lambda t: json.dumps(t).encode()),
    st.binary(min_size=1, max_size=6).map(lambda b: b'"' + b.hex().encode() + b'"'),
)


def _group(states: list[bytes]) -> Group:
    raw = b"".join(encode_group(states))
    group = Group(raw, 0, len(states))
    assert group.end == len(raw)
    return group


def _read_back(states: list[bytes]) -> Group:
    backwards = _group(states)  # each put back alone, until an eighth were asked for
    assert [backwards.state(r) for r in reversed(range(len(states)))] == states[::-1]
    group = _group(states)  # all put back at the first
    assert [group.state(r) for r in range(len(states))] == states
    for lo in range(len(states)):
        for hi in range(lo + 1, len(states) + 1):
            assert group.joined(lo, hi) == b",".join(states[lo:hi])
    return group


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), SCALARS), min_size=1, max_size=4),
    st.lists(st.lists(SCALARS, min_size=4, max_size=4), min_size=1, max_size=12),
)
def test_states_of_one_shape_are_read_back_exactly_by_state_and_by_field(
    keys: list[tuple[str, bytes]], rows: list[list[bytes]]
) -> None:
    names = list(dict.fromkeys(k for k, _ in keys))
    states = [
        ("{" + ",".join(f'"{k}":%s' for k in names) + "}").encode() % tuple(row[: len(names)])
        for row in rows
    ]
    group = _read_back(states)
    if len(states) > 1:
        assert group.shape is not None
        fields = Fields(group, 0, len(states))
        for hole in range(len(names)):
            assert fields.text(hole) == b",".join(row[hole] for row in rows)
        assert fields.joined() == b",".join(states)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=12))
def test_any_states_are_read_back_exactly(states: list[bytes]) -> None:
    _read_back(states)


@pytest.mark.parametrize(
    ("states", "shaped"),
    [
        ([b'{"k":1}', b'{"k":"x"}'], True),  # one shape, holes of any kind
        ([b'{"k":1}', b'{"j":1}'], False),  # another key
        ([b'{"k":1}', b'{"k":1,"m":2}'], False),  # another number of holes
        ([b'{"k":{"a":1}}', b'{"k":null}'], False),  # an object where null is
        ([b'{"k":[1,2]}', b'{"k":[1,3]}'], False),  # array items are not holes
    ],
)
def test_states_are_kept_by_field_only_when_they_share_a_shape(
    states: list[bytes], shaped: bool
) -> None:
    assert (_read_back(states).shape is not None) is shaped


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([b'"same"', b'"same"', b'"same"'], SAME),
        ([b"1", b"2", b"-7", b"0", b"999999999999999999", b"-999999999999999999"], INTEGER),
        ([b'"00ff"', b'"a1b2"', b'"0000"'], HEX),
        ([b'"00ff"', b'"a1b"', b'"0000"'], TEXT),  # an odd number of digits
        ([b'"00FF"', b'"a1b2"'], TEXT),  # capitals: hex() would write them small
        ([b'"00ff"', b'"a1b2c3"'], TEXT),  # of different widths
        ([b"1", b"-0"], TEXT),  # -0 is not what str(int) writes
        ([b"1", b"007"], TEXT),
        ([b"1", b"1000000000000000000"], TEXT),  # 19 digits: past the integer kind
        ([b"1", b"1.5"], TEXT),
    ],
)
def test_each_hole_takes_the_narrowest_kind_that_gives_it_back(
    values: list[bytes], kind: int
) -> None:
    states = [b'{"v":%s}' % v for v in values]
    raw = b"".join(encode_group(states))
    assert raw[0] == SHAPED
    (found,) = [c.kind for c in _read_back(states).columns]
    assert found == kind


def test_a_single_state_and_states_without_a_hole_stay_plain() -> None:
    assert b"".join(encode_group([b'{"a":1}']))[0] == PLAIN
    assert b"".join(encode_group([b"{}", b"{}"]))[0] == PLAIN
    assert b"".join(encode_group([b"[1,2]", b"[1,2]"]))[0] == PLAIN


def _shaped_raw() -> bytes:
    return b"".join(encode_group([b'{"n":1,"t":"ab"}', b'{"n":2,"t":"cde"}']))


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda raw: raw[:-1], "runs past the body"),
        (lambda raw: bytes([7]) + raw[1:], "unknown or incomplete event states"),
        (lambda raw: raw[:3], "incomplete event shape"),
    ],
)
def test_a_group_that_does_not_add_up_is_refused(cut: object, reason: str) -> None:
    raw = cut(_shaped_raw())  # type: ignore[operator]
    with pytest.raises(FormatError, match=reason):
        Group(raw, 0, 2)


def test_a_column_that_does_not_add_up_is_refused_with_its_offset() -> None:
    raw = bytearray(_shaped_raw())
    first = 1 + 2 + 4 * 3 + len(b'{"n":') + len(b',"t":') + len(b"}")
    assert raw[first] == INTEGER
    raw[first] = 9  # an unknown kind
    with pytest.raises(FormatError, match="unknown column kind 9") as e:
        Group(bytes(raw), 0, 2)
    assert e.value.offset == first
    raw[first] = TEXT  # the integers' planes read as lengths do not add up to the data
    with pytest.raises(FormatError, match="text column does not add up"):
        Group(bytes(raw), 0, 2)
    struct.pack_into("<I", raw, first + 1, 1)  # one byte cannot hold two lengths
    with pytest.raises(FormatError, match="incomplete text column"):
        Group(bytes(raw), 0, 2)
    raw[first] = INTEGER  # nor two integers
    with pytest.raises(FormatError, match="integer column does not add up"):
        Group(bytes(raw), 0, 2)
    raw[first] = HEX  # nor two hexadecimal values of one width
    with pytest.raises(FormatError, match="hex column does not add up"):
        Group(bytes(raw), 0, 2)


def test_the_events_of_each_topic_are_read_back_in_any_interleaving(tmp_path: Path) -> None:
    """Topics interleaved in commits (one shaped, one plain, one of a state alone): every
    event read by id, by page and by stream, and each topic's page in its parts."""
    rng = random.Random(4)
    factory = factory_for(tmp_path)
    recorder = recorder_of(factory)
    written: list[StoredEvent] = []
    versions: dict[UUID, int] = {}
    originators = [uuid4() for _ in range(7)]
    for _ in range(20):
        batch: list[StoredEvent] = []
        for _ in range(rng.choice([1, 2, 5, 40, 300])):
            oid = rng.choice(originators)
            versions[oid] = versions.get(oid, 0) + 1
            topic = rng.choice(["Shaped", "Shaped", "Plain", "Lone"])
            if topic == "Shaped":
                number, hexa = rng.randint(-5, 10**6), rng.randbytes(8).hex().encode()
                state = b'{"n":%d,"id":"%s","t":"x"}' % (number, hexa)
            elif topic == "Plain":
                state = rng.randbytes(rng.randint(0, 20))
            else:
                state = b'{"only":%d}' % len(batch)
            batch.append(StoredEvent(oid, versions[oid], topic, state))
        recorder.insert_events(batch)
        written += batch
    factory.close()
    factory = factory_for(tmp_path)
    recorder = recorder_of(factory)
    read = recorder.select_notifications(None, len(written) + 1)
    got = [(n.originator_id, n.originator_version, n.topic, n.state) for n in read]
    assert got == [(e.originator_id, e.originator_version, e.topic, e.state) for e in written]
    for topic in ("Shaped", "Plain", "Lone"):
        wanted = [(i + 1, e.state) for i, e in enumerate(written) if e.topic == topic]
        for start in (0, 1, 57, len(written) // 2):
            pages = list(recorder.scan_parts(start, len(written), topic, page=100))
            ids = [nid for page, _ in pages for nid in page]
            joined = [b",".join(map(_joined, parts)) for _, parts in pages]
            assert ids == [nid for nid, _ in wanted if nid > start]
            assert b",".join(joined) == b",".join(s for nid, s in wanted if nid > start)
            if topic == "Shaped" and start == 0:
                assert any(isinstance(p, Fields) for _, parts in pages for p in parts)
    factory.close()
    assert segment(tmp_path).read_bytes()[:4] == b"EFC4"


def _joined(part: bytes | Fields) -> bytes:
    return part if isinstance(part, bytes) else part.joined()


def test_an_efc4_body_whose_groups_do_not_fill_it_is_refused() -> None:
    events = EventColumns([UUID(int=1)] * 2, [1, 2], ["T", "T"], [b'{"a":1}', b'{"a":2}'])
    encoded = encode_columns3(events, {}, 0, 9, grouped=True)
    assert encoded is not None
    raw = b"".join(encoded[1])
    names = (0, [(1, UUID(int=1).bytes)], list)
    Columns(raw, 0, 2, 1, names, grouped=True)
    with pytest.raises(FormatError, match="trailing bytes"):
        Columns(raw + b"x", 0, 2, 1, names, grouped=True)


def test_a_group_that_does_not_add_up_in_a_stored_commit_is_named_by_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last commit of an ingest rewritten whole, checksums and all, with its first
    group's kind unknown: ``check`` reports the damage with the file and the offset."""
    store, source = tmp_path / "store", tmp_path / "source.jsonl"
    with source.open("wb") as f:
        write_sample(f, 2500)
    assert run(capsys, "ingest", "--store", str(store), str(source), "--quiet")[0] == 0
    seg = segment(store, log="eventfold_events")
    scanner = CommitScanner(str(seg.parent), pack_location(1, 0), 1)
    last = [commit.offset for commit in scanner][-1]
    data = seg.read_bytes()
    header = decode_header(data[last:])
    assert header.version == 4 and header.n_events > 1
    body = data[last + header.size : last + header.frame_len]
    names_end = NAMES_HEAD.size + NAMES_HEAD.unpack_from(body)[0]
    raw = bytes(raw_body(header, body))
    tracking, start = tracking_of(header, raw)
    known, new = new_names(body)
    columns = Columns(raw, start, header.n_events, header.first_id, (known, new, list), True)
    first_group = start + 2 + sum(2 + len(t) for t in columns.topics) + 13 * header.n_events
    assert raw[first_group] in (PLAIN, SHAPED)
    damaged = raw[start:first_group] + bytes([7]) + raw[first_group + 1 :]
    names, first, n = body[:names_end], header.first_id, header.n_events
    frame = encode_commit3(first, n, names, [damaged], tracking, grouped=True)
    seg.write_bytes(data[:last] + frame)
    code, out, err = run(capsys, "check", "--store", str(store))
    assert code == 3
    where = f"{seg}: byte offset {last + header.size + names_end}"
    assert where in (out + err).replace("\n", "")
    assert "unknown or incomplete event states" in (out + err).replace("\n", "")


def test_states_split_by_their_producer_are_taken_only_when_they_agree() -> None:
    """A producer's split that gives other states back (a middle one here, or too few)
    is set aside: the group is split from the states themselves, and reads back exact."""
    states = [b'{"n":%d,"s":"x"}' % n for n in range(9)]
    given = ByField((b'{"n":', b',"s":', b"}"), [Values.of([b"%d" % n for n in range(9)])])
    assert not given.holds(states)  # two holes in the shape, one column
    wrong = [b"%d" % n for n in range(9)]
    wrong[4] = b"40"
    given = ByField((b'{"n":', b',"s":"x"}'), [Values.of(wrong)])
    assert not given.holds(states)
    raw = b"".join(encode_group(states, given))
    group = Group(raw, 0, len(states))
    assert [group.state(r) for r in range(len(states))] == states
    right = ByField((b'{"n":', b',"s":"x"}'), [Values.integers(array("q", range(9)))])
    assert right.holds(states)
    assert b"".join(encode_group(states, right))[0] == SHAPED
