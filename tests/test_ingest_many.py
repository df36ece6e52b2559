"""`eventfold ingest` over many sources, end to end through the command line.

Many files in one run (arguments, directories, patterns, ``--sources-from``,
standard input), in name or modification-time order; every compression
(gzip with several members, bzip2, xz, zstd); a compressed file cut short and
completed later; rotated files under a new name (plain, and compressed with
more lines); files added or grown between runs; a file rewritten among good
ones; unusable files refused before anything is recorded; the terminal
summary at 80 and 120 columns; and SIGKILL at failpoints across the files of
one run. Totals are checked against ``verify --source`` over the same files
and against a fold computed here, independently of the product.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import json
import os
import re
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError

from clihelpers import run
from compressionhelpers import COMPRESS
from eventfold.application.app import open_store
from eventfold.domain.model import Source
from eventfold.infra.compression import BZIP2, GZIP, XZ, ZSTD
from ingesthelpers import store_totals
from processes import eventfold, run_until_failpoint

Totals = dict[str, tuple[int, Decimal]]
CATEGORIES = ("rent", "food", "fun")


def lines(start: int, count: int, *, value: str = "") -> bytes:
    """``count`` valid events with ids ``e<start>``.. (values exact decimals, as text)."""
    return b"".join(
        b'{"id": "e%d", "category": "%s", "value": %s}\n'
        % (i, CATEGORIES[i % 3].encode(), (value or f"{i}.{i % 100:02d}").encode())
        for i in range(start, start + count)
    )


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def fold(*chunks: bytes) -> Totals:
    """Totals by the rules, computed here: the first occurrence of an id wins."""
    seen: set[str] = set()
    totals: dict[str, tuple[int, Decimal]] = {}
    for chunk in chunks:
        for line in chunk.splitlines():
            event = json.loads(line, parse_float=Decimal, parse_int=Decimal)
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            count, total = totals.get(event["category"], (0, Decimal(0)))
            totals[event["category"]] = (count + 1, total + event["value"])
    return totals


def ingest(
    capsys: pytest.CaptureFixture[str], store: Path, *args: str
) -> tuple[int, dict[str, Any], str]:
    """``eventfold ingest ARGS --json``: exit code, JSON document, standard error."""
    code, out, err = run(capsys, "ingest", *args, "--store", str(store), "--json")
    assert out, err
    return code, json.loads(out), err


def rebuilt(capsys: pytest.CaptureFixture[str], store: Path) -> Totals:
    """The store's totals, as ``rebuild --json`` folds them."""
    code, out, err = run(capsys, "rebuild", "--store", str(store), "--json")
    assert code == 0, err
    categories = json.loads(out)["categories"]
    return {name: (c["count"], Decimal(c["total"])) for name, c in categories.items()}


def verified(capsys: pytest.CaptureFixture[str], store: Path, *sources: Path | str) -> str:
    """``verify --source`` over ``sources``: its status (match or mismatch)."""
    args = [arg for source in sources for arg in ("--source", str(source))]
    code, out, err = run(capsys, "verify", "--store", str(store), *args, "--json")
    assert out, err
    status: str = json.loads(out)["status"]
    assert code == (0 if status == "match" else 1), err
    return status


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(f["source"]).name: f for f in doc["files"]}


def events_in_store(capsys: pytest.CaptureFixture[str], store: Path) -> int:
    code, out, err = run(capsys, "status", "--store", str(store), "--json")
    assert code == 0, err
    events: int = json.loads(out)["events"]
    return events


# -- compression ---------------------------------------------------------------


