"""Hostile sources: the end of a source is only its checked end, memory stays bounded,
binary data and empty evidence are refused. Each test is named as the rule it enforces."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventfold.application.app import open_store
from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest import reader_process as batches
from eventfold.infra import lines as lines_module
from eventfold.infra.lines import OverlongLine, line_blocks
from ingesthelpers import agreed_totals, ingest_json, reference_totals, store_totals
from processes import HANG, armed, eventfold, wait_until

# -- the end of a source -----------------------------------------------------------


def test_a_reader_killed_mid_run_fails_the_run_and_keeps_what_was_committed(
    tmp_path: Path,
) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    with source.open("wb") as f:
        write_sample(f, 40_000)  # over 1 MiB: read by a reader process
    done = subprocess.run(
        eventfold("ingest", str(source), "--store", str(store), "--json"),
        env=armed("reader.after-batch", 5),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 2, done.stdout
    assert "failpoint reader.after-batch@5 reached" in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("eventfold: read failed: ") and "killed by SIGKILL" in line
    assert done.stdout == ""
    app = open_store(str(store))
    try:
        from eventfold.domain.model import Source

        position: int = app.repository.get(Source.create_id(str(source.resolve()))).position
        assert 0 < position < source.stat().st_size
        prefix = tmp_path / "prefix.jsonl"
        prefix.write_bytes(source.read_bytes()[:position])
        assert store_totals(app) == reference_totals(prefix)  # exactly what was committed
    finally:
        app.close()
    code, _doc, err = ingest_json(source, store)  # resumes, and reaches the end
    assert code == 0, err
    agreed_totals(source, store)


class _Pipe(io.RawIOBase):
    """A stream that gives ``data`` and then fails (or ends)."""

    def __init__(self, data: bytes, error: Exception | None) -> None:
        self._data, self._error = io.BytesIO(data), error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        if not chunk and self._error is not None:
            raise self._error
        buffer[: len(chunk)] = chunk
        return len(chunk)


def frames(*payloads: bytes, end: int | None = None) -> bytes:
    data = b"".join(batches.FRAME.pack(len(p)) + p for p in payloads)
    if end is not None:
        data += batches.FRAME.pack(batches.END) + batches.FRAME.pack(end)
    return data


@pytest.mark.parametrize(
    ("data", "error", "problem"),
    [
        (frames(b"a", b"b", end=2), None, None),
        (frames(b"a", b"b"), None, "no end of input"),
        (frames(b"a", b"b", end=3), None, "does not match"),
        (frames(b"a") + batches.FRAME.pack(10) + b"abc", None, "cut short"),
        (frames(b"a", b"b")[:-1], None, "cut short"),
        (frames(b"a") + b"\x01\x00", None, "cut short"),
        (frames(b"a"), OSError(5, "Input/output error"), "reading its output failed"),
    ],
)
def test_only_the_readers_checked_end_of_input_ends_a_source(
    data: bytes, error: Exception | None, problem: str | None
) -> None:
    ahead = batches.ReadAhead(io.BufferedReader(_Pipe(data, error)), 1 << 20)
    got = list(ahead)
    assert got[:1] == [b"a"]
    if problem is None:
        assert ahead.problem is None and got == [b"a", b"b"]
    else:
        assert ahead.problem is not None and problem in ahead.problem


# -- lines over the limit, in bounded memory ------------------------------------


@given(
    data=st.lists(st.sampled_from([b"a", b"bb", b"\n", b"xxxxxxxxxxxx", b"\r"]), max_size=60).map(
        b"".join
    ),
    chunk=st.integers(1, 9),
    limit=st.integers(1, 8),
)
def test_lines_over_the_limit_are_reported_by_length_whatever_the_chunking(
    data: bytes, chunk: int, limit: int
) -> None:
    expected: list[tuple[bytes | int, bool]] = []
    pieces = data.split(b"\n")
    for i, piece in enumerate(pieces):
        terminated = i < len(pieces) - 1
        if not terminated and not piece:
            break
        expected.append((piece if len(piece) <= limit else len(piece), terminated))
    got: list[tuple[bytes | int, bool]] = []
    original = lines_module.READ_CHUNK
    lines_module.READ_CHUNK = chunk
    try:
        for block, terminated in line_blocks(io.BytesIO(data), limit):
            if isinstance(block, OverlongLine):
                assert data.count(block.head) and len(block.head) <= lines_module.HEAD_BYTES
                got.append((block.length, terminated))
            else:
                got.extend((raw, terminated) for raw in block)
    finally:
        lines_module.READ_CHUNK = original
    assert got == expected


def peak_rss_mb(args: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``args``; its result and the peak RSS of it and its children (``resource``)."""
    probe = (
        "import json, resource, subprocess, sys\n"
        "done = subprocess.run(json.loads(sys.argv[1]), stdin=sys.stdin, capture_output=True,"
        " text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=True,
        **kwargs,
    )
    code, out, err, peak = json.loads(done.stdout)
    return subprocess.CompletedProcess(args, code, out, err), peak


LONG = 300 << 20  # a line of 300 MiB


