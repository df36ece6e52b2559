"""Each source is looked at before anything is read: mostly invalid first lines refuse it."""

from __future__ import annotations

from pathlib import Path

import pytest

from compressionhelpers import COMPRESS, event_lines
from eventfold.application.sources import (
    SAMPLE_LINES,
    SAMPLE_MINIMUM,
    MostlyInvalidError,
    SourceList,
    check_source,
    resolve_sources,
)
from eventfold.infra.compression import GZIP, ZSTD
from eventfold.infra.lines import BOM
from eventfold.infra.sourcefile import SourceError

BAD = b"this is not an event\n"


def mixed(tmp_path: Path, name: str, pattern: str) -> Path:
    """A source whose lines follow ``pattern``: ``v`` a valid event, ``x`` an invalid line,
    ``_`` a blank line."""
    valid = iter(event_lines(pattern.count("v")).splitlines(keepends=True))
    other = {"x": BAD, "_": b"   \n"}
    path = tmp_path / name
    path.write_bytes(b"".join(next(valid) if kind == "v" else other[kind] for kind in pattern))
    return path


def test_a_file_mostly_invalid_is_refused_naming_file_count_and_first_bad_line(
    tmp_path: Path,
) -> None:
    pattern = "v" * 10 + "_" + ("x" * 6 + "v" * 4) * 6 + "x" * 24 + "v" * 6  # 60 of 100 invalid
    path = mixed(tmp_path, "mostly-bad.jsonl", pattern)
    with pytest.raises(MostlyInvalidError) as refused:
        check_source(str(path))
    assert str(refused.value) == (
        f"{path}: 60 of its first 100 lines are not valid events (line 12: not valid JSON "
        "(JSON is malformed: invalid character (byte 4))); is it the right file? "
        "--force reads it anyway"
    )
    assert refused.value.exit_code == 2
    check_source(str(path), force=True)


def test_half_invalid_is_accepted_more_than_half_is_not(tmp_path: Path) -> None:
    check_source(str(mixed(tmp_path, "half.jsonl", "xv" * 50)))
    with pytest.raises(MostlyInvalidError, match="51 of its first 100 lines"):
        check_source(str(mixed(tmp_path, "more.jsonl", "x" * 51 + "v" * 49)))


def test_too_few_lines_to_judge_are_accepted(tmp_path: Path) -> None:
    below = mixed(tmp_path, "short.jsonl", "x" * (SAMPLE_MINIMUM - 1) + "_" * 30)
    check_source(str(below))
    at = mixed(tmp_path, "enough.jsonl", "x" * SAMPLE_MINIMUM)
    with pytest.raises(MostlyInvalidError, match=f"{SAMPLE_MINIMUM} of its first {SAMPLE_MINIMUM}"):
        check_source(str(at))


def test_only_the_first_lines_are_looked_at(tmp_path: Path) -> None:
    path = mixed(tmp_path, "good-then-bad.jsonl", "v" * SAMPLE_LINES + "x" * SAMPLE_LINES)
    check_source(str(path))
    path = mixed(tmp_path, "bad-then-good.jsonl", "x" * SAMPLE_LINES + "v" * SAMPLE_LINES)
    with pytest.raises(MostlyInvalidError, match="1,000 of its first 1,000 lines"):
        check_source(str(path))


def test_a_leading_byte_order_mark_is_not_an_invalid_line(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(BOM + event_lines(30))
    check_source(str(path))


def test_compressed_files_are_judged_by_their_uncompressed_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(COMPRESS[GZIP](BOM + event_lines(50)))
    check_source(str(good))
    bad = tmp_path / "bad.jsonl.zst"
    bad.write_bytes(COMPRESS[ZSTD](BAD * 50))
    with pytest.raises(MostlyInvalidError, match="50 of its first 50 lines"):
        check_source(str(bad))


def test_resolve_sources_expands_then_checks_every_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "part2.jsonl").write_bytes(event_lines(30))
    (logs / "part10.jsonl.gz").write_bytes(COMPRESS[GZIP](event_lines(30)))
    assert resolve_sources(SourceList([str(logs), "-"])) == [
        str(logs / "part2.jsonl"),
        str(logs / "part10.jsonl.gz"),
        "-",
    ]
    (logs / "part3.jsonl").write_bytes(BAD * 30)
    with pytest.raises(MostlyInvalidError, match=r"part3\.jsonl: 30 of its first 30 lines"):
        resolve_sources(SourceList([str(logs)]))
    assert len(resolve_sources(SourceList([str(logs)], force=True))) == 3
    (logs / "part4.jsonl").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(SourceError, match=r"part4\.jsonl: looks like an empty ZIP archive"):
        resolve_sources(SourceList([str(logs)], force=True))
