"""Usage errors: one form for every error line, and the closest option or command suggested."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventfold.cli import main
from processes import HANG, eventfold

ERROR_LINE = re.compile(r"eventfold: [a-z][a-z ()A-Za-z]*: \S")


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``eventfold ARGS``, expect a usage error (exit 2); its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: eventfold"), err  # the command's usage line first
    last = err.strip().splitlines()[-1]
    assert last.startswith("eventfold: usage: "), err
    return last


def test_a_mistyped_option_is_named_with_the_closest_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    last = usage_error(capsys, "verify", "--sorce", "x")
    assert last == "eventfold: usage: unrecognized option --sorce (did you mean --source?)"


def test_a_mistyped_option_wins_over_a_missing_required_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    last = usage_error(capsys, "reconcile", "--dry-rn")
    assert "unrecognized option --dry-rn (did you mean --dry-run?)" in last
    assert "required" not in last


def test_a_mistyped_option_with_a_value_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    last = usage_error(capsys, "status", "--stroe=x")
    assert last == "eventfold: usage: unrecognized option --stroe (did you mean --store?)"


def test_an_unknown_option_with_nothing_close_points_at_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    last = usage_error(capsys, "status", "--zzzzzz")
    assert "unrecognized option --zzzzzz" in last and "eventfold status --help" in last


def test_a_top_level_option_after_the_command_is_suggested(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "(did you mean --quiet?)" in usage_error(capsys, "status", "--qiuet")


def test_a_mistyped_command_is_named_with_the_closest_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    last = usage_error(capsys, "verfy", "--source", "x")
    assert last.startswith("eventfold: usage: unknown command verfy (did you mean verify?)")


def test_a_value_outside_the_choices_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    last = usage_error(capsys, "status", "--backend", "postgress")
    assert "invalid choice 'postgress' (did you mean postgres?)" in last


def test_a_missing_argument_is_a_usage_error_in_the_one_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["verify"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("eventfold: usage: verify needs one of --source FILE"), last
    assert ERROR_LINE.match(last)


def test_a_bad_environment_key_is_exit_2_in_the_one_form() -> None:
    done = subprocess.run(
        eventfold("status"),
        env={"EVENTFOLD_SNAPSHOT_INTERVAL": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 2, done.stderr  # was 1 (a mismatch's code)
    assert done.stderr.strip() == (
        "eventfold: error: EVENTFOLD_SNAPSHOT_INTERVAL='many' is not a positive integer"
    )


def test_every_error_line_has_the_one_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors from the application carry their label (``EventfoldError.label``)."""
    source, store = tmp_path / "s.jsonl", str(tmp_path / "store")
    source.write_bytes(b'{"id": 1, "category": "x", "value": 2}\n')
    assert main(["ingest", str(source), "--store", store, "--quiet"]) == 0
    missing = str(tmp_path / "missing.jsonl")
    assert main(["verify", "--source", missing, "--store", store]) == 2
    assert main(["reconcile", missing, "--store", store]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(ERROR_LINE.match(line) for line in lines), lines
    assert lines[0].startswith(f"eventfold: unusable source: {missing}: ")
    assert lines[1].startswith(f"eventfold: unusable source: {missing}: ")


def test_postgres_without_its_settings_is_database_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    assert main(["status", "--store", str(tmp_path / "s"), "--backend", "postgres"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventfold: database unavailable: the postgres backend needs ")
    assert err.count("\n") == 1


def test_postgres_without_its_extra_is_database_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import eventfold.infra.backends as backends

    monkeypatch.setitem(sys.modules, "eventfold.infra.backends.postgres", None)  # not importable
    monkeypatch.delattr(backends, "postgres", raising=False)
    assert main(["status", "--store", str(tmp_path / "s"), "--backend", "postgres"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "eventfold: database unavailable: the postgres backend needs the postgres extra: "
        "pip install 'eventfold[postgres]'\n"
    )


@pytest.mark.parametrize("seconds", ["-1", "0", "nan", "inf", "soon"])
def test_follow_refuses_a_snapshot_interval_that_is_not_a_positive_number(
    capsys: pytest.CaptureFixture[str], seconds: str
) -> None:
    last = usage_error(capsys, "follow", "--snapshot-seconds", seconds)
    assert last == (
        "eventfold: usage: argument --snapshot-seconds: expected a positive number of "
        f"seconds, not {seconds!r}"
    )


def test_no_command_prints_the_help_and_a_usage_error_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: eventfold") and "COMMAND" in err
    assert err.splitlines()[-1] == "eventfold: usage: a COMMAND is needed (listed above)"


def test_every_error_label_is_in_the_readme_table() -> None:
    """The README's table of labels names every label an error can carry."""
    import importlib
    import pkgutil

    import eventfold
    from eventfold.infra.errors import EventfoldError

    for module in pkgutil.walk_packages(eventfold.__path__, "eventfold."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    labels, todo = set(), [EventfoldError]
    while todo:
        cls = todo.pop()
        labels.add(cls.label)
        todo.extend(cls.__subclasses__())
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = [label for label in sorted(labels) if not any(f"`{label}`" in r for r in table)]
    assert not missing, missing
