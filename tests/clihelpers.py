"""Running the command line in-process, and writing small sources, for CLI tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from eventfold.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``eventfold ARGS`` in this process: its exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_rows(path: Path, rows: Iterable[tuple[Any, str, str]]) -> Path:
    """A JSON Lines source of ``(id, category, value)`` rows, each value written as the
    JSON number it is given as (text), so no digit goes through a float."""
    with path.open("w", encoding="utf-8") as f:
        for event_id, category, value in rows:
            f.write(
                json.dumps({"id": event_id, "category": category})[:-1] + f', "value": {value}}}\n'
            )
    return path
