"""Compressed sources: recognised by their first bytes, read line-aligned, damage located.

``infra/compression.py`` through ``LineAlignedReader`` directly and through
``infra/sourcefile.open_source`` (files and standard input). Every expectation
about damage is checked against an independent decoder of the same bytes.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import sqlite3
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compressionhelpers import (
    COMPRESS,
    event_lines,
    repeated_gzip,
    skippable_frame,
    zstd,
)
from eventfold.infra import compression
from eventfold.infra.compression import (
    BZIP2,
    FORMATS,
    GZIP,
    OUT_BYTES,
    XZ,
    ZSTD,
    Damage,
    LineAlignedReader,
    compression_of,
    looks_like,
)
from eventfold.infra.lines import BOM, read_lines, skip_bom
from eventfold.infra.sourcefile import SourceError, open_source

LINES = event_lines(2000)  # about 90 kB: one step of the decompressors

# What every format's own decoder makes of a prefix of a stream (all it can decode).
DECODE: dict[str, Callable[[bytes], bytes]] = {
    GZIP: lambda data: zlib.decompressobj(wbits=31).decompress(data),
    BZIP2: lambda data: bz2.BZ2Decompressor().decompress(data),
    XZ: lambda data: lzma.LZMADecompressor().decompress(data),
    ZSTD: lambda data: bytes(zstd.ZstdDecompressor().decompress(data)),
}


def read_all(stream: Any) -> bytes:
    """Everything ``stream`` delivers, read as ``read_lines`` reads (``read(n)`` until b"")."""
    parts = []
    while chunk := stream.read(1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def reader(data: bytes, fmt: str) -> LineAlignedReader:
    return LineAlignedReader(io.BytesIO(data), fmt)  # type: ignore[arg-type,unused-ignore]


def whole_lines(decoded: bytes) -> bytes:
    return decoded[: decoded.rfind(b"\n") + 1]


def test_compression_is_recognised_by_the_first_bytes_whatever_the_name() -> None:
    for fmt, compress in COMPRESS.items():
        assert compression_of(compress(b'{"id": 1}\n')[:6]) == fmt
    assert compression_of(skippable_frame(b"an index") + COMPRESS[ZSTD](LINES)) == ZSTD
    assert compression_of(LINES) is None
    assert compression_of(b"") is None
    assert compression_of(b"\x1f") is None  # half a gzip magic


@pytest.mark.parametrize("in_bytes", [1, 5, 7, 4096, 1 << 16])
@pytest.mark.parametrize("fmt", FORMATS)
def test_members_and_zero_padding_are_read_wherever_the_reads_fall(
    fmt: str, in_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concatenated members (``cat a.gz b.gz``, several zstd frames), zero padding between
    and after them: the lines come out whole, whatever the size of the compressed reads
    (a member boundary across two reads, a magic number cut in two)."""
    monkeypatch.setattr(compression, "IN_BYTES", in_bytes)
    parts = [event_lines(150, start) for start in (0, 150, 300)]
    compress = COMPRESS[fmt]
    data = compress(parts[0]) + compress(parts[1]) + b"\0" * 8 + compress(parts[2]) + b"\0" * 600
    lined = reader(data, fmt)
    assert read_all(lined) == b"".join(parts)
    assert lined.damage is None
    assert lined.compressed == len(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_compressed_file_has_no_lines_and_no_damage(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl.z"
    path.write_bytes(COMPRESS[fmt](b""))
    with open_source(str(path)) as source:
        assert (source.compression, read_all(source.stream), source.damage) == (fmt, b"", None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_cut_short_delivers_its_whole_lines_and_says_where(fmt: str, tmp_path: Path) -> None:
    lines = event_lines(12000)  # about 540 kB: several bzip2 and zstd blocks
    data = COMPRESS[fmt](lines)
    cut = data[: len(data) // 2]
    path = tmp_path / "cut.jsonl"
    path.write_bytes(cut)
    decoded = DECODE[fmt](cut)
    with open_source(str(path)) as source:
        assert (source.compression, source.regular, source.fd) == (fmt, True, None)
        assert source.size_on_disk() == len(cut)
        numbered = list(read_lines(source.stream))
        delivered = source.stream.tell()
        damage = source.damage
    expected = whole_lines(decoded)
    assert len(expected) > 100_000  # a meaningful prefix was readable
    assert lines.startswith(expected)
    assert b"".join(line.raw + b"\n" for line in numbered) == expected
    assert all(line.terminated for line in numbered)
    assert delivered == len(expected)
    assert damage == Damage(
        fmt,
        offset=len(cut),
        position=len(expected),
        lost=len(decoded) - len(expected),
        reason="the file ends before its compressed data does (it was cut short)",
    )
    assert 0 < damage.lost < 60  # part of one line, never delivered
    assert damage.describe() == (
        f"damaged {fmt} data near compressed byte {len(cut):,}: the file ends before its "
        f"compressed data does (it was cut short); read up to byte {len(expected):,} of the "
        f"uncompressed lines ({damage.lost:,} bytes of a cut line after it dropped)"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cut_anywhere_is_damage_and_never_delivers_part_of_a_line(fmt: str) -> None:
    lines = event_lines(30)
    data = COMPRESS[fmt](lines)
    for end in range(1, len(data)):
        lined = reader(data[:end], fmt)
        out = read_all(lined)
        assert lines.startswith(out) and out.endswith(b"\n") | (out == b""), end
        assert lined.damage is not None, end
        assert (lined.damage.offset, lined.damage.position) == (end, len(out)), end


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_corrupted_byte_is_damage(fmt: str) -> None:
    data = bytearray(COMPRESS[fmt](LINES))
    for at in (len(data) // 3, len(data) // 2, len(data) - 2):
        corrupted = data.copy()
        corrupted[at] ^= 0x55
        lined = reader(bytes(corrupted), fmt)
        out = read_all(lined)
        assert lined.damage is not None, at
        assert lined.damage.reason, at
        assert LINES.startswith(out) and lined.damage.position == len(out), at


def test_a_bad_gzip_checksum_is_named() -> None:
    data = bytearray(COMPRESS[GZIP](LINES))
    data[-8] ^= 1  # the CRC-32 in the trailer
    lined = reader(bytes(data), GZIP)
    read_all(lined)
    assert lined.damage is not None
    assert "incorrect data check" in lined.damage.reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_garbage_after_the_last_member_is_damage_after_every_line(fmt: str) -> None:
    data = COMPRESS[fmt](LINES)
    for after in (b"garbage\n", b"\0" * 100 + b"garbage", b"\x1f"):
        lined = reader(data + after, fmt)
        assert read_all(lined) == LINES
        damage = lined.damage
        assert damage is not None
        assert (damage.position, damage.lost, damage.offset) == (
            len(LINES),
            0,
            len(data + after),
        )
        assert damage.reason in (
            f"bytes that are not {fmt} data follow the compressed data",
            "the file ends before its compressed data does (it was cut short)",  # b"\x1f"
        )


def test_a_file_holding_only_a_magic_number_was_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "magic.gz"
    path.write_bytes(b"\x1f\x8b")
    with open_source(str(path)) as source:
        assert read_all(source.stream) == b""
        assert source.damage is not None
        assert "cut short" in source.damage.reason


def test_a_zstd_skippable_frame_first_and_between_frames(tmp_path: Path) -> None:
    """The seekable format leads or ends with skippable frames; they hold no lines."""
    second = event_lines(100, 5000)
    path = tmp_path / "seekable.jsonl.zst"
    path.write_bytes(
        skippable_frame(b"an index")
        + COMPRESS[ZSTD](LINES)
        + skippable_frame(b"\0\n\0")
        + COMPRESS[ZSTD](second)
    )
    with open_source(str(path)) as source:
        assert source.compression == ZSTD
        assert read_all(source.stream) == LINES + second
        assert source.damage is None


def test_a_highly_compressible_stream_is_read_in_bounded_steps_and_memory() -> None:
    """200 MB of one repeated line in a 0.6 MB gzip member, and in a zstd frame: each
    read returns at most about ``OUT_BYTES`` and the line after it, and memory stays a
    few steps' worth (measured by allocation, not time)."""
    line = b'{"id": "same", "category": "c", "value": 1}\n'
    block = line * ((1 << 20) // len(line) + 1)
    times = 200
    zstd_stream = zstd.ZstdCompressor()
    frame = b"".join(bytes(zstd_stream.compress(block)) for _ in range(times))
    frame += bytes(zstd_stream.flush())
    for fmt, data in ((GZIP, repeated_gzip(block, times)), (ZSTD, frame)):
        assert len(data) < len(block) * times // 300
        tracemalloc.start()
        try:
            lined = reader(data, fmt)
            total = largest = 0
            while chunk := lined.read():
                total += len(chunk)
                largest = max(largest, len(chunk))
                del chunk
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert lined.damage is None
        assert total == len(block) * times
        assert largest <= OUT_BYTES + len(line), fmt
        assert peak < 8 * OUT_BYTES, (fmt, peak)


@pytest.mark.parametrize("fmt", [GZIP, XZ, ZSTD])
def test_a_line_longer_than_a_step_inside_compressed_data(fmt: str, tmp_path: Path) -> None:
    """A line of 3 MiB (more than ``OUT_BYTES``) is passed on, unaligned, not held whole;
    read as lines it is one line (or one overlong line under a smaller limit)."""
    long = b'{"id": "long", "category": "c", "note": "' + b"x" * (3 << 20) + b'", "value": 1}'
    path = tmp_path / "long.jsonl"
    first = event_lines(10)
    path.write_bytes(COMPRESS[fmt](first + long + b"\n" + LINES))
    with open_source(str(path)) as source:
        lines = list(read_lines(source.stream, max_line=4 << 20))
    assert [line.raw for line in lines] == [
        *first.splitlines(),
        long,
        *LINES.splitlines(),
    ]
    with open_source(str(path)) as source:
        lines = list(read_lines(source.stream, max_line=1 << 20))
    overlong = [line for line in lines if line.overlong is not None]
    assert [(line.overlong, line.raw[:10]) for line in overlong] == [(len(long), long[:10])]
    assert len(lines) == 10 + 1 + LINES.count(b"\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_byte_order_mark_at_the_start_of_compressed_data_is_skipped(
    fmt: str, tmp_path: Path
) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(COMPRESS[fmt](BOM + LINES))
    with open_source(str(path)) as source:
        assert skip_bom(source.stream, 0) == len(BOM)
        lines = list(read_lines(source.stream, offset=len(BOM)))
    assert [line.raw for line in lines] == LINES.splitlines()
    assert lines[0].offset == len(BOM)


def test_the_reader_peeks_without_consuming_and_tells_what_it_delivered() -> None:
    lined = reader(COMPRESS[XZ](b"first\nsecond\nlast, unterminated"), XZ)
    assert lined.peek(3) == b"fir"
    assert lined.peek(0) == b"first\nsecond\n"  # the whole lines decoded so far
    assert (lined.read(4), lined.tell()) == (b"firs", 4)
    assert lined.read() == b"t\nsecond\n"
    assert lined.read() == b"last, unterminated"  # delivered at a clean end
    assert (lined.read(), lined.tell(), lined.damage) == (b"", 31, None)


def archive_cases() -> dict[str, tuple[bytes, str]]:
    """Real files of each kind that is plainly not JSON Lines, made cheaply."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("events.jsonl")
        info.size = len(LINES)
        archive.addfile(info, io.BytesIO(LINES))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("events.jsonl", LINES)
    empty_zip = io.BytesIO()
    zipfile.ZipFile(empty_zip, "w").close()
    return {
        "tar": (tar.getvalue(), "a tar archive"),
        "zip": (zipped.getvalue(), "a ZIP archive"),
        "empty zip": (empty_zip.getvalue(), "an empty ZIP archive"),
        "nul": (LINES[:1000] + b"\0" + LINES, "binary data (a NUL byte at offset 1,000)"),
    }


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "a 7-Zip archive"),
        (b"Rar!\x1a\x07\x01\x00", "a RAR archive"),
        (b"\x04\x22\x4d\x18\x64\x40", "LZ4 data (a compression eventfold does not read)"),
        (b"\x1f\x9d\x90", "compress (.Z) data (a compression eventfold does not read)"),
        (b"LZIP\x01", "lzip data (a compression eventfold does not read)"),
        (b"\xff\x06\x00\x00sNaPpY", "Snappy data (a compression eventfold does not read)"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"PAR1\x15\x04", "a Parquet file"),
        (b"\x7fELF\x02\x01\x01", "an executable"),
        (b'{"id": "PK\\u0003\\u0004"}\n', None),
        (b"", None),
    ],
)
def test_looks_like_names_known_formats(head: bytes, what: str | None) -> None:
    assert looks_like(head) == what


def test_plain_archives_databases_and_binary_data_are_refused(tmp_path: Path) -> None:
    database = tmp_path / "events.db"
    with sqlite3.connect(database) as connection:
        connection.execute("create table events (line text)")
    connection.close()
    cases = {**archive_cases(), "sqlite": (database.read_bytes(), "an SQLite database")}
    for name, (data, what) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        with pytest.raises(SourceError) as refused:
            open_source(str(path))
        assert str(refused.value).startswith(f"{path}: looks like {what}"), name
        assert str(refused.value).endswith("not JSON Lines; nothing was read from it"), name


@pytest.mark.parametrize("fmt", FORMATS)
def test_compressed_archives_and_binary_data_are_refused(fmt: str, tmp_path: Path) -> None:
    for name, (data, what) in archive_cases().items():
        path = tmp_path / f"{name}.{fmt}"
        path.write_bytes(COMPRESS[fmt](data))
        with pytest.raises(SourceError) as refused:
            open_source(str(path))
        message = str(refused.value)
        what = what.replace("at offset", "at uncompressed offset")
        assert message == (
            f"{path}: {fmt} data that looks like {what} once uncompressed, "
            "not JSON Lines; nothing was read from it"
        )


def test_compressed_standard_input_is_read_uncompressed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(COMPRESS[GZIP](LINES)))

    monkeypatch.setattr(sys, "stdin", Stdin())
    with open_source("-") as source:
        assert (source.compression, source.regular, source.size_on_disk()) == (GZIP, False, None)
        assert read_all(source.stream) == LINES
        assert source.damage is None


def test_compressed_standard_input_through_a_pipe() -> None:
    """A real pipe (a child process): damage is found in a stream too."""
    script = (
        "import json, sys\n"
        "from eventfold.infra.sourcefile import open_source\n"
        "with open_source('-') as source:\n"
        "    data = source.stream.read()\n"
        "    while more := source.stream.read():\n"
        "        data += more\n"
        "    damage = source.damage\n"
        "print(json.dumps([source.compression, source.regular, len(data),"
        " damage and damage.reason]))\n"
    )
    data = COMPRESS[XZ](LINES)
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=data[:-20],
        capture_output=True,
        check=True,
    )
    fmt, regular, length, reason = json.loads(done.stdout)
    assert (fmt, regular, reason) == (
        XZ,
        False,
        "the file ends before its compressed data does (it was cut short)",
    )
    assert length == len(whole_lines(DECODE[XZ](data[:-20])))
