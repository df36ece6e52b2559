"""The dedup index keeps 6 bytes of each key: ids that share them are still told apart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clihelpers import run, write_rows
from eventfold.application.ingest import dedup, known, reading
from eventfold.application.ingest.dedup import NO_DIGEST, DedupIndex, id_key
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint

SHARED = b"\x5a" * 6  # the short key forced on the colliding ids


def colliding(ids: set[str]) -> Callable[[str], bytes]:
    """``id_key`` with the first 6 bytes of ``ids``' keys made equal (the rest kept)."""

    def key(event_id: str) -> bytes:
        full = id_key(event_id)
        return SHARED + full[6:] if event_id in ids else full

    return key


def ingest(capsys: pytest.CaptureFixture[str], source: Path, store: Path) -> dict[str, int]:
    code, out, err = run(capsys, "ingest", str(source), "--store", str(store), "--json")
    assert code == 0, err
    doc = json.loads(out)
    return {k: doc[k] for k in ("ingested", "duplicates", "conflicts")}


def test_ids_sharing_a_short_key_are_neither_duplicates_nor_conflicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = colliding({"a", "b", "c"})
    for module in (reading, known):
        monkeypatch.setattr(module, "id_key", key)
    store = tmp_path / "store"
    # "a" is persisted in a run (each ingest flushes the index when it ends).
    first = write_rows(tmp_path / "1.jsonl", [("a", "rent", "12.50"), ("x", "rent", "1")])
    assert ingest(capsys, first, store) == {"ingested": 2, "duplicates": 0, "conflicts": 0}
    # "b": the same content as "a", so even its digest agrees; "c": other content.
    second = write_rows(tmp_path / "2.jsonl", [("b", "rent", "12.50"), ("c", "food", "3")])
    assert ingest(capsys, second, store) == {"ingested": 2, "duplicates": 0, "conflicts": 0}
    # Now three ids share the short key in the runs; each is still found exactly.
    third = write_rows(
        tmp_path / "3.jsonl",
        [("a", "rent", "12.50"), ("b", "rent", "12.5"), ("c", "food", "4"), ("d", "rent", "1")],
    )
    assert ingest(capsys, third, store) == {"ingested": 1, "duplicates": 2, "conflicts": 1}


def test_an_id_of_another_partition_answers_for_its_own_key_only(tmp_path: Path) -> None:
    index = DedupIndex(str(tmp_path / "dedup"))
    index.open(0)
    a, b = SHARED + b"\x01" * 10, SHARED + b"\x02" * 10
    index.add(a, 0, b"digest-a")  # first seen in another partition's category
    index.add(SHARED + b"\x03" * 10, 7, b"digest-c")
    index.flush()
    assert index.runs and not index.mem
    assert index.find(a) == (0, NO_DIGEST)
    assert index.find(b, b"digest-a", lambda nid: None) is None
    assert index.find(SHARED + b"\x03" * 10, b"digest-c") == (7, b"digest-c")
    # Another content: only the store can tell a conflict from another id's entry.
    assert index.find(SHARED + b"\x03" * 10, b"other", lambda nid: None) is None
    c = SHARED + b"\x03" * 10
    assert index.find(c, b"other", lambda nid: c if nid == 7 else None) == (7, b"digest-c")
    index.close()


def test_an_older_dedup_format_is_rebuilt_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    source = write_rows(tmp_path / "1.jsonl", [("a", "rent", "1"), ("b", "rent", "2")])
    assert ingest(capsys, source, store)["ingested"] == 2
    checkpoint = str(store / "dedup" / "CHECKPOINT")
    doc, _ = read_checkpoint(checkpoint)
    assert doc is not None
    write_checkpoint(checkpoint, {**doc, "format": 2})  # 16-byte keys: unusable now
    rows = [("e", "rent", "5"), ("a", "rent", "1"), ("b", "rent", "2")]
    again = write_rows(tmp_path / "2.jsonl", rows)
    code, out, err = run(capsys, "ingest", str(again), "--store", str(store), "--json")
    assert code == 0, err
    assert json.loads(out)["duplicates"] == 2
    assert "dedup index rebuilt from the store: of an older format" in err
    doc, _ = read_checkpoint(checkpoint)
    assert doc is not None and doc["format"] == dedup.FORMAT


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=16, max_size=16),
            st.sampled_from([0, 1, 2**63 - 1, 2**64 - 1]) | st.integers(0, 2**64 - 1),
            st.binary(min_size=8, max_size=8),
        ),
        max_size=40,
    )
)
def test_run_entries_are_packed_as_the_format_says(ids: list[tuple[bytes, int, bytes]]) -> None:
    """Each entry is ``short:8 check:u64be id:u64be``: the key's first 6 bytes and two
    zero bytes; the digest XOR the key's last 8 (the key's last 8 alone for an id of
    another partition, id 0); the id."""
    keys, nids, digests = (
        (list(column) for column in zip(*ids, strict=True)) if ids else ([], [], [])
    )
    expected = [
        key[:6]
        + bytes(2)
        + (int.from_bytes(key[8:]) ^ (0 if nid == 0 else int.from_bytes(digest))).to_bytes(8)
        + nid.to_bytes(8)
        for key, nid, digest in ids
    ]
    assert dedup.sorted_entries(keys, nids, digests) == b"".join(sorted(expected))
    with pytest.raises(ValueError, match="16 bytes"):
        dedup.sorted_entries([bytes(15)], [1], [bytes(8)])
    with pytest.raises(ValueError, match="digests of 8"):
        dedup.sorted_entries([bytes(16)], [0], [b""])
