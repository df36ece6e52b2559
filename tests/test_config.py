"""The configuration file (``eventfold.toml`` or ``[tool.eventfold]`` in ``pyproject.toml``):
each key as a default, the command line and the environment winning over it, its
errors, and ``status`` showing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.cli import build_parser
from eventfold.commands.options import apply_configuration


def write_source(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for event_id, category, value in rows:
            f.write(f'{{"id": {event_id}, "category": "{category}", "value": {value}}}\n')
    return path


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, with no store or backend from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVENTFOLD_STORE", raising=False)
    monkeypatch.delenv("EVENTFOLD_BACKEND", raising=False)
    write_source(tmp_path / "a.jsonl", [(i, "rent", f"{i}.5") for i in range(10)])
    write_source(tmp_path / "b.jsonl", [(100 + i, "food", "2") for i in range(5)])
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, err = run(capsys, *args, "--json")
    assert out, err
    return code, json.loads(out)


CONFIG_FILES = {
    "eventfold.toml": "{body}",
    "pyproject.toml": '[project]\nname = "mine"\n\n[tool.eventfold]\n{body}',
}


@pytest.fixture(params=sorted(CONFIG_FILES))
def configure(request: pytest.FixtureRequest, workdir: Path) -> Any:
    """Writes the configuration (TOML lines) in one of the two files."""
    name: str = request.param

    def write(body: str) -> Path:
        path = workdir / name
        path.write_text(CONFIG_FILES[name].format(body=body), encoding="utf-8")
        return path

    return write


def test_store_and_sources_from_the_file(
    configure: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configure('store = "data"\nsources = ["a.jsonl", "b.jsonl"]\n')
    code, doc = run_json(capsys, "ingest")
    assert code == 0
    assert [Path(d["source"]).name for d in doc["sources"]] == ["a.jsonl", "b.jsonl"]
    assert [d["ingested"] for d in doc["sources"]] == [10, 5]
    assert (workdir / "data" / "eventfold_events").is_dir()
    assert not (workdir / ".eventfold").exists()
    code, doc = run_json(capsys, "status")
    assert (code, Path(doc["store"]).name) == (0, "data")
    assert doc["configuration"] == {
        "file": str(path),
        "values": {"store": "data", "sources": ["a.jsonl", "b.jsonl"]},
        "overridden": {},
    }


def test_one_configured_source_is_what_verify_and_reconcile_use(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure('sources = ["a.jsonl"]\n')
    assert run_json(capsys, "ingest")[1]["ingested"] == 10
    code, doc = run_json(capsys, "verify")
    assert (code, doc["status"]) == (0, "match")
    code, doc = run_json(capsys, "reconcile", "--dry-run")
    assert code == 0 and doc["before"]["status"] == "match"
    code, doc = run_json(capsys, "verify", "--source", "b.jsonl")  # the command line wins
    assert (code, doc["status"]) == (1, "mismatch")


def test_several_configured_sources_are_what_verify_and_reconcile_read(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure('sources = ["a.jsonl", "b.jsonl"]\n')
    assert run(capsys, "ingest")[0] == 0
    code, doc = run_json(capsys, "verify")
    assert (code, doc["status"], doc["source"]) == (0, "match", None)
    assert [Path(name).name for name in doc["sources"]] == ["a.jsonl", "b.jsonl"]
    code, doc = run_json(capsys, "reconcile", "--dry-run")
    assert (code, doc["missing"], len(doc["sources"])) == (0, 0, 2)
    assert run(capsys, "verify", "--source", "a.jsonl")[0] == 1  # b's events are extra


def test_without_source_or_configuration_ingest_and_verify_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "ingest")
    assert code == 2 and "ingest needs a SOURCE" in err
    code, _, err = run(capsys, "verify")
    assert code == 2 and "verify needs one of --source FILE" in err


def test_the_command_line_wins_over_the_file(
    configure: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure('store = "data"\nprojection = "hourly_totals"\nsources = ["b.jsonl"]\n')
    code, doc = run_json(capsys, "ingest", "a.jsonl", "--store", "other")
    assert (code, Path(doc["source"]).name, doc["ingested"]) == (0, "a.jsonl", 10)
    assert (workdir / "other").is_dir() and not (workdir / "data").exists()
    code, doc = run_json(capsys, "rebuild", "--store", "other")
    assert (code, doc["projection"]) == (0, "hourly_totals")
    code, doc = run_json(capsys, "rebuild", "--store", "other", "--projection", "category_totals")
    assert (code, doc["projection"]) == (0, "category_totals")
    code, doc = run_json(capsys, "status", "--store", "other", "--backend", "file")
    assert Path(doc["store"]).name == "other"
    assert doc["configuration"]["overridden"] == {"store": "--store"}


def test_the_environment_wins_over_the_file(
    configure: Any,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure('store = "data"\n')
    monkeypatch.setenv("EVENTFOLD_STORE", "fromenv")
    assert run(capsys, "ingest", "a.jsonl")[0] == 0
    assert (workdir / "fromenv").is_dir() and not (workdir / "data").exists()
    code, doc = run_json(capsys, "status")
    assert (code, Path(doc["store"]).name) == (0, "fromenv")
    assert doc["configuration"]["overridden"] == {"store": "$EVENTFOLD_STORE"}


def test_the_command_line_is_named_when_it_gives_the_environment_s_value(
    configure: Any,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure('store = "data"\n')
    monkeypatch.setenv("EVENTFOLD_STORE", "same")
    assert run(capsys, "ingest", "a.jsonl", "--store", "same")[0] == 0
    code, doc = run_json(capsys, "status", "--store", "same")
    assert (code, Path(doc["store"]).name) == (0, "same")
    assert doc["configuration"]["overridden"] == {"store": "--store"}


def test_backend_precedence(configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Command line, then $EVENTFOLD_BACKEND (read by the backend layer), then the file."""
    configure('backend = "postgres"\n')

    def resolved(*argv: str) -> tuple[str | None, dict[str, str]]:
        args = build_parser().parse_args(["status", *argv])
        apply_configuration(args)
        return args.backend, args.overridden

    assert resolved() == ("postgres", {})
    assert resolved("--backend", "file") == ("file", {"backend": "--backend"})
    monkeypatch.setenv("EVENTFOLD_BACKEND", "file")
    assert resolved() == (None, {"backend": "$EVENTFOLD_BACKEND"})
    assert resolved("--backend", "file") == ("file", {"backend": "--backend"})


