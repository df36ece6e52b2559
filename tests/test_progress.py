"""Progress of long commands: the use cases tell a callback, the commands draw it on a
terminal's stderr (and nowhere else)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import threading
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
from rich.console import Console

from eventfold.application.admin.check import check
from eventfold.application.admin.migrate import migrate_store
from eventfold.application.app import open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.many import ingest_all
from eventfold.application.progress import Progress, tell
from eventfold.application.projecting import Projector
from eventfold.application.proving.reconcile import reconcile
from eventfold.application.proving.verify import verify
from eventfold.projections.builtin import CategoryTotals
from eventfold.reports.progress import progress_on
from processes import HANG, eventfold

Call = tuple[str, int, int | None, str]


class Recorder:
    """A ``Progress`` callback that keeps every call, and the keywords told with it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.keywords: list[dict[str, object]] = []  # of each call, in the same order

    def __call__(
        self,
        phase: str,
        done: int,
        total: int | None,
        unit: str,
        *,
        files: tuple[int, int] | None = None,
        events: int | None = None,
    ) -> None:
        self.calls.append((phase, done, total, unit))
        told = {"files": files, "events": events}
        self.keywords.append({key: value for key, value in told.items() if value is not None})

    def events(self) -> list[int]:
        """The ``events`` told with each call (each call told some)."""
        told = [keywords["events"] for keywords in self.keywords]
        assert all(isinstance(events, int) for events in told), told
        return cast(list[int], told)

    def files(self) -> list[tuple[int, int]]:
        """The ``files`` told with each call (each call told some)."""
        told = [keywords["files"] for keywords in self.keywords]
        assert all(isinstance(files, tuple) for files in told), told
        return cast(list[tuple[int, int]], told)

    def runs(self, phase: str) -> list[list[Call]]:
        """The runs of consecutive calls of ``phase``."""
        runs: list[list[Call]] = []
        previous = None
        for call in self.calls:
            if call[0] == phase:
                if previous != phase:
                    runs.append([])
                runs[-1].append(call)
            previous = call[0]
        return runs

    def assert_reaches(self, phase: str, total: int, unit: str) -> None:
        """Every run of ``phase`` counts up, never down, to ``total`` (known from the start)."""
        runs = self.runs(phase)
        assert runs, f"no progress told for {phase!r}: {self.calls[:20]}"
        for run in runs:
            dones = [done for _, done, _, _ in run]
            assert dones == sorted(dones), f"{phase}: counts went down: {dones}"
            assert {t for _, _, t, _ in run} == {total}, run
            assert {u for _, _, _, u in run} == {unit}
            assert dones[-1] == total


def write_events(path: Path, first: int, count: int) -> None:
    with path.open("a", encoding="utf-8") as f:
        for i in range(first, first + count):
            f.write(json.dumps({"id": i, "category": f"c{i % 7}", "value": i}) + "\n")


def ingest(source: Path, store: Path, progress: Recorder | None = None) -> None:
    app = open_store(str(store))
    try:
        with Ingestor(app, str(store), batch=100) as ingestor:
            ingestor.run(str(source), progress=progress)
    finally:
        app.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 3000)
    ingest(source, store)
    return store


def last_id(store: Path) -> int:
    app = open_store(str(store))
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def test_ingest_tells_the_bytes_read_of_the_source_and_the_events_in_them(
    tmp_path: Path,
) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 1000)
    progress = Recorder()
    ingest(source, store, progress)
    progress.assert_reaches("ingesting", source.stat().st_size, "bytes")
    events = progress.events()
    assert events == sorted(events) and events[-1] == 1000, events
    assert len(set(events)) == 10  # per batch of 100
    assert all(set(told) == {"events"} for told in progress.keywords)


