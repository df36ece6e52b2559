"""eventfold's processes collect garbage at batch thresholds; an importing program keeps its own."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from eventfold import cli
from eventfold.application import children
from eventfold.infra.gc_policy import BATCH_THRESHOLDS


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_command_line_sets_the_batch_thresholds(
    thresholds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert gc.get_threshold() == BATCH_THRESHOLDS


def test_a_child_process_sets_the_batch_thresholds(
    thresholds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert children.main(["no-such-role"]) == 2
    assert gc.get_threshold() == BATCH_THRESHOLDS


def test_importing_eventfold_leaves_a_program_s_thresholds_alone() -> None:
    code = (
        "import gc; gc.set_threshold(1234, 5, 6); import eventfold.cli, "
        "eventfold.application.app, eventfold.application.children; print(gc.get_threshold())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1234, 5, 6)"
