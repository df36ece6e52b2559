"""Source lists: which files a command's sources name, each once, and in what order."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from eventfold.infra.sourcefile import SourceError
from eventfold.infra.sourceset import (
    STDIN,
    counts_as_source,
    expand_sources,
    name_key,
    read_source_list,
)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own: paths are given relative to it, as users type them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def touch(*names: str) -> None:
    for name in names:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"")


def stdin_holding(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr(sys, "stdin", Stdin())


def test_sources_keep_the_order_they_are_given_in(here: Path) -> None:
    touch("b.jsonl", "a.jsonl", "c.jsonl")
    assert expand_sources(["c.jsonl", "a.jsonl", "-", "b.jsonl"]) == [
        "c.jsonl",
        "a.jsonl",
        STDIN,
        "b.jsonl",
    ]


def test_a_directory_gives_its_files_in_natural_name_order(here: Path) -> None:
    touch("logs/part10.jsonl", "logs/part2.jsonl", "logs/part1.jsonl", "logs/Part3.jsonl")
    assert expand_sources(["logs"]) == [
        "logs/Part3.jsonl",
        "logs/part1.jsonl",
        "logs/part2.jsonl",
        "logs/part10.jsonl",
    ]
    assert name_key("part2") < name_key("part10") < name_key("part10a") < name_key("part11")


def test_names_equal_as_numbers_keep_a_stable_order(here: Path) -> None:
    touch("logs/part01.jsonl", "logs/part1.jsonl", "logs/part001.jsonl")
    assert expand_sources(["logs"]) == [
        "logs/part001.jsonl",
        "logs/part01.jsonl",
        "logs/part1.jsonl",
    ]


def test_subdirectories_are_read_only_with_recursive(here: Path) -> None:
    touch("logs/b.jsonl", "logs/2026/01/a.jsonl", "logs/2026/02/a.jsonl", "logs/x/z.ndjson")
    assert expand_sources(["logs"]) == ["logs/b.jsonl"]
    assert expand_sources(["logs"], recursive=True) == [
        "logs/2026/01/a.jsonl",
        "logs/2026/02/a.jsonl",
        "logs/b.jsonl",
        "logs/x/z.ndjson",
    ]


def test_a_directory_skips_hidden_and_other_files_a_named_file_is_kept(here: Path) -> None:
    touch(
        "logs/a.jsonl",
        "logs/.hidden.jsonl",
        "logs/.cache/b.jsonl",
        "logs/notes.txt",
        "logs/a.jsonl.swp",
        "logs/events.log",
    )
    assert expand_sources(["logs"], recursive=True) == ["logs/a.jsonl"]
    assert expand_sources(["logs/notes.txt", "logs/.hidden.jsonl"]) == [
        "logs/notes.txt",
        "logs/.hidden.jsonl",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "events.jsonl",
        "events.ndjson",
        "events.json",
        "EVENTS.JSONL",
        "events.jsonl.1",
        "events.jsonl.2.gz",
        "events.jsonl-20261130.gz",
        "events.jsonl-2026-11-30",
        "events.ndjson.bz2",
        "events.json.xz",
        "events.jsonl.zst",
        "events.jsonl.12.zstd",
    ],
)
def test_logrotate_and_compressed_names_count(name: str) -> None:
    assert counts_as_source(name)


@pytest.mark.parametrize(
    "name",
    [".events.jsonl", "events.txt", "events.jsonl.bak", "events.jsonl.gz.1", "events.jsonlx"],
)
def test_other_names_do_not_count(name: str) -> None:
    assert not counts_as_source(name)


def test_a_rotated_directory_is_read_in_name_order(here: Path) -> None:
    touch("logs/events.jsonl", "logs/events.jsonl.1", "logs/events.jsonl.2.gz", "logs/x.log")
    assert expand_sources(["logs"]) == [
        "logs/events.jsonl",
        "logs/events.jsonl.1",
        "logs/events.jsonl.2.gz",
    ]


def test_a_quoted_pattern_is_expanded_in_name_order(here: Path) -> None:
    touch("data/day10.jsonl", "data/day9.jsonl", "data/day1.jsonl", "data/day1.txt")
    assert expand_sources(["data/day*.jsonl"]) == [
        "data/day1.jsonl",
        "data/day9.jsonl",
        "data/day10.jsonl",
    ]
    assert expand_sources(["data/day?.*"]) == [
        "data/day1.jsonl",
        "data/day1.txt",
        "data/day9.jsonl",
    ]


def test_a_pattern_across_directories(here: Path) -> None:
    touch("data/2026/a.jsonl", "data/b.jsonl", "data/2025/c/d.jsonl")
    assert expand_sources(["data/**/*.jsonl"]) == [
        "data/2025/c/d.jsonl",
        "data/2026/a.jsonl",
        "data/b.jsonl",
    ]


def test_a_path_that_exists_is_not_taken_for_a_pattern(here: Path) -> None:
    touch("odd[1].jsonl", "odd1.jsonl")
    assert expand_sources(["odd[1].jsonl"]) == ["odd[1].jsonl"]


def test_a_pattern_matching_nothing_is_named(here: Path) -> None:
    touch("data/a.txt")
    with pytest.raises(SourceError, match=r"^data/\*\.jsonl: the pattern matches no file$"):
        expand_sources(["data/*.jsonl"])


def test_a_missing_file_is_named(here: Path) -> None:
    touch("a.jsonl")
    with pytest.raises(SourceError, match=r"^missing\.jsonl: no such file or directory$"):
        expand_sources(["a.jsonl", "missing.jsonl"])


def test_a_directory_without_source_files_is_an_error_mentioning_recursive(here: Path) -> None:
    touch("empty/notes.txt", "nested/deeper/a.jsonl")
    for name in ("empty", "nested"):
        with pytest.raises(SourceError) as refused:
            expand_sources([name])
        message = str(refused.value)
        assert message.startswith(f"{name}: no source file in it (names read: *.jsonl")
        assert message.endswith("; --recursive reads its subdirectories too")
    assert expand_sources(["nested"], recursive=True) == ["nested/deeper/a.jsonl"]
    with pytest.raises(SourceError, match=r"^empty: no source file in it \(or below it\)"):
        expand_sources(["empty"], recursive=True)


def test_a_file_named_twice_is_read_once_at_its_first_place(here: Path) -> None:
    touch("logs/a.jsonl", "logs/b.jsonl")
    os.symlink("logs/b.jsonl", "link.jsonl")
    assert expand_sources(["logs/b.jsonl", "logs", "./logs/a.jsonl", "link.jsonl"]) == [
        "logs/b.jsonl",
        "logs/a.jsonl",
    ]
    assert expand_sources(["link.jsonl", "logs/*.jsonl"]) == ["link.jsonl", "logs/a.jsonl"]


def test_a_directory_link_loop_is_read_once_when_recursive(here: Path) -> None:
    touch("logs/a.jsonl", "logs/sub/b.jsonl")
    os.symlink("..", "logs/sub/up")
    os.symlink(".", "logs/self")
    assert expand_sources(["logs"], recursive=True) == ["logs/a.jsonl", "logs/sub/b.jsonl"]


def test_standard_input_named_twice_is_an_error(here: Path) -> None:
    with pytest.raises(SourceError, match=r"standard input .* named twice"):
        expand_sources(["-", "-"])


def test_sources_from_a_list_of_lines(here: Path) -> None:
    touch("a.jsonl", "b dir/c.jsonl", "d.jsonl")
    Path("list").write_bytes(b"b dir/c.jsonl\r\n\n   \na.jsonl\n")
    assert read_source_list("list") == ["b dir/c.jsonl", "a.jsonl"]
    assert expand_sources(["d.jsonl"], sources_from="list") == [
        "d.jsonl",
        "b dir/c.jsonl",
        "a.jsonl",
    ]


def test_sources_from_a_nul_separated_list(here: Path) -> None:
    touch("a\nb.jsonl", "c.jsonl", " d.jsonl")
    Path("list").write_bytes(b"c.jsonl\0a\nb.jsonl\0\0 d.jsonl\0")
    assert expand_sources([], sources_from="list") == ["c.jsonl", "a\nb.jsonl", " d.jsonl"]


def test_sources_from_standard_input(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch("a.jsonl", "b.jsonl")
    stdin_holding(monkeypatch, b"b.jsonl\na.jsonl\n")
    assert expand_sources([], sources_from="-") == ["b.jsonl", "a.jsonl"]


def test_a_missing_list_is_named(here: Path) -> None:
    with pytest.raises(SourceError, match=r"^nolist: cannot read the list of sources"):
        expand_sources([], sources_from="nolist")


def test_standard_input_cannot_be_the_list_and_a_source(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch("a.jsonl")
    stdin_holding(monkeypatch, b"a.jsonl\n")
    with pytest.raises(SourceError, match="both a source and the list of sources"):
        expand_sources(["-"], sources_from="-")
    assert sys.stdin.buffer.read() == b"a.jsonl\n"  # refused before anything was read
    stdin_holding(monkeypatch, b"a.jsonl\n-\n")  # the list read from stdin names it
    with pytest.raises(SourceError, match="both a source and the list of sources"):
        expand_sources([], sources_from="-")


def test_mtime_order_is_oldest_first_with_standard_input_last(here: Path) -> None:
    touch("new.jsonl", "old.jsonl", "logs/mid.jsonl", "logs/same-a.jsonl", "logs/same-b.jsonl")
    base = 1_700_000_000
    for name, age in (
        ("new.jsonl", 10),
        ("old.jsonl", 1),
        ("logs/mid.jsonl", 5),
        ("logs/same-a.jsonl", 7),
        ("logs/same-b.jsonl", 7),
    ):
        os.utime(name, ns=((base + age) * 10**9, (base + age) * 10**9))
    sources = ["-", "new.jsonl", "logs", "old.jsonl"]
    assert expand_sources(sources, order="mtime") == [
        "old.jsonl",
        "logs/mid.jsonl",
        "logs/same-a.jsonl",  # a tie keeps name order
        "logs/same-b.jsonl",
        "new.jsonl",
        STDIN,
    ]
    assert expand_sources(sources) == [
        STDIN,
        "new.jsonl",
        "logs/mid.jsonl",
        "logs/same-a.jsonl",
        "logs/same-b.jsonl",
        "old.jsonl",
    ]


def test_an_unknown_order_is_refused(here: Path) -> None:
    with pytest.raises(SourceError, match="unknown order 'size'"):
        expand_sources(["-"], order="size")