def ingest_all_of(paths: list[Path], store: Path) -> Recorder:
    """``ingest_all`` of ``paths`` into ``store``: what it told."""
    app = open_store(str(store))
    progress = Recorder()
    try:
        with Ingestor(app, str(store), batch=100) as ingestor:
            ingest_all(ingestor, [str(path) for path in paths], progress=progress)
    finally:
        app.close()
    return progress


def test_an_ingest_of_several_files_tells_which_file_bytes_of_all_and_events_of_all(
    tmp_path: Path,
) -> None:
    sources = [tmp_path / f"{name}.jsonl" for name in "abc"]
    for index, (source, count) in enumerate(zip(sources, (300, 1, 250), strict=True)):
        write_events(source, index * 1000, count)
    unreadable = tmp_path / "not-a-file"  # refused when opened: its size counts as done
    unreadable.mkdir()
    paths = [sources[0], unreadable, *sources[1:]]
    progress = ingest_all_of(paths, tmp_path / "store")
    total = sum(path.stat().st_size for path in paths)
    progress.assert_reaches("ingesting", total, "bytes")
    assert all(set(told) == {"files", "events"} for told in progress.keywords)
    files = progress.files()
    assert files == sorted(files)
    assert set(files) == {(1, 4), (2, 4), (3, 4), (4, 4)}  # each told, the first at 0 bytes
    assert progress.calls[0][1] == 0 and files[0] == (1, 4)
    events = progress.events()
    assert events == sorted(events) and events[-1] == 551, events
    at_each_start = dict(reversed(list(zip(files, events, strict=True))))
    assert at_each_start == {(1, 4): 0, (2, 4): 300, (3, 4): 300, (4, 4): 301}
    dones = {told: done for told, (_, done, _, _) in zip(files, progress.calls, strict=True)}
    sizes = [path.stat().st_size for path in paths]
    assert dones == {(k + 1, 4): sum(sizes[: k + 1]) for k in range(4)}  # each file's end


def test_an_ingest_of_one_file_through_the_list_tells_as_before(tmp_path: Path) -> None:
    source = tmp_path / "s.jsonl"
    write_events(source, 0, 500)
    progress = ingest_all_of([source], tmp_path / "store")
    progress.assert_reaches("ingesting", source.stat().st_size, "bytes")
    assert progress.keywords == [{}] * len(progress.calls)


def test_tell_passes_a_keyword_only_when_it_is_given() -> None:
    four: list[Call] = []
    of_four = cast(Progress, lambda *args: four.append(args))  # takes no keyword
    tell(of_four, "comparing", 1, 2, "notifications")
    assert four == [("comparing", 1, 2, "notifications")]
    progress = Recorder()
    tell(progress, "ingesting", 1, 2, "bytes")
    tell(progress, "ingesting", 2, 2, "bytes", events=7)
    tell(progress, "ingesting", 2, 2, "bytes", files=(1, 2), events=0)
    assert progress.keywords == [{}, {"events": 7}, {"files": (1, 2), "events": 0}]


@pytest.mark.parametrize("workers", [1, 2])
def test_rebuild_tells_the_notifications_folded_of_all(store: Path, workers: int) -> None:
    """With 2 workers, the workers report back as they fold and the parent adds them up."""
    app = open_store(str(store))
    progress = Recorder()
    try:
        Projector(app, str(store), CategoryTotals()).rebuild(workers=workers, progress=progress)
    finally:
        app.close()
    progress.assert_reaches("rebuilding", last_id(store), "notifications")


def test_catchup_tells_the_notifications_after_its_snapshot(store: Path, tmp_path: Path) -> None:
    app = open_store(str(store))
    try:
        Projector(app, str(store), CategoryTotals()).rebuild()
        before = app.recorder.max_notification_id() or 0
        write_events(tmp_path / "s.jsonl", 3000, 500)
        ingest(tmp_path / "s.jsonl", store)
        progress = Recorder()
        Projector(app, str(store), CategoryTotals()).catchup(progress=progress)
    finally:
        app.close()
    progress.assert_reaches("catching up", last_id(store) - before, "notifications")


