"""Failpoints: a process armed at NAME@N dies by SIGKILL at its N-th pass, and says so."""

from __future__ import annotations

import subprocess
import sys

from processes import HANG, armed, killed_at

PROBE = """
import sys
from eventfold.infra import failpoints
for i in range(1, 6):
    failpoints.reach("probe.point")
    print(i, flush=True)
"""


def probe(setting: str) -> subprocess.CompletedProcess[str]:
    env = armed("unused") | {"EVENTFOLD_FAILPOINT": setting}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )


def test_an_armed_point_kills_at_its_nth_pass_and_announces_it() -> None:
    done = probe("other.point@1,probe.point@3")
    assert killed_at(done, "probe.point", 3)
    assert done.stdout.split() == ["1", "2"]


def test_unarmed_and_malformed_settings_change_nothing() -> None:
    for setting in ("", "probe.point", "probe.point@0", "probe.point@x", "@3", "other@1"):
        done = probe(setting)
        assert (done.returncode, done.stdout.split()) == (0, ["1", "2", "3", "4", "5"]), setting
