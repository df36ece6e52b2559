"""A batch's ``Recorded`` states by field, made from the batch's columns.

The file store keeps the states of a commit that share one shape by field
(``infra/filestore/shapes.py``). Found by the store itself, that split costs a
regular expression over every state; ingest knows each field already (the batch's
ids, categories, values, timestamps and positions), so it hands the store the
split ready-made, each field joined in one call. The shape, and the values every
state of a batch shares (its timestamp and source), are read from the batch's
first state. The split must give back every state exactly (tests hold it to that
for any ids, categories, values and timestamps); the store checks their number and
some of them (``ByField.holds``), and splits the states itself if they disagree.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import repeat
from json.encoder import encode_basestring
from operator import add
from typing import TypeVar, cast

from eventfold.application.ingest.reading import ParsedBatch
from eventfold.application.states import recorded_shapes
from eventfold.infra.filestore.shapes import HOLE, ByField, Values

T = TypeVar("T")


def recorded_by_field(parsed: ParsedBatch, kept: Sequence[int]) -> ByField | None:
    """The ``Recorded`` states of the batch's events ``kept`` (their indexes, in order),
    by field; None when they are not of one shape that ``recorded_shapes`` knows."""
    if not kept:
        return None
    states = parsed.states
    first = HOLE.split(states[kept[0]])
    shape = tuple(first[0::2])
    holes = recorded_shapes().get(shape)
    m = len(kept)
    every = m == len(parsed.ids)  # the indexes only go up: all of them, in order

    def pick(column: Sequence[T]) -> Sequence[T]:
        return column if every else list(map(column.__getitem__, kept))

    isos = list(pick(parsed.isos))
    if holes is None or isos.count(None) != (m if holes.occurred_at is None else 0):
        return None
    columns = [Values.same(value) for value in first[1::2]]  # the values all states share
    columns[holes.event_id] = _strings(pick(parsed.ids))
    columns[holes.category] = _strings(pick(parsed.categories))
    texts = parsed.texts
    columns[holes.value] = _strings(pick(texts) if texts else list(map(str, pick(parsed.values))))
    if holes.occurred_at is not None:
        columns[holes.occurred_at] = _strings(cast("list[str]", isos))  # none is None
    columns[holes.line] = Values.integers(array("q", pick(parsed.numbers)))
    columns[holes.offset] = Values.integers(array("q", pick(parsed.offsets)))
    return ByField(shape, columns)


def _strings(texts: Sequence[str]) -> Values:
    """Strings as ``encode_basestring`` writes them: one join when none needs escaping."""
    whole = "".join(texts)
    if whole.isascii() and whole.isprintable() and '"' not in whole and "\\" not in whole:
        lengths = array("I", map(add, map(len, texts), repeat(2)))
        return Values(('"' + '","'.join(texts) + '"').encode(), lengths)
    encoded = {text: encode_basestring(text).encode() for text in set(texts)}
    return Values.of(list(map(encoded.__getitem__, texts)))