def test_verify_source_tells_catching_up_reading_and_comparing(store: Path, tmp_path: Path) -> None:
    app = open_store(str(store))
    progress = Recorder()
    try:
        Projector(app, str(store), CategoryTotals()).rebuild()
        before = app.recorder.max_notification_id() or 0
        write_events(tmp_path / "s.jsonl", 3000, 500)
        ingest(tmp_path / "s.jsonl", store)
        report = verify(app, str(store), source=str(tmp_path / "s.jsonl"), progress=progress)
    finally:
        app.close()
    assert report.matches
    progress.assert_reaches("catching up", last_id(store) - before, "notifications")
    progress.assert_reaches("reading source", (tmp_path / "s.jsonl").stat().st_size, "bytes")
    progress.assert_reaches("comparing", last_id(store), "notifications")


def test_reconcile_tells_reading_finding_and_replaying(store: Path, tmp_path: Path) -> None:
    source = tmp_path / "s.jsonl"
    write_events(source, 3000, 250)  # in the source, not in the store
    app = open_store(str(store))
    progress = Recorder()
    try:
        report = reconcile(app, str(store), str(source), batch=100, progress=progress)
    finally:
        app.close()
    assert report.matches
    progress.assert_reaches("reading source", source.stat().st_size, "bytes")
    progress.assert_reaches("replaying", 250, "events")
    assert len(progress.runs("comparing")) == 2  # before and after the replay


def test_check_tells_the_bytes_of_the_logs_read(store: Path) -> None:
    progress = Recorder()
    report = check(str(store), progress=progress)
    assert report.sound
    segments = sum(p.stat().st_size for p in store.glob("*/*.seg"))
    progress.assert_reaches("checking", segments, "bytes")


def test_migrate_tells_the_notifications_copied(store: Path, tmp_path: Path) -> None:
    progress = Recorder()
    report = migrate_store(
        str(store), "file", "file", target_store=str(tmp_path / "copy"), progress=progress
    )
    assert report.matches
    progress.assert_reaches("copying", last_id(store), "notifications")
    progress.assert_reaches("comparing", last_id(store), "notifications")


def test_the_progress_line_shows_phase_count_and_rate_on_a_terminal_only() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    with progress_on(terminal) as progress:
        assert progress is not None
        progress("reading source", 0, 2_000_000, "bytes")
        progress("comparing", 1_000, 3_000, "notifications")
    shown = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "reading source" in shown
    assert "comparing" in shown
    assert "1,000/3,000 notifications" in shown
    with progress_on(Console(file=io.StringIO())) as progress:
        assert progress is None  # not a terminal: nothing to draw
    with progress_on(Console(file=io.StringIO(), force_terminal=True, quiet=True)) as progress:
        assert progress is None  # --quiet