def test_every_compression_is_read_and_resumed_in_uncompressed_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    parts = {
        GZIP: (lines(0, 20), lines(20, 15)),  # two gzip members, as `cat a.gz b.gz` makes
        BZIP2: (lines(100, 30),),
        XZ: (lines(200, 25),),
        ZSTD: (lines(300, 40),),
    }
    names = {GZIP: "a.jsonl.gz", BZIP2: "b.jsonl.bz2", XZ: "c.jsonl.xz", ZSTD: "d.jsonl"}
    paths = [
        put(tmp_path / names[fmt], b"".join(COMPRESS[fmt](part) for part in data))
        for fmt, data in parts.items()
    ]
    code, doc, err = ingest(capsys, store, *map(str, paths), "--batch", "7")
    assert code == 0, err
    files = by_name(doc)
    for fmt, data in parts.items():
        whole = b"".join(data)
        assert files[names[fmt]]["compression"] == fmt  # by magic bytes, whatever the name
        assert files[names[fmt]]["read"] == whole.count(b"\n")
        assert files[names[fmt]]["position"] == len(whole)  # uncompressed bytes
        assert files[names[fmt]]["damage"] is None
    assert (doc["files_listed"], doc["read"], doc["ingested"]) == (4, 130, 130)
    everything = [b"".join(data) for data in parts.values()]
    assert rebuilt(capsys, store) == fold(*everything)

    # Each file grows by one more member or frame: only the new lines are read.
    appended = [lines(1000 + 100 * i, 6) for i in range(len(paths))]
    for fmt, path, more in zip(parts, paths, appended, strict=True):
        with path.open("ab") as f:
            f.write(COMPRESS[fmt](more))
    code, doc, err = ingest(capsys, store, *map(str, paths), "--batch", "7")
    assert code == 0, err
    for fmt, data in parts.items():
        grown = by_name(doc)[names[fmt]]
        assert grown["resumed_from"] == len(b"".join(data))
        assert (grown["read"], grown["ingested"], grown["duplicates"]) == (6, 6, 0)
    assert verified(capsys, store, *paths) == "match"
    assert rebuilt(capsys, store) == fold(*everything, *appended)