def test_backend_from_the_file_opens_that_backend(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure('backend = "file"\nstore = "data"\n')
    assert run(capsys, "ingest", "a.jsonl")[0] == 0
    code, doc = run_json(capsys, "status")
    assert (code, doc["backend"], doc["configuration"]["values"]["backend"]) == (0, "file", "file")


def test_eventfold_toml_wins_over_pyproject(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "pyproject.toml").write_text('[tool.eventfold]\nstore = "p"\n')
    (workdir / "eventfold.toml").write_text('store = "e"\n')
    assert run(capsys, "ingest", "a.jsonl")[0] == 0
    assert (workdir / "e").is_dir() and not (workdir / "p").exists()
    code, doc = run_json(capsys, "status")
    assert (code, doc["configuration"]["file"]) == (0, str(workdir / "eventfold.toml"))


def test_a_pyproject_without_the_table_is_no_configuration(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.other]\nstore = 1\n')
    assert run(capsys, "ingest", "a.jsonl")[0] == 0
    code, doc = run_json(capsys, "status")
    assert (code, Path(doc["store"]).name, doc["configuration"]) == (0, ".eventfold", None)
    code, out, _ = run(capsys, "status")
    assert "configuration file: none" in out


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('store = "data"\nsources = ["a.jsonl" "b.jsonl"]\n', 2, "not valid TOML"),
        ('store = "data"\ncolour = "blue"\n', 2, "key 'colour': unknown key"),
        ('store = "data"\n\nsources = "a.jsonl"\n', 3, "key 'sources': expected a list of strings"),
        ("store = 3\n", 1, "key 'store': expected a string, not 3"),
        ('backend = "mysql"\n', 1, "key 'backend': 'mysql' is not one of file, postgres"),
        ('projection = ""\n', 1, "key 'projection': expected a string"),
        ("store = {path = 'x'}\n", 1, "key 'store': expected a string, not a table"),
    ],
)
def test_errors_name_the_file_the_line_and_the_key(
    configure: Any, capsys: pytest.CaptureFixture[str], body: str, line: int, message: str
) -> None:
    path = configure(body)
    offset = 0 if path.name == "eventfold.toml" else 4  # the lines before [tool.eventfold]
    for command in (
        ["status"],
        ["ingest", "a.jsonl"],
        ["rebuild"],
        ["migrate", "--from", "file", "--to", "file"],
    ):
        code, out, err = run(capsys, *command)
        assert (code, out) == (2, ""), command
        assert err.startswith(f"eventfold: bad configuration: {path.name}: line {line + offset}: ")
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert not (path.parent / ".eventfold").exists()


def test_commands_that_take_no_default_ignore_a_broken_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "eventfold.toml").write_text("this is not TOML\n")
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0 and "complete -F _eventfold eventfold" in out


def test_status_shows_the_file_and_what_overrides_it(
    configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configure('store = "data"\nsources = ["a.jsonl", "b.jsonl"]\n')
    assert run(capsys, "ingest", "--store", "other")[0] == 0
    code, out, _ = run(capsys, "status", "--store", "other")
    assert code == 0
    where = "pyproject.toml [tool.eventfold]" if path.name == "pyproject.toml" else path.name
    assert f"configuration {where}" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "overridden by --store" in rows["store"] and "data" in rows["store"]
    assert "a.jsonl, b.jsonl" in rows["sources"] and "in effect" in rows["sources"]
