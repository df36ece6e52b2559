"""`eventfold check`: exit codes, messages naming file and offset, --repair, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventfold.cli import main
from eventfold.infra.filestore.format import HEADER2_SIZE
from storehelpers import commit_offsets, factory_for, flip_byte, new_events, recorder_of, segment


@pytest.fixture
def store(store_path: Path) -> Path:
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    for c in range(5):
        recorder.insert_events(new_events(4, f"c{c}"))
    factory.close()
    return store_path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["check", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_sound_store_exits_0(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "--store", str(store))
    assert code == 0
    assert doc["status"] == "ok"
    [log] = doc["logs"]
    assert (log["name"], log["events"], log["commits"], log["index"]) == (
        "stored_events",
        20,
        5,
        "ok",
    )


def test_flipped_byte_exits_3_naming_file_and_offset(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = segment(store)
    target = commit_offsets(seg)[2]
    flip_byte(seg, target + HEADER2_SIZE + 12)
    code = main(["check", "--store", str(store)])
    captured = capsys.readouterr()
    assert code == 3
    assert f"{seg}: byte offset {target + HEADER2_SIZE}: commit checksum mismatch" in (
        captured.err.replace("\n", "")
    )
    # --repair never drops committed data.
    size = seg.stat().st_size
    assert main(["check", "--repair", "--store", str(store)]) == 3
    assert seg.stat().st_size == size


def test_torn_tail_is_reported_and_repaired(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = segment(store)
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(seg.read_bytes()[: HEADER2_SIZE + 10])  # a commit cut short
    code, doc = run_json(capsys, "--store", str(store))
    assert code == 0
    assert doc["logs"][0]["torn_tail"] == {
        "file": str(seg),
        "offset": size,
        "length": HEADER2_SIZE + 10,
    }
    assert seg.stat().st_size == size + HEADER2_SIZE + 10  # check alone changes nothing
    code, doc = run_json(capsys, "--repair", "--store", str(store))
    assert code == 0
    assert doc["logs"][0]["torn_tail"] is None
    assert "dropped a torn tail" in doc["logs"][0]["repairs"][0]
    assert seg.stat().st_size == size


def test_damaged_index_exits_3_and_repair_rebuilds_it(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = next((store / "stored_events" / "index").glob("run-*.idx"))
    flip_byte(run, 20)
    code, doc = run_json(capsys, "--store", str(store))
    assert code == 3
    assert doc["logs"][0]["index"].startswith("damaged")
    code, doc = run_json(capsys, "--repair", "--store", str(store))
    assert code == 0
    assert doc["logs"][0]["index"] == "ok"


def test_store_from_environment_and_missing_store_exits_2(
    tmp_path: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("EVENTFOLD_STORE", str(store))
    from eventfold.cli import build_parser
    from eventfold.commands.options import apply_configuration

    args = build_parser().parse_args(["check"])
    apply_configuration(args)  # where the environment's store is taken, as main does
    assert args.store == str(store)
    assert main(["check", "--store", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: no such store directory" in err
    assert "Traceback" not in err


def test_console_script_and_module_entry_points(store: Path) -> None:
    bin_dir = os.path.dirname(sys.executable)
    for cmd in ([os.path.join(bin_dir, "eventfold")], [sys.executable, "-m", "eventfold"]):
        done = subprocess.run(
            [*cmd, "check", "--store", str(store), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["check", "--backend", "postgres"],
            "eventfold: error: check reads the file store's log files; PostgreSQL keeps its own "
            "integrity",
        ),
        (
            ["migrate", "--from", "postgres", "--to", "postgres"],
            "eventfold: error: migrate copies between backends: --from and --to are both postgres, "
            "one shared database",
        ),
        (
            ["migrate", "--from", "postgres", "--to", "file"],
            "eventfold: error: --to-store DIR is required: the file store to copy into",
        ),
    ],
)
def test_what_a_backend_cannot_do_is_a_usage_error(
    store: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Refused before any connection is tried: no server is needed to get the message."""
    code = main([*args, "--store", str(store)])
    err = capsys.readouterr().err.replace("\n", " ")
    assert code == 2
    assert message in err


def test_a_relative_store_is_reported_by_its_absolute_path(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(store.parent)
    code, doc = run_json(capsys, "--store", store.name)
    assert (code, doc["store"]) == (0, str(store))  # as status --json names it