def test_a_gzip_file_cut_short_is_read_to_the_damage_and_the_rest_once_it_is_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    good = put(tmp_path / "good.jsonl", lines(0, 10))
    data = lines(100, 400)
    packed = gzip.compress(data)
    cut = put(tmp_path / "cut.jsonl.gz", packed[: len(packed) * 2 // 3])
    code, doc, err = ingest(capsys, store, str(cut), str(good), "--batch", "50")
    assert code == 2
    assert str(cut.resolve()) in err
    assert "damaged gzip data" in err
    assert (doc["files_damaged"], doc["files_refused"]) == (1, 0)
    damaged, fine = by_name(doc)["cut.jsonl.gz"], by_name(doc)["good.jsonl"]
    damage = damaged["damage"]
    assert set(damage) == {"compression", "offset", "position", "lost", "reason"}
    assert damage["compression"] == GZIP
    assert 0 < damage["offset"] <= len(packed) * 2 // 3
    position = damage["position"]
    assert 0 < position < len(data)
    assert data[position - 1 : position] == b"\n"  # whole lines only
    assert damaged["position"] == position
    assert damaged["ingested"] == data[:position].count(b"\n")
    assert fine["ingested"] == 10  # the other file was read all the same
    assert rebuilt(capsys, store) == fold(data[:position], lines(0, 10))

    code, alone, err = ingest(capsys, store, str(cut))  # one file: one file's document
    assert (code, "files" in alone, alone["compression"]) == (2, False, GZIP)
    assert (alone["read"], alone["resumed_from"], alone["damage"]) == (0, position, damage)
    assert str(cut.resolve()) in err

    cut.write_bytes(packed)  # the copy completed
    code, doc, err = ingest(capsys, store, str(cut), str(good), "--batch", "50")
    assert code == 0, err
    rest = by_name(doc)["cut.jsonl.gz"]
    assert rest["resumed_from"] == position
    assert (rest["read"], rest["duplicates"], rest["damage"]) == (
        data[position:].count(b"\n"),
        0,
        None,
    )
    assert by_name(doc)["good.jsonl"]["read"] == 0
    assert verified(capsys, store, cut, good) == "match"
    assert rebuilt(capsys, store) == fold(data, lines(0, 10))


# -- renamed and rotated files -------------------------------------------------


def test_a_renamed_file_and_a_rotated_compressed_file_continue_their_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    first = put(tmp_path / "events.jsonl", lines(0, 30))
    app = put(tmp_path / "app.jsonl", lines(100, 25))
    code, doc, err = ingest(capsys, store, str(first), str(app), "--batch", "8")
    assert (code, doc["ingested"]) == (0, 55), err

    renamed = first.rename(tmp_path / "events.jsonl.1")  # the same bytes under a new name
    rotated = put(tmp_path / "app.jsonl.1.gz", gzip.compress(lines(100, 25) + lines(200, 10)))
    app.unlink()
    code, doc, err = ingest(capsys, store, str(renamed), str(rotated), "--batch", "8")
    assert code == 0, err
    plain, packed = by_name(doc)["events.jsonl.1"], by_name(doc)["app.jsonl.1.gz"]
    assert plain["renamed_from"] == str(first.resolve())
    size = len(lines(0, 30))
    assert (plain["read"], plain["resumed_from"], plain["position"]) == (0, size, size)
    assert packed["renamed_from"] == str(app.resolve())
    assert packed["compression"] == GZIP
    assert packed["resumed_from"] == len(lines(100, 25))  # its first bytes are not read again
    assert (packed["read"], packed["ingested"], packed["duplicates"]) == (10, 10, 0)
    assert (doc["files_renamed"], doc["duplicates"]) == (2, 0)
    assert verified(capsys, store, renamed, rotated) == "match"
    assert rebuilt(capsys, store) == fold(lines(0, 30), lines(100, 25), lines(200, 10))

    # Named again, each resumes under its new name: nothing to read.
    code, doc, err = ingest(capsys, store, str(renamed), str(rotated))
    assert (code, doc["read"], doc["files_renamed"]) == (0, 0, 0), err


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_a_new_file_under_a_rotated_files_name_is_ingested_from_its_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    store = tmp_path / "store"
    current = put(tmp_path / "events.jsonl", lines(0, 30))
    code, doc, err = ingest(capsys, store, str(tmp_path), "--batch", "8")
    assert (code, doc["ingested"]) == (0, 30), err

    rotated = tmp_path / "events.jsonl.1"
    if mode == "create":
        current.rename(rotated)
    else:
        rotated.write_bytes(current.read_bytes())
    put(current, lines(500, 12))  # a new file under the old name (shorter, or not)
    code, doc, err = ingest(capsys, store, str(tmp_path), "--batch", "8")
    assert code == 0, err
    old, new = by_name(doc)["events.jsonl.1"], by_name(doc)["events.jsonl"]
    assert old["renamed_from"] == str(current.resolve()) and old["read"] == 0
    assert new["rotated_to"] == str(rotated.resolve())
    assert (new["read"], new["ingested"], new["duplicates"]) == (12, 12, 0)
    assert doc["refused"] == []
    assert rebuilt(capsys, store) == fold(lines(0, 30), lines(500, 12))

    code, doc, err = ingest(capsys, store, str(tmp_path))  # again: nothing new
    assert (code, doc["read"], doc["refused"]) == (0, 0, []), err


@pytest.mark.parametrize("order", ["name", "mtime"])
def test_a_numbered_rotation_moves_each_file_to_the_next_name_and_nothing_is_read_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], order: str
) -> None:
    """logrotate's default: events.jsonl -> .1, .1 -> .2.gz, .2.gz -> .3.gz, the oldest
    dropped once there are enough; every known name then holds another file's content."""
    logs, store = tmp_path / "logs", tmp_path / "store"
    logs.mkdir()
    chunks = [lines(100 * k, 100) for k in range(6)]  # chunks[0] is the oldest
    names = ["events.jsonl.2.gz", "events.jsonl.1", "events.jsonl"]

    def write(generation: int) -> None:
        """The files after ``generation`` rotations (the newest chunk is current)."""
        for path in logs.iterdir():
            path.unlink()
        for age, name in enumerate(reversed(names)):  # age 0: events.jsonl
            data = chunks[generation + 2 - age]
            put(logs / name, gzip.compress(data) if name.endswith(".gz") else data)
            os.utime(logs / name, (1_000_000 - age * 3600, 1_000_000 - age * 3600))

    write(0)
    code, doc, err = ingest(capsys, store, str(logs), "--order", order, "--batch", "16")
    assert (code, doc["ingested"]) == (0, 300), err
    names = ["events.jsonl.3.gz", *names]  # from now on, four names
    for generation in (1, 2, 3):  # the third drops the oldest file: every name is known
        write(generation)
        code, doc, err = ingest(capsys, store, str(logs), "--order", order, "--batch", "16")
        assert code == 0, err
        assert doc["refused"] == [] and doc["duplicates"] == 0
        files = by_name(doc)
        assert files["events.jsonl"]["ingested"] == 100  # only the new chunk is read
        assert files["events.jsonl"]["rotated_to"] == str((logs / "events.jsonl.1").resolve())
        for older, newer in itertools.pairwise(names):  # each continues the next
            assert files[older]["renamed_from"] == str((logs / newer).resolve())
            assert files[older]["read"] == 0
        assert rebuilt(capsys, store) == fold(*chunks[: generation + 3])


