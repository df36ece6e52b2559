"""``rebuild --worker K/N``: one rebuild shared by N processes (machines) through PostgreSQL.

Each worker is a process of its own with a ``--store`` directory of its own (a
machine), sharing the test's schema. The PostgreSQL tests need a server (the
``postgres`` fixture: skipped with the reason when none is configured, failed
in CI).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows
from eventfold.application.app import open_app
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.projecting import snapshots_of
from eventfold.infra.backends.base import RebuildPart
from eventfold.projections.builtin import CategoryTotals
from processes import HANG, armed, assert_killed_at, eventfold

RATES = SampleRates(duplicates=0.03, conflicts=0.02, invalid=0.02, out_of_order=0.2)


@pytest.fixture
def rebuilt(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """A store of 5,000 generated lines and its single-process rebuild (generation 1)."""
    source = tmp_path / "s.jsonl"
    with source.open("wb") as f:
        write_sample(f, 5000, rates=RATES, seed=21)
    store = tmp_path / "machine-0"
    assert run(capsys, "ingest", str(source), "--store", str(store), "--quiet")[0] == 0
    code, out, err = run(capsys, "rebuild", "--store", str(store), "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["generation"] == "gen-00000001"
    return {"dir": tmp_path, "store": store, "rebuild": doc}


def worker(where: Path, k: int, n: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``eventfold rebuild --worker K/N --json`` in a process, on machine K's directory."""
    command = eventfold(
        "rebuild", "--worker", f"{k}/{n}", "--store", str(where / f"m{k}"), "--json"
    )
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=HANG)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def document(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def current_generation(store: Path) -> str | None:
    app = open_app(str(store))
    try:
        return snapshots_of(app, CategoryTotals()).current()
    finally:
        app.close()


def same_rebuild(merged: dict[str, Any], single: dict[str, Any]) -> None:
    """The merged rebuild is the single-process one: state, checksum, position, count."""
    for key in ("checksum", "position", "events_applied", "categories", "figures"):
        assert merged[key] == single[key], key


@pytest.mark.parametrize("n", [2, 3])
def test_workers_started_together_give_the_single_process_rebuild(
    rebuilt: dict[str, Any], n: int, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [document(finished(p)) for p in [worker(rebuilt["dir"], k, n) for k in range(1, n + 1)]]
    assert [d["worker"] for d in docs] == [f"{k}/{n}" for k in range(1, n + 1)]
    (merged,) = [d for d in docs if d["merged"]]  # exactly one merged
    same_rebuild(merged, rebuilt["rebuild"])
    assert merged["workers"] == merged["plan"]["workers"] == n
    assert merged["generation"] == merged["plan"]["generation"] == "gen-00000002"
    assert merged["plan"]["until"] == rebuilt["rebuild"]["position"]
    assert merged["snapshot_written"]["position"] == merged["position"]
    assert merged["left_to_catchup"] == 0 and merged["not_merged_because"] is None
    assert sum(1 for d in docs if d["plan"]["opened"]) == 1
    parts = sorted((d["part"]["after"], d["part"]["last"]) for d in docs)
    assert [a for a, _ in parts[1:]] == [b for _, b in parts[:-1]]  # adjacent, no overlap
    assert (parts[0][0], parts[-1][1]) == (0, merged["position"])
    assert sum(d["part"]["events_applied"] for d in docs) == merged["events_applied"]
    for other in (d for d in docs if not d["merged"]):
        assert other["not_merged_because"].startswith("the merge is left to the last worker")
        assert other["part"]["written"] and other["left_to_catchup"] is None
    # The new generation is in use: another machine catches up from its snapshot.
    code, out, _ = run(capsys, "catchup", "--store", str(rebuilt["store"]), "--json")
    caught_up = json.loads(out)
    assert (code, caught_up["generation"], caught_up["events_applied"]) == (0, "gen-00000002", 0)
    assert caught_up["checksum"] == rebuilt["rebuild"]["checksum"]


def test_a_worker_killed_mid_fold_leaves_no_part_and_its_restart_completes(
    rebuilt: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    where = rebuilt["dir"]
    doomed = worker(where, 2, 2, armed("rebuild.worker-page"))  # killed after its first page
    survivor = worker(where, 1, 2)
    assert_killed_at(finished(doomed), "rebuild.worker-page")
    first = document(finished(survivor))
    assert not first["merged"] and first["part"]["written"]
    assert first["parts_written"] == 1
    assert current_generation(rebuilt["store"]) == "gen-00000001"  # no merge: the old one
    app = open_app(str(rebuilt["store"]))
    try:
        plans = app.backend.rebuild_plans("category_totals")
        assert plans is not None
        plan = plans.plan()
        assert plan is not None and plan.generation == "gen-00000002"
        assert plans.written(plan) == [1]  # nothing of the killed worker's part
    finally:
        app.close()
    late = write_rows(where / "late.jsonl", [(f"late-{i}", "late", "1.5") for i in range(40)])
    assert run(capsys, "ingest", str(late), "--store", str(rebuilt["store"]), "--quiet")[0] == 0
    restarted = document(finished(worker(where, 2, 2)))
    assert restarted["merged"] and restarted["part"]["written"]
    same_rebuild(restarted, rebuilt["rebuild"])  # up to the plan's ``until``
    assert restarted["left_to_catchup"] > 40  # the events and their source's
    assert current_generation(rebuilt["store"]) == "gen-00000002"
    code, out, _ = run(capsys, "catchup", "--store", str(rebuilt["store"]), "--json")
    caught_up = json.loads(out)
    assert code == 0 and caught_up["events_applied"] == 40
    assert caught_up["position"] == restarted["position"] + restarted["left_to_catchup"]
    assert caught_up["categories"]["late"] == {"count": 40, "total": "60"}


def test_a_merge_killed_before_the_switch_is_completed_by_any_worker_run_again(
    rebuilt: dict[str, Any],
) -> None:
    where = rebuilt["dir"]
    assert not document(finished(worker(where, 1, 2)))["merged"]
    last = finished(worker(where, 2, 2, armed("projection.before-switch")))
    assert_killed_at(last, "projection.before-switch")  # both parts written, snapshot too
    assert current_generation(rebuilt["store"]) == "gen-00000001"
    again = document(finished(worker(where, 1, 2)))  # its part is there: not written twice
    assert again["merged"] and not again["part"]["written"]
    assert again["parts_written"] == 2
    same_rebuild(again, rebuilt["rebuild"])
    assert current_generation(rebuilt["store"]) == "gen-00000002"


def test_a_part_is_written_once_and_another_n_is_refused(
    rebuilt: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    where = rebuilt["dir"]
    first = document(finished(worker(where, 1, 3)))
    killed = finished(worker(where, 2, 3, armed("rebuild.part-written")))
    assert_killed_at(killed, "rebuild.part-written")  # its part is in: it stays
    duplicates = [document(finished(worker(where, k, 3))) for k in (1, 2)]
    assert first["part"]["written"]
    assert [d["part"]["written"] for d in duplicates] == [False, False]
    assert [d["parts_written"] for d in duplicates] == [2, 2]
    assert not any(d["merged"] for d in duplicates)
    assert duplicates[0]["checksum"] == first["checksum"]  # the part written, shown again
    code, out, err = run(capsys, "rebuild", "--worker", "2/2", "--store", str(where / "m2"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert "a rebuild shared by 3 workers is open (gen-00000002" in err
    assert "--worker K/3" in err
    assert current_generation(rebuilt["store"]) == "gen-00000001"


def test_a_plain_rebuild_drops_the_open_plan_and_a_late_part_is_refused(
    rebuilt: dict[str, Any],
) -> None:
    """Through the backend's plans: a part of a dropped plan is not written."""
    app = open_app(str(rebuilt["store"]))
    try:
        plans = app.backend.rebuild_plans("category_totals")
        assert plans is not None
        plan, opened = plans.open(2, CategoryTotals.version, 100)
        assert opened and plans.open(3, CategoryTotals.version, 200) == (plan, False)
        part = RebuildPart(1, 0, 50, 50, b'{"x":1}')
        assert plans.write_part(plan, part).outcome == "written"
        assert plans.write_part(plan, part).outcome == "present"
        assert plans.parts(plan) == [part]
        snapshots_of(app, CategoryTotals()).new_generation()  # what a plain rebuild starts with
        assert plans.plan() is None
        assert plans.write_part(plan, RebuildPart(2, 50, 100, 50, b"{}")).outcome == "closed"
        assert not plans.complete(plan)
        assert current_generation(rebuilt["store"]) == "gen-00000001"
    finally:
        app.close()


def test_worker_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file store, options that make no sense with it, a malformed K/N: exit 2."""
    source = tmp_path / "s.jsonl"
    source.write_text('{"id": 1, "category": "a", "value": 1}\n')
    store = str(tmp_path / "files")
    assert run(capsys, "ingest", str(source), "--store", store, "--backend", "file")[0] == 0
    on_files = ("--store", store, "--backend", "file")
    code, out, err = run(capsys, "rebuild", "--worker", "1/2", *on_files)
    assert (code, out) == (2, "")
    assert err.startswith("eventfold: error: --worker needs the postgres backend")
    for extra in (["--workers", "2"], ["--compare"], ["--as-of", "now"]):
        code, _, err = run(capsys, "rebuild", "--worker", "1/2", *extra, *on_files)
        assert code == 2 and f"argument --worker: not allowed with {extra[0]}" in err
    for bad in ("3/2", "0/2", "1-2"):
        with pytest.raises(SystemExit) as exit_info:
            run(capsys, "rebuild", "--worker", bad, *on_files)
        assert exit_info.value.code == 2
        assert f"eventfold: usage: argument --worker: worker '{bad}'" in capsys.readouterr().err