def on_terminal_stderr(*args: str, columns: int = 160) -> tuple[int, str, str]:
    """Run ``eventfold ARGS`` with stderr on a pseudo-terminal ``columns`` wide: exit code,
    stdout, and all that was drawn on the terminal."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("TTY_INTERACTIVE", "NO_COLOR")}
    child = subprocess.Popen(
        eventfold(*args),
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env | {"TERM": "xterm", "COLUMNS": str(columns)},
        text=True,
    )
    os.close(slave)
    drawn: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            drawn.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        out, _ = child.communicate(timeout=HANG)
        reader.join(HANG)
    finally:
        child.kill()
        os.close(master)
    return child.returncode, out, b"".join(drawn).decode(errors="replace")


def test_a_parallel_rebuild_draws_its_progress_on_a_terminal_stderr(store: Path) -> None:
    code, out, drawn = on_terminal_stderr("rebuild", "--store", str(store), "--workers", "2")
    assert code == 0, drawn
    assert "rebuild: generation" in out  # the report, on stdout
    assert "rebuilding" in drawn
    assert f"{last_id(store):,}/{last_id(store):,} notifications" in drawn  # the bar reached it
    piped = subprocess.run(
        eventfold("rebuild", "--store", str(store), "--workers", "2"),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=True,
    )
    assert piped.stderr == ""


def test_verify_source_draws_its_phases_on_a_terminal_stderr(store: Path, tmp_path: Path) -> None:
    source = str(tmp_path / "s.jsonl")
    code, out, drawn = on_terminal_stderr("verify", "--store", str(store), "--source", source)
    assert code == 0, drawn
    assert "match" in out
    for phase in ("rebuilding", "reading source", "comparing"):  # no rebuild before: one now
        assert phase in drawn
    piped = subprocess.run(
        eventfold("verify", "--store", str(store), "--source", source),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=True,
    )
    assert piped.stderr == ""


def test_on_a_narrow_terminal_each_phase_is_one_line_of_whole_figures(
    store: Path, tmp_path: Path
) -> None:
    source = tmp_path / "s.jsonl"
    code, out, drawn = on_terminal_stderr(
        "verify", "--store", str(store), "--source", str(source), columns=60
    )
    assert code == 0, drawn
    assert "match" in out
    assert drawn.count("\x1b[1A") == 1, repr(drawn)  # up one row only, as the line is removed
    frames = [
        frame.rstrip("\r\n")  # the terminal's newline as the line is removed
        for frame in re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", drawn).split("\r")
        if frame.strip()
    ]
    assert frames
    for frame in frames:
        assert "\n" not in frame and "…" not in frame, frames
        assert len(frame) <= 60, frame
        for figure in re.findall(r"\d[\d,.:]*\d|\d", frame):  # each whole: 1,234 12.3 0:00:01
            assert re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d)?|\d+:\d\d:\d\d", figure), frame
    n, size = last_id(store), source.stat().st_size
    assert any(frame.startswith("rebuilding ") and f"/{n:,} notif" in frame for frame in frames)
    assert any(frame.startswith("comparing ") and f"/{n:,} notif" in frame for frame in frames)
    assert any(frame.startswith("reading source ") for frame in frames)
    assert size < 1_000_000  # so in kB:
    assert f"/{(Decimal(size) / 1000).quantize(Decimal('0.1'))} kB" in drawn  # the source's size


def test_follow_tells_its_catch_up(store: Path) -> None:
    app = open_store(str(store))
    progress = Recorder()
    stop = threading.Event()
    try:
        Projector(app, str(store), CategoryTotals()).follow(
            stop, lambda report: stop.set(), progress=progress
        )
    finally:
        app.close()
    progress.assert_reaches("rebuilding", last_id(store), "notifications")  # none before


def test_an_ingest_of_several_files_draws_which_file_and_events_a_second(tmp_path: Path) -> None:
    sources = [tmp_path / f"{name}.jsonl" for name in "abc"]
    for index, source in enumerate(sources):
        write_events(source, index * 1000, 400)
    store = str(tmp_path / "store")
    code, _, drawn = on_terminal_stderr(
        "ingest", *map(str, sources), "--store", store, "--batch", "50"
    )
    assert code == 0, drawn
    assert "ingesting" in drawn
    assert "file 1/3" in drawn and "file 3/3" in drawn  # the last frame: the last file
    assert re.search(r" \d[\d,]* ev/s ", drawn), drawn
    total = sum(source.stat().st_size for source in sources)
    assert total < 1_000_000  # so in kB:
    whole = (Decimal(total) / 1000).quantize(Decimal("0.1"))
    assert f" {whole}/{whole} kB " in drawn  # of all the files, reached
    write_events(sources[0], 3000, 100)  # one file: drawn as ever, without file or events
    code, _, drawn = on_terminal_stderr("ingest", str(sources[0]), "--store", store)
    assert code == 0, drawn
    assert "ingesting" in drawn
    assert "file " not in drawn and "ev/s" not in drawn, drawn
