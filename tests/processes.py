"""Helpers for tests that run, kill and wait for processes, independent of the machine's speed.

A test never kills after a wall-clock guess: it arms a failpoint
(``eventfold.infra.failpoints``) so that the child kills itself at a point the
test names, and checks that it did. A test never asserts after a sleep: it
waits for a condition it can observe. Deadlines (``HANG``) only turn a hang
into a failure; they are long enough for a slow, loaded machine.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

HANG = 600.0  # seconds before a wait is taken for a hang


def eventfold(*args: str) -> list[str]:
    """The command line of ``eventfold ARGS`` in this interpreter."""
    return [sys.executable, "-m", "eventfold", *args]


def started(command: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``eventfold COMMAND`` started in a child process, its output piped as text."""
    return subprocess.Popen(
        eventfold(*shlex.split(command)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def armed(point: str, count: int = 1, env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which the process dies at the ``count``-th pass through ``point``."""
    return (dict(os.environ) if env is None else env) | {"EVENTFOLD_FAILPOINT": f"{point}@{count}"}


def run_until_failpoint(
    args: Sequence[str], point: str, count: int = 1, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` armed at ``point``; fail unless the child died there (SIGKILL, announced)."""
    done = subprocess.run(
        args,
        env=armed(point, count),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
        **kwargs,
    )
    assert_killed_at(done, point, count)
    return done


def killed_at(done: subprocess.CompletedProcess[str], point: str, count: int = 1) -> bool:
    """Whether the process ended by SIGKILL at ``point`` (its own announcement says so)."""
    announced = f"eventfold: failpoint {point}@{count} reached" in (done.stderr or "")
    return done.returncode == -signal.SIGKILL and announced


def assert_killed_at(done: subprocess.CompletedProcess[str], point: str, count: int = 1) -> None:
    assert killed_at(done, point, count), (
        f"expected a kill at failpoint {point}@{count}, but the process exited with "
        f"{done.returncode}: {(done.stderr or '').strip()[-2000:]}"
    )


def wait_until(condition: Callable[[], Any], what: str, timeout: float = HANG) -> Any:
    """Poll ``condition`` until it is truthy; return its value. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.02)
    return value


class Following:
    """``projector.follow`` in a thread: what it showed, and its final report once stopped.

    ``with Following(projector) as follower: ...; follower.wait_for_count(n)`` waits until
    it has shown ``n`` events applied in all (category_totals); leaving stops it.
    """

    def __init__(self, projector: Any) -> None:
        self.projector = projector
        self.stop = threading.Event()
        self.seen: list[Any] = []
        self.result: list[Any] = []
        self.thread = threading.Thread(target=self._follow)

    def _follow(self) -> None:
        self.result.append(self.projector.follow(self.stop, self.seen.append, update_seconds=0.0))

    def count(self) -> int:
        if not self.seen:
            return 0
        return sum(c["count"] for c in self.seen[-1].canonical["categories"].values())

    def wait_for_count(self, count: int, what: str) -> None:
        wait_until(lambda: self.count() >= count, what)

    @property
    def report(self) -> Any:
        assert self.result, "follow did not stop with a report"
        return self.result[0]

    def __enter__(self) -> Following:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(HANG)
        assert not self.thread.is_alive(), "follow did not stop"
