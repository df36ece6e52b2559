"""The reading half: a reader process sees exactly the lines that in-process reading sees."""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path
from typing import Any

from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.ingest import reader_process as batches
from eventfold.application.ingest.reader_process import piped_batches
from eventfold.application.ingest.reading import ParsedBatch, read_batches
from eventfold.application.recorded import RecordedCodec


def columns(parsed: list[ParsedBatch]) -> dict[str, Any]:
    """Everything the batches say about the source, whatever the batch boundaries."""
    return {
        "ids": [i for b in parsed for i in b.ids],
        "categories": [c for b in parsed for c in b.categories],
        "values": [v for b in parsed for v in b.values],
        "isos": [w for b in parsed for w in b.isos],
        "numbers": [n for b in parsed for n in b.numbers],
        "offsets": [o for b in parsed for o in b.offsets],
        "keys": [k for b in parsed for k in b.keys],
        "invalid": [i for b in parsed for i in b.invalid],
        "read": sum(b.read for b in parsed),
        "end": (parsed[-1].position, parsed[-1].line, parsed[-1].pending),
        "continuous": all(
            (a.position, a.line) <= (b.position, b.line) for a, b in pairwise(parsed)
        ),
    }


def test_the_reader_process_starts_past_the_head_without_losing_a_line(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The writer reads the head while the child starts at the next line boundary."""
    monkeypatch.setattr(batches, "HEAD_BYTES", 50_000)  # the boundary falls mid-file
    path = tmp_path / "s.jsonl"
    with path.open("wb") as f:
        write_sample(f, 4000, rates=SampleRates(duplicates=0.02, conflicts=0.02, invalid=0.05))
        f.write(b"\n   \r\n")  # blank lines count as lines, not as events
        f.write(b'{"id": "tail", "category": "x", "va')  # an unterminated tail: pending
    assert path.stat().st_size > 4 * batches.HEAD_BYTES
    with path.open("rb") as stream:
        here = list(read_batches(stream, 0, 0, 300, RecordedCodec.plain(), "s", growing=True))
    fd = os.open(path, os.O_RDONLY)
    try:
        piped = list(piped_batches(fd, 0, 0, 300, "s"))
    finally:
        os.close(fd)
    assert len(piped) > 2
    assert columns(piped) == columns(here)
    assert columns(here)["end"][2] is not None  # the tail was left pending
