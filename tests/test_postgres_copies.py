"""The postgres backend across machines: partitions that split a source, and migrate.

These tests need a PostgreSQL server (the ``postgres`` fixture: skipped with
the reason when none is configured, failed in CI where ``.ci/run`` starts one).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_app
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.cli import main
from ingesthelpers import reference_totals, store_totals
from processes import HANG, armed, assert_killed_at, eventfold, run_until_failpoint, started

RATES = SampleRates(duplicates=0.03, conflicts=0.02, invalid=0.02, out_of_order=0.2)


def cli(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, dict[str, Any]]:
    """``eventfold COMMAND --json`` in this process: its exit code and document."""
    code = main([*shlex.split(command), "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def sample(path: Path, lines: int, seed: int) -> Path:
    with path.open("wb") as f:
        write_sample(f, lines, rates=RATES, seed=seed)
    return path


def partition(
    source: Path, store: Path, k: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return started(f"ingest {source} --partition {k}/2 --store {store} --batch 10 --json", env)


def test_two_partitioned_ingests_in_parallel_give_the_reference_totals(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two processes (two machines' directories) split one source; one is killed and rerun."""
    source = sample(tmp_path / "s.jsonl", 6000, seed=9)
    one, two = tmp_path / "machine-1", tmp_path / "machine-2"
    app = open_app(str(one))
    try:
        first, second = (
            partition(source, one, 1, armed("ingest.after-commit", 30)),
            partition(source, two, 2),
        )
        out, err = first.communicate(timeout=HANG)  # partition 1 dies after 30 commits
        done = subprocess.CompletedProcess(first.args, first.returncode, out, err)
        assert_killed_at(done, "ingest.after-commit", 30)
        rerun = partition(source, one, 1)
        outputs = [p.communicate(timeout=HANG) for p in (rerun, second)]
        for p, (_, err) in zip((rerun, second), outputs, strict=True):
            assert p.returncode == 0, err
        assert [json.loads(out)["partition"] for out, _ in outputs] == ["1/2", "2/2"]
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()
    # Two rebuild workers, each folding a range of the shared store, merged.
    _, on_postgres = cli(capsys, f"rebuild --store {one} --workers 2")
    assert on_postgres["workers"] == 2
    files = tmp_path / "files"
    assert main(shlex.split(f"ingest {source} --store {files} --backend file --quiet")) == 0
    _, on_files = cli(capsys, f"rebuild --store {files} --backend file")
    assert on_postgres["checksum"] == on_files["checksum"]


@pytest.fixture
def on_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A file store with snapshots of both projections, and their checksums."""
    source = sample(tmp_path / "s.jsonl", 4000, seed=13)
    files = tmp_path / "files"
    command = f"ingest {source} --store {files} --backend file --snapshot-interval 100 --batch 50"
    assert main([*shlex.split(command), "--quiet"]) == 0
    _, original = cli(capsys, f"rebuild --store {files} --backend file")
    _, hourly = cli(capsys, f"rebuild --projection hourly_totals --store {files} --backend file")
    return {
        "source": source,
        "files": files,
        "checksum": original["checksum"],
        "hourly": hourly["checksum"],
    }


def test_migrate_to_postgres_resumes_after_a_kill_and_proves_the_copy(
    postgres: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    on_files: dict[str, Any],
) -> None:
    command = (
        f"migrate --from file --to postgres --store {on_files['files']} --to-store {tmp_path}/pg"
    )
    run_until_failpoint(eventfold(*shlex.split(command), "--json"), "migrate.after-commit", 2)
    code, there = cli(capsys, command)
    assert (code, there["status"]) == (0, "match")
    assert there["resumed_from"] > 0  # killed midway: resumed
    assert 0 < there["copied"] < there["events"]
    assert there["source_digest"] == there["target_digest"]
    assert there["aggregate_snapshots"] > 0 and there["tracking_records"] >= 1
    checks = {p["name"]: p for p in there["projections"]}
    assert checks["category_totals"]["target_checksum"] == on_files["checksum"]
    assert checks["hourly_totals"]["target_checksum"] == on_files["hourly"]


def test_migrate_back_to_files_gives_the_same_events_checksums_and_positions(
    postgres: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    on_files: dict[str, Any],
) -> None:
    pg, copy = tmp_path / "pg", tmp_path / "copy"
    files = on_files["files"]
    code, there = cli(capsys, f"migrate --from file --to postgres --store {files} --to-store {pg}")
    assert code == 0
    code, back = cli(capsys, f"migrate --from postgres --to file --store {pg} --to-store {copy}")
    assert (code, back["status"], back["resumed_from"]) == (0, "match", 0)
    assert back["target_digest"] == there["source_digest"]
    _, rebuilt = cli(capsys, f"rebuild --store {copy} --backend file")
    assert rebuilt["checksum"] == on_files["checksum"]
    code, again = cli(capsys, f"ingest {on_files['source']} --store {copy} --backend file")
    assert (code, again["read"], again["ingested"]) == (0, 0, 0)  # where the source stood
    code, second = cli(capsys, f"migrate --from postgres --to file --store {pg} --to-store {copy}")
    assert (code, second["copied"]) == (0, 0)  # nothing left to copy


def test_migrate_refuses_a_target_that_holds_other_events(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = sample(tmp_path / "s.jsonl", 50, seed=1)
    files, pg = tmp_path / "files", tmp_path / "pg"
    assert main(shlex.split(f"ingest {source} --store {files} --backend file --quiet")) == 0
    assert main(shlex.split(f"ingest {source} --store {pg} --quiet")) == 0
    capsys.readouterr()
    assert (
        main(shlex.split(f"migrate --from file --to postgres --store {files} --to-store {pg}")) == 2
    )
    assert "already holds events" in capsys.readouterr().err
