"""`eventfold completion bash|zsh|fish`: each script run by its real shell, asked to complete.

bash: the script is sourced and its function called with ``COMP_WORDS``/``COMP_CWORD``.
fish: ``complete -C LINE``. zsh: a real interactive zsh in a pseudo-terminal
(tests/complete_zsh.zsh) presses TAB. zsh and fish are skipped when not installed;
``.ci/run`` installs them and sets ``EVENTFOLD_REQUIRE_SHELLS=1`` so that they fail instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventfold.cli import build_parser, main
from processes import HANG, eventfold

ZSH_HARNESS = Path(__file__).with_name("complete_zsh.zsh")


def need(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        reason = f"{shell} is not installed (apt-get install zsh fish, or .ci/shells-up)"
        if os.environ.get("EVENTFOLD_REQUIRE_SHELLS") == "1":
            pytest.fail(f"shells required but {reason}")
        pytest.skip(reason)
    return found


def generated(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding one file and one directory, to complete file names in."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "events.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# What each shell must offer (the line typed so far -> the candidates), from the parser.
CASES = [
    ("eventfold ver", ["verify"]),
    ("eventfold re", ["rebuild", "reconcile", "reconstruct"]),
    ("eventfold verify --so", ["--source", "--sources-from"]),
    ("eventfold verify --backend ", ["file", "postgres"]),
    ("eventfold rebuild --projection ", ["category_totals", "hourly_totals"]),
    ("eventfold completion ", ["bash", "fish", "zsh"]),
    ("eventfold --de", ["--debug"]),
    ("eventfold ingest --re", ["--recursive", "--rescan"]),
    ("eventfold e", ["events", "explain"]),
    ("eventfold events --c", ["--category", "--csv"]),
    ("eventfold explain rent --p", ["--projection"]),
]


def bash_complete(script: Path, line: str) -> list[str]:
    words = line.split(" ")  # a trailing space: an empty current word
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_eventfold\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return sorted(w for w in done.stdout.splitlines() if w)


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_bash_completes_commands_options_and_choices(
    line: str, expected: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = workdir / "eventfold.bash"
    script.write_text(generated("bash", capsys))
    assert bash_complete(script, line) == expected


def test_bash_completes_files_and_directories(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = workdir.parent / "eventfold.bash"
    script.write_text(generated("bash", capsys))
    assert bash_complete(script, "eventfold ingest ") == ["events.jsonl", "sub"]
    assert bash_complete(script, "eventfold verify --source ev") == ["events.jsonl"]
    assert bash_complete(script, "eventfold status --store ") == ["sub"]
    assert bash_complete(script, "eventfold status --store=s") == ["sub"]
    assert bash_complete(script, "eventfold verify --backend = p") == ["postgres"]
    assert bash_complete(script, "eventfold ingest --batch ") == []  # a number: nothing
    (workdir / "two words.jsonl").write_text("")
    assert bash_complete(script, "eventfold ingest tw") == ["two words.jsonl"]


def test_bash_offers_every_option_of_every_command(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = workdir.parent / "eventfold.bash"
    script.write_text(generated("bash", capsys))
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert bash_complete(script, "eventfold ") == sorted(commands.choices)
    for name, sub in commands.choices.items():
        options = sorted(o for a in sub._actions for o in a.option_strings)
        assert bash_complete(script, f"eventfold {name} -") == options, name


def fish_complete(script: Path, line: str) -> list[str]:
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C {line!r}"],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return sorted(line.split("\t")[0] for line in done.stdout.splitlines())


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_fish_completes_commands_options_and_choices(
    line: str, expected: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("fish")
    script = workdir.parent / "eventfold.fish"
    script.write_text(generated("fish", capsys))
    assert fish_complete(script, line) == expected


def test_fish_script_parses_and_completes_files_and_directories(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("fish")
    script = workdir.parent / "eventfold.fish"
    script.write_text(generated("fish", capsys))
    syntax = subprocess.run(
        ["fish", "--no-execute", str(script)], capture_output=True, timeout=HANG
    )
    assert syntax.returncode == 0, syntax.stderr
    assert fish_complete(script, "eventfold ingest ") == ["events.jsonl", "sub/"]
    assert fish_complete(script, "eventfold check --store ") == ["sub/"]
    assert fish_complete(script, "eventfold ingest --batch ") == []


def zsh_complete(functions: Path, line: str) -> list[str]:
    done = subprocess.run(
        ["zsh", "-f", str(ZSH_HARNESS), str(functions), line],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    matches = [
        m.split("<<MATCH>>", 1)[1].strip() for m in done.stdout.splitlines() if "<<MATCH>>" in m
    ]
    return sorted(set(matches))


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_zsh_completes_commands_options_and_choices(
    line: str, expected: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("zsh")
    functions = workdir.parent / "zfunc"
    functions.mkdir(exist_ok=True)
    (functions / "_eventfold").write_text(generated("zsh", capsys))
    assert zsh_complete(functions, line) == expected


def test_zsh_script_parses_and_completes_files(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("zsh")
    functions = workdir.parent / "zfunc"
    functions.mkdir(exist_ok=True)
    script = functions / "_eventfold"
    script.write_text(generated("zsh", capsys))
    syntax = subprocess.run(["zsh", "-n", str(script)], capture_output=True, timeout=HANG)
    assert syntax.returncode == 0, syntax.stderr
    assert "events.jsonl" in zsh_complete(functions, "eventfold ingest ")
    assert zsh_complete(functions, "eventfold verify --source ev") == ["events.jsonl"]


def test_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["completion", "tcsh"])
    assert exited.value.code == 2
    assert "eventfold: usage: argument shell: invalid choice 'tcsh'" in capsys.readouterr().err


def test_the_help_examples_install_each_script_in_a_fresh_home(tmp_path: Path) -> None:
    """Run as printed by ``eventfold completion --help``, in a home with none of the
    directories yet: each script lands where the example says."""
    help_text = subprocess.run(
        [*eventfold("completion", "--help")], capture_output=True, text=True, timeout=HANG
    ).stdout
    examples = help_text.split("examples:\n", 1)[1].splitlines()
    script = "set -e\n" + "\n".join(line.split("  #")[0].strip() for line in examples)
    home = tmp_path / "home"
    home.mkdir()
    on_path = os.path.dirname(sys.executable)  # the venv's bin, where eventfold is
    env = os.environ | {"HOME": str(home), "PATH": on_path + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=HANG
    )
    assert done.returncode == 0, done.stderr
    for path in (
        ".local/share/bash-completion/completions/eventfold",
        ".zfunc/_eventfold",
        ".config/fish/completions/eventfold.fish",
    ):
        assert (home / path).read_text().strip(), path