def write_long_line(f: Any) -> None:
    f.write(b'{"id":"long","category":"x","value":1,"pad":"')
    block = b"x" * (1 << 20)
    for _ in range(LONG >> 20):
        f.write(block)
    f.write(b'"}\n{"id":"after","category":"x","value":2}\n')


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_line_over_the_limit_is_quarantined_by_offset_and_length_in_bounded_memory(
    tmp_path: Path, kind: str
) -> None:
    source = tmp_path / "s.jsonl"
    writer: threading.Thread | None = None
    if kind == "file":
        with source.open("wb") as f:
            f.write(b'{"id":"before","category":"x","value":3}\n')
            write_long_line(f)
    else:
        os.mkfifo(source)

        def feed() -> None:
            with source.open("wb") as f:
                f.write(b'{"id":"before","category":"x","value":3}\n')
                write_long_line(f)

        writer = threading.Thread(target=feed)
        writer.start()
    done, peak = peak_rss_mb(
        eventfold("ingest", str(source), "--store", str(tmp_path / "st"), "--json")
    )
    if writer is not None:
        writer.join(HANG)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["ingested"], doc["invalid"]) == (2, 1)
    (bad,) = doc["invalid_lines"]
    assert (bad["line"], bad["offset"]) == (2, 41)
    assert f"line of {LONG + 47:,} bytes is longer than the limit" in bad["reason"]
    assert bad["raw"].startswith('{"id":"long"') and len(bad["raw"]) < 2000
    assert peak < 200, f"peak RSS {peak:.0f} MB for a {LONG >> 20} MiB line"


@pytest.mark.parametrize("command", ["ingest", "verify", "reconcile"])
def test_binary_data_is_refused_before_anything_is_read(tmp_path: Path, command: str) -> None:
    store = tmp_path / "store"
    (tmp_path / "ok.jsonl").write_text('{"id":"a","category":"x","value":1}\n')
    assert (
        subprocess.run(
            eventfold("ingest", str(tmp_path / "ok.jsonl"), "--store", str(store)),
            capture_output=True,
            timeout=HANG,
        ).returncode
        == 0
    )
    source = ["--source", "/dev/zero"] if command == "verify" else ["/dev/zero"]
    done = subprocess.run(
        eventfold(command, *source, "--store", str(store)),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "/dev/zero: looks like binary data (a NUL byte at "
        "offset 0), not JSON Lines; nothing was read from it"
    )
    assert done.stderr.count("\n") == 1


def test_a_fifo_is_read_as_a_stream_and_waiting_for_its_writer_is_said(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        eventfold("ingest", str(fifo), "--store", str(tmp_path / "st"), "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    first = wait_until(child.stderr.readline, "the note that ingest waits for a writer")
    assert "a FIFO with no writer yet: waiting for one" in first
    with fifo.open("w") as f:
        f.write('{"id":"a","category":"x","value":1}\n{"id":"b","category":"x","value":2}\n')
    out, err = child.communicate(timeout=HANG)
    assert child.returncode == 0, err
    doc = json.loads(out)
    assert doc["ingested"] == 2 and doc["source"] == str(fifo.resolve())


# -- reading commands and empty evidence --------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["snapshots"],
        ["check"],
        ["catchup"],
        ["rebuild"],
        ["verify", "--expected-checksum", "0" * 64],
        ["reconcile", "SOURCE"],
    ],
)
def test_a_command_creates_nothing_in_a_directory_that_is_not_a_store(
    tmp_path: Path, command: list[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text('{"id": "a", "category": "x", "value": 1}\n')
    for directory in (tmp_path / "empty", tmp_path / "other"):
        directory.mkdir()
        if directory.name == "other":
            (directory / "settings.conf").write_text("not a store\n")
        before = sorted(p.name for p in directory.rglob("*"))
        args = [str(source) if a == "SOURCE" else a for a in command]
        done = subprocess.run(
            eventfold(*args, "--store", str(directory)),
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
        assert done.returncode == 2, done.stdout
        assert "not an eventfold store" in done.stderr or "not a file store" in done.stderr
        assert sorted(p.name for p in directory.rglob("*")) == before


def test_verify_refuses_evidence_without_a_valid_event(tmp_path: Path) -> None:
    store = tmp_path / "store"
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "category": "x", "value": 1}\n')
    assert ingest_json(good, store)[0] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n[1]\n")
    empty = tmp_path / "expected.json"
    empty.write_text('{"categories": {}}')
    for args in (["--source", str(bad)], ["--expected", str(empty)], ["--expected", "/dev/zero"]):
        done = subprocess.run(
            eventfold("verify", "--store", str(store), *args),
            capture_output=True,
            text=True,
            timeout=HANG,
        )
        assert done.returncode == 2, (args, done.stdout)
        assert "MATCH" not in done.stdout and done.stderr.count("\n") == 1
    assert (
        "no valid event in it (2 lines read, 2 invalid)"
        in subprocess.run(
            eventfold("verify", "--store", str(store), "--source", str(bad)),
            capture_output=True,
            text=True,
            timeout=HANG,
        ).stderr
    )


def test_verify_says_when_the_store_holds_no_events(tmp_path: Path) -> None:
    store, source = tmp_path / "store", tmp_path / "s.jsonl"
    source.write_text("not json\n")
    assert ingest_json(source, store)[0] == 0  # a store, with no Recorded event in it
    expected = tmp_path / "expected.json"
    expected.write_text('{"categories": {"x": {"count": 1, "total": "1"}}}')
    done = subprocess.run(
        eventfold("verify", "--store", str(store), "--expected", str(expected)),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 1 and "the store holds no events" in done.stdout
