"""The dedup index's Bloom filter sets and reads, a batch at a time, the bits of its rule.

The rule (docs/FORMAT.md, the dedup filter) is written here once more, a key at a
time, as the reference: the filter files that stores already hold keep meaning
what they meant.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventfold.application.ingest.dedup import DedupIndex, verify_dedup
from eventfold.infra.filestore import bloom as bloom_module
from eventfold.infra.filestore.bloom import Bloom
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint
from eventfold.infra.filestore.runs import Run

M32 = 0xFFFFFFFF


def probes(nbits: int, key: bytes) -> list[int]:
    """A key's 4 bits in a filter of ``nbits``: ``a + i * b`` of its first 6 bytes."""
    a, b = struct.unpack_from("<IH", key)
    return [((a + i * b * 0x10001) & M32) * nbits >> 32 for i in range(4)]


def reference_bits(nbits: int, keys: list[bytes]) -> bytearray:
    """The filter's bits for ``keys``."""
    bits = bytearray(nbits // 8)
    for key in keys:
        for p in probes(nbits, key):
            bits[p >> 3] |= 1 << (p & 7)
    return bits


def reference_holds(bits: bytes | bytearray | mmap.mmap, key: bytes) -> bool:
    """Whether the filter ``bits`` has every bit of ``key``."""
    return all(bits[p >> 3] >> (p & 7) & 1 for p in probes(len(bits) * 8, key))


sizes = st.sampled_from([64, 8 * 1000, 1 << 20])
keys_lists = st.lists(st.binary(min_size=16, max_size=16), max_size=300) | st.lists(
    st.binary(min_size=6, max_size=30), max_size=100
)


@settings(max_examples=200, deadline=None)
@given(nbits=sizes, keys=keys_lists)
def test_keys_added_set_the_bits_of_the_rule(nbits: int, keys: list[bytes]) -> None:
    bloom = Bloom(nbits)
    bloom.add_many(iter(keys))
    assert bloom.bits == reference_bits(nbits, keys)


@settings(max_examples=200, deadline=None)
@given(nbits=sizes, added=keys_lists, asked=keys_lists)
def test_a_batch_is_looked_up_as_each_key_alone(
    nbits: int, added: list[bytes], asked: list[bytes]
) -> None:
    bloom = Bloom(nbits, reference_bits(nbits, added))
    expected = [reference_holds(bloom.bits, key) for key in asked + added]
    assert bloom.maybe_many(asked + added) == expected
    assert all(expected[len(asked) :])  # an added key is always found


def test_the_largest_filter_reaches_its_last_bit() -> None:
    """2^32 bits: a probe's product needs all 64 bits of its column."""
    nbits = 1 << 32
    keys = [b"\xff" * 16, b"\xff\xff\xff\xff" + b"\x00" * 12, b"\x00" * 16]
    bloom = Bloom(nbits)
    bloom.add_many(keys)
    bits = {p for key in keys for p in probes(nbits, key)}
    assert nbits - 1 in bits and 0 in bits
    assert all(bloom.bits[p >> 3] >> (p & 7) & 1 for p in bits)
    assert isinstance(bloom.bits, bytearray)
    assert len(bloom.bits) - bloom.bits.count(0) == len({p >> 3 for p in bits})
    assert bloom.maybe_many(keys) == [True, True, True]


def test_keys_are_added_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [i.to_bytes(4) * 4 for i in range(1000)]
    monkeypatch.setattr(bloom_module, "CHUNK", 7)
    bloom = Bloom(8 * 4096)
    bloom.add_many(keys)
    assert bloom.bits == reference_bits(8 * 4096, keys)


def test_check_names_the_first_entry_its_filter_misses(tmp_path: Path) -> None:
    """``check`` reads a run's entries a chunk at a time against the filter: the entry it
    names is the first one, counted over the whole run, that the filter does not hold."""
    count = 150_000
    keys = [hashlib.blake2b(i.to_bytes(4), digest_size=16).digest() for i in range(count)]
    index = DedupIndex(str(tmp_path))
    index.open(0)
    index.add_new(keys, list(range(1, count + 1)), [bytes(8)] * count)
    index.advance(count)
    index.flush(wait=True)
    index.close()
    assert verify_dedup(str(tmp_path)) == ("ok", [])

    checkpoint = str(tmp_path / "CHECKPOINT")
    doc, _ = read_checkpoint(checkpoint)
    assert doc is not None and len(doc["runs"]) == 1
    path = tmp_path / doc["bloom"]["name"]
    bits = bytearray(path.read_bytes())
    nbits = len(bits) * 8
    run = Run(str(tmp_path / doc["runs"][0]["name"]), count, int(doc["runs"][0]["crc"]))
    entries = list(run.entries())
    run.close()
    victim = entries[count - 1000]  # far past the first chunk
    p = probes(nbits, victim)[3]
    bits[p >> 3] &= ~(1 << (p & 7)) & 0xFF
    path.write_bytes(bits)
    doc["bloom"]["crc"] = zlib.crc32(bits)
    write_checkpoint(checkpoint, doc)

    first = next(i for i, entry in enumerate(entries) if not reference_holds(bits, entry))
    assert first > 0
    status, problems = verify_dedup(str(tmp_path))
    assert status == "damaged"
    assert problems == [(str(path), 0, f"bloom filter misses entry {first} of {run.name}")]
