"""``sortedrows``: rows of big-endian words made and sorted by column give the bytes
that packing each row and sorting them gives."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventfold.infra.filestore import sortedrows

WORD = st.sampled_from([0, 1, 2**63, 2**64 - 1]) | st.integers(0, 3) | st.integers(0, 2**64 - 1)


@given(st.integers(1, 4).flatmap(lambda width: st.lists(st.tuples(*[WORD] * width))))
def test_rows_are_the_packed_rows_in_the_order_given_or_sorted(rows: list[tuple[int, ...]]) -> None:
    """Many ties in the first words (small values), so that both ways of sorting run."""
    if not rows:
        return
    width = len(rows[0])
    columns = [np.array(column, np.uint64) for column in zip(*rows, strict=True)]
    packed = [struct.pack(f">{width}Q", *row) for row in rows]
    assert sortedrows.rows(columns, sort=False) == b"".join(packed)
    assert sortedrows.rows(columns, sort=True) == b"".join(sorted(packed))


def test_words_of_reads_big_endian_rows_and_refuses_a_wrong_length() -> None:
    joined = struct.pack(">4Q", 1, 2**64 - 1, 3, 2**63)
    assert sortedrows.words_of(joined, 2, 2).tolist() == [[1, 2**64 - 1], [3, 2**63]]
    with pytest.raises(ValueError, match="not 3 rows of 2 words"):
        sortedrows.words_of(joined, 3, 2)