# -- directories, order, lists -------------------------------------------------


def test_a_directory_read_again_reads_only_new_files_and_what_grew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, logs = tmp_path / "store", tmp_path / "logs"
    logs.mkdir()
    put(logs / "part1.jsonl", lines(0, 12))
    grows = put(logs / "part2.jsonl", lines(100, 12))
    put(logs / "notes.txt", b"not a source: a directory leaves it out\n")
    code, doc, err = ingest(capsys, store, str(logs), "--batch", "5")
    assert (code, doc["files_listed"], doc["ingested"]) == (0, 2, 24), err

    with grows.open("ab") as f:
        f.write(lines(112, 7))
    put(logs / "part10.jsonl", lines(300, 9))
    put(logs / "part3.jsonl.gz", gzip.compress(lines(400, 4)))
    code, doc, err = ingest(capsys, store, str(logs), "--batch", "5")
    assert code == 0, err
    assert [Path(f["source"]).name for f in doc["files"]] == [
        "part1.jsonl",
        "part2.jsonl",
        "part3.jsonl.gz",
        "part10.jsonl",  # natural name order
    ]
    assert [f["read"] for f in doc["files"]] == [0, 7, 4, 9]
    assert by_name(doc)["part2.jsonl"]["resumed_from"] == len(lines(100, 12))
    assert (doc["read"], doc["ingested"], doc["duplicates"]) == (20, 20, 0)
    assert verified(capsys, store, logs) == "match"


@pytest.mark.parametrize(("order", "winner"), [("name", "part2"), ("mtime", "part10")])
def test_the_order_decides_which_occurrence_of_an_id_stands(
    order: str, winner: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    contents = {
        "part2": lines(0, 5) + b'{"id": "shared", "category": "rent", "value": 2.50}\n',
        "part10": b'{"id": "shared", "category": "rent", "value": 10.75}\n' + lines(10, 5),
    }
    for name, data in contents.items():
        put(logs / f"{name}.jsonl", data)
    os.utime(logs / "part2.jsonl", (2_000_000_000, 2_000_000_000))  # part10 is the older
    os.utime(logs / "part10.jsonl", (1_000_000_000, 1_000_000_000))
    store = tmp_path / "store"
    code, doc, err = ingest(capsys, store, str(logs), "--order", order)
    assert code == 0, err
    loser = "part10" if winner == "part2" else "part2"
    assert [Path(f["source"]).stem for f in doc["files"]] == [winner, loser]
    assert by_name(doc)[f"{loser}.jsonl"]["conflicts"] == 1
    assert by_name(doc)[f"{winner}.jsonl"]["conflicts"] == 0
    (seen,) = by_name(doc)[f"{loser}.jsonl"]["conflicting_events"]
    assert (seen["event_id"], Path(seen["first"]["source"]).stem) == ("shared", winner)
    assert rebuilt(capsys, store) == fold(contents[winner], contents[loser])
    assert rebuilt(capsys, store) != fold(contents[loser], contents[winner])  # it matters


@pytest.mark.parametrize("separator", ["\n", "\0"])
def test_sources_from_a_list_of_lines_or_nul_separated_names(
    separator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["b c.jsonl", "a.jsonl.xz", "d.jsonl"]  # a space in a name; the list's order
    put(tmp_path / names[0], lines(0, 6))
    put(tmp_path / names[1], COMPRESS[XZ](lines(10, 4)))
    put(tmp_path / names[2], lines(20, 3))
    listing = put(tmp_path / "list", "".join(f"{tmp_path / n}{separator}" for n in names).encode())
    store = tmp_path / "store"
    code, doc, err = ingest(capsys, store, "--sources-from", str(listing))
    assert code == 0, err
    assert [Path(f["source"]).name for f in doc["files"]] == names
    assert [f["read"] for f in doc["files"]] == [6, 4, 3]
    assert verified(capsys, store, *(tmp_path / n for n in names)) == "match"


@pytest.mark.parametrize("compressed", [False, True])
def test_standard_input_plain_or_compressed_among_files(
    compressed: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    piped = lines(0, 12) + lines(100, 3)
    data = bz2.compress(piped) if compressed else piped

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr(sys, "stdin", Stdin())
    store = tmp_path / "store"
    first = put(tmp_path / "first.jsonl", lines(100, 5))  # e100..e102 are read here first
    code, doc, err = ingest(capsys, store, str(first), "-", "--batch", "4")
    assert code == 0, err
    standard = doc["files"][1]
    assert standard["source"] == "-"
    assert standard["compression"] == (BZIP2 if compressed else None)
    assert (standard["read"], standard["ingested"], standard["duplicates"]) == (15, 12, 3)
    assert rebuilt(capsys, store) == fold(lines(100, 5), piped)


# -- refusals ------------------------------------------------------------------


def _tar(path: Path, inside: Path) -> bytes:
    with tarfile.open(path, "w") as tar:
        tar.add(inside, arcname=inside.name)
    return path.read_bytes()


def test_unusable_files_among_good_ones_are_refused_before_anything_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = put(tmp_path / "good.jsonl", lines(0, 30))
    tarred = _tar(tmp_path / "events.tar", good)
    with zipfile.ZipFile(tmp_path / "events.zip", "w") as archive:
        archive.write(good, good.name)
    unusable = [
        put(tmp_path / "image.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
        put(tmp_path / "raw.jsonl", bytes(range(256)) * 8),
        tmp_path / "events.tar",
        tmp_path / "events.zip",
        put(tmp_path / "events.tar.gz", gzip.compress(tarred)),
    ]
    store = tmp_path / "store"
    for bad in unusable:
        code, out, err = run(capsys, "ingest", str(good), str(bad), "--store", str(store))
        assert (code, out) == (2, ""), err
        assert str(bad) in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert not store.exists()  # not even created

    invalid = put(tmp_path / "mostly-invalid.jsonl", b"not json\n" * 25 + lines(500, 5))
    code, out, err = run(capsys, "ingest", str(good), str(invalid), "--store", str(store))
    assert (code, out) == (2, ""), err
    assert "--force" in err and str(invalid) in err
    assert not store.exists()

    code, doc, err = ingest(capsys, store, str(good))  # an existing store is left as it is
    assert code == 0, err
    events = events_in_store(capsys, store)
    more = put(tmp_path / "more.jsonl", lines(600, 5))
    for bad in (unusable[0], invalid):
        code, out, err = run(capsys, "ingest", str(more), str(bad), "--store", str(store))
        assert code == 2, err
        assert events_in_store(capsys, store) == events

    code, doc, err = ingest(capsys, store, str(more), str(invalid), "--force")
    assert code == 0, err
    assert (by_name(doc)["mostly-invalid.jsonl"]["invalid"], doc["ingested"]) == (25, 10)


def test_a_rewritten_file_is_refused_the_others_are_ingested_and_rescan_takes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    a = put(tmp_path / "a.jsonl", lines(0, 10))
    b = put(tmp_path / "b.jsonl", lines(100, 10))
    c = put(tmp_path / "c.jsonl", lines(200, 10))
    code, doc, err = ingest(capsys, store, str(a), str(b), str(c))
    assert (code, doc["ingested"]) == (0, 30), err

    rewritten = lines(100, 5, value="7.77") + lines(150, 8)  # other values, then new ids
    b.write_bytes(rewritten)
    with a.open("ab") as f:
        f.write(lines(10, 4))
    with c.open("ab") as f:
        f.write(lines(210, 3))
    code, doc, err = ingest(capsys, store, str(a), str(b), str(c))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert str(b.resolve()) in line and "rewritten" in line and "--rescan" in line
    (refused,) = doc["refused"]
    assert refused["source"] == str(b.resolve())
    assert "rewritten" in refused["reason"]
    assert (doc["files_listed"], doc["files_ingested"], doc["files_refused"]) == (3, 2, 1)
    assert [f["read"] for f in doc["files"]] == [4, 3]
    before = fold(lines(0, 10), lines(100, 10), lines(200, 10), lines(10, 4), lines(210, 3))
    assert rebuilt(capsys, store) == before

    code, doc, err = ingest(capsys, store, str(a), str(b), str(c), "--rescan")
    assert code == 0, err
    again = by_name(doc)["b.jsonl"]
    assert again["rescanned"] is True
    assert (again["read"], again["ingested"], again["conflicts"]) == (13, 8, 5)
    assert (by_name(doc)["a.jsonl"]["read"], by_name(doc)["c.jsonl"]["read"]) == (0, 0)
    everything = (lines(0, 14), lines(100, 10), lines(200, 13), rewritten)
    assert rebuilt(capsys, store) == fold(*everything)


# -- the terminal summary ------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
def test_the_summary_names_each_file_and_the_totals_with_numbers_whole(
    width: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "store"
    big = put(tmp_path / "big-source-with-a-long-name-2026-11-30.jsonl", lines(0, 1234))
    put(tmp_path / "old.jsonl", lines(5000, 20))
    with big.open("ab") as f:
        f.write(lines(0, 3, value="1.00"))  # three conflicts
    assert run(capsys, "ingest", str(tmp_path / "old.jsonl"), "--store", str(store))[0] == 0
    rotated = (tmp_path / "old.jsonl").rename(tmp_path / "old.jsonl.1")
    packed = put(tmp_path / "packed.jsonl.gz", gzip.compress(lines(9000, 1100)))
    monkeypatch.setenv("COLUMNS", str(width))
    args = ["ingest", str(big), str(rotated), str(packed), "--store", str(store)]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= width
    assert "ingest: 3 files in total" in out
    for text in ("gzip", "renamed (continued, not read again)", "conflicts"):
        assert text in out
    resumed = f"{len(lines(5000, 20)):,}"  # the renamed file's bytes ingested under its old name
    for number in ("1,237", "1,234", "1,100", "2,337", "2,334", resumed):
        assert re.search(rf"(?<![\d,]){number}(?![\d,])", out), f"{number} cut in:\n{out}"
    assert "2026-11-30" in out  # a file name's digits are not divided either


# -- SIGKILL across the files of one run ---------------------------------------


def ingest_killed(files: Sequence[Path], store: Path, point: str, count: int) -> None:
    """An ingest of ``files`` (5 lines a commit) that kills itself at ``point@count``."""
    args = eventfold("ingest", *map(str, files), "--store", str(store), "--batch", "5")
    run_until_failpoint(args, point, count)


def positions(store: Path, files: Sequence[Path]) -> list[int]:
    """Where the store says each file stands (0: not begun); checks the store holds exactly
    the fold of those prefixes."""
    app = open_store(str(store))
    try:
        found = []
        for path in files:
            try:
                source: Source = app.repository.get(Source.create_id(str(path.resolve())))
            except AggregateNotFoundError:
                found.append(0)
            else:
                found.append(source.position)
        prefixes = [uncompressed(p)[:n] for p, n in zip(files, found, strict=True)]
        assert store_totals(app) == fold(*prefixes)
    finally:
        app.close()
    return found


def uncompressed(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def test_sigkill_at_commits_across_files_then_a_full_run_matches_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    shared = b'{"id": "e3", "category": "fun", "value": 99.99}\n'  # a conflict across files
    files = [
        put(tmp_path / "f1.jsonl", lines(0, 30)),  # 6 commits of 5 lines
        put(tmp_path / "f2.jsonl", lines(100, 38) + shared + lines(0, 1)),  # 8 commits
        put(tmp_path / "f3.jsonl.gz", gzip.compress(lines(200, 20)) + gzip.compress(lines(5, 5))),
        put(tmp_path / "f4.jsonl", lines(300, 12)),
    ]
    size = [len(uncompressed(f)) for f in files]
    line_end = [[m.end() for m in re.finditer(b"\n", uncompressed(f))] for f in files]

    ingest_killed(files, store, "ingest.after-commit", 9)  # the 3rd commit of the 2nd file
    assert positions(store, files) == [size[0], line_end[1][14], 0, 0]
    ingest_killed(files, store, "ingest.before-commit", 6)  # the first of the compressed one
    assert positions(store, files) == [size[0], size[1], 0, 0]
    ingest_killed(files, store, "ingest.after-commit", 1)  # ... now it lands
    assert positions(store, files) == [size[0], size[1], line_end[2][4], 0]
    ingest_killed(files, store, "log.torn-write", 6)  # half a commit, inside the last file
    assert positions(store, files) == [size[0], size[1], size[2], line_end[3][4]]

    code, doc, err = ingest(capsys, store, *map(str, files), "--batch", "5")
    assert code == 0, err
    assert positions(store, files) == size
    assert verified(capsys, store, *files) == "match"
    assert rebuilt(capsys, store) == fold(*map(uncompressed, files))
    assert (doc["duplicates"], doc["conflicts"]) == (0, 0)  # the rest only: f4's last 7 lines
    assert doc["read"] == 7


def test_an_empty_list_of_sources_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = put(tmp_path / "list.txt", b"\n\n")
    store = tmp_path / "store"
    code, out, err = run(capsys, "ingest", "--sources-from", str(listed), "--store", str(store))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "list.txt: the list of sources names no source" in err
    assert not store.exists()


def test_every_unusable_file_of_a_list_is_named_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = put(tmp_path / "good.jsonl", lines(0, 5))
    image = put(tmp_path / "image.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    text = put(tmp_path / "notes.jsonl", b"a line of prose\n" * 40)
    store = tmp_path / "store"
    code, _, err = run(capsys, "ingest", str(good), str(image), str(text), "--store", str(store))
    assert code == 2 and err.count("\n") == 1
    assert "2 of 3 sources cannot be read" in err
    assert "image.jsonl: looks like a PNG image" in err and "notes.jsonl: 40 of its first" in err
    assert not store.exists()
