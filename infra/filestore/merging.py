"""Merging runs in a worker process, off the write path.

An index's writer (the store index, the dedup index) flushes its in-memory
table as a new run, then hands the merge its policy asks for (``choose_merge``)
to a worker process (``python -m eventfold.infra.filestore.mergeworker``, started
once per writer process and shared by its indexes) and goes on writing. The
worker opens the input runs (verifying every block it reads) and writes the
merged run durably under a name of its own (a ``.tmp`` file fsynced, then
renamed). A later flush adopts it: the index's checkpoint then names the merged
run in place of its inputs, which are deleted only after that checkpoint is
written. So at every instant the checkpoint names runs that exist and are
whole; a crash mid-merge leaves the inputs as they were, and a merged run that
no checkpoint names is a stray, deleted when the index is next opened.

One merge per index is in flight at a time. While it runs, flushes add runs
beside it; when more than ``MAX_RUNS`` have piled up the flush waits for it
(lookups read every run). Closing waits for the merge in flight and adopts it.

The worker stops when its parent is gone (it checks between chunks) and names
its output with a random token, so that a merge orphaned by a crash can never
write a file that a later writer's own runs are named after. If the worker
fails (it died, or a run failed a check), the merge is done again in the
writer's own process, which raises what a merge there raises
(``IndexDamagedError`` naming the file and offset, ``FileWriteError``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eventfold.infra import failpoints
from eventfold.infra.filestore import bloom
from eventfold.infra.filestore.runs import (
    MERGE_WIDTH,
    Chunk,
    Layout,
    Run,
    choose_merge,
    closing_merge,
    merge_runs,
    write_run,
)

MAX_RUNS = 3 * (MERGE_WIDTH - 1) + 4  # beyond this a flush waits for the merge in flight
BACKGROUND_MIN = 1 << 17  # entries: smaller merges are done at once (they take milliseconds)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

MakeRun = Callable[[Iterable[Chunk]], Run]


class Pending:
    """A job handed to a worker (a merge: its inputs, its output file) and its outcome."""

    def __init__(
        self, worker: MergeWorker, job: dict[str, Any], inputs: list[Run], output: str
    ) -> None:
        self.worker, self.job, self.inputs, self.output = worker, job, inputs, output
        self.answer: dict[str, Any] | None = None  # the worker's, when it succeeded
        self.failed: str | None = None

    @property
    def result(self) -> tuple[int, int] | None:
        """A merge's (count, crc) of the merged run."""
        if self.answer is None:
            return None
        return int(self.answer["count"]), int(self.answer["crc"])

    @property
    def done(self) -> bool:
        return self.answer is not None or self.failed is not None


class MergeWorker:
    """The worker process and the merges handed to it, answered in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # the process that started it (a fork must not share it)
        env = dict(os.environ)
        armed = env.pop(failpoints.ENV, "")  # the worker's own points only
        points = [p for p in armed.split(",") if p.strip().startswith("merge.")]
        if points:
            env[failpoints.ENV] = ",".join(points)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self._waiting: deque[Pending] = deque()
        self._buffer = b""
        self.proc: subprocess.Popen[bytes] | None = None
        self.problem = ""
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eventfold.infra.filestore.mergeworker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                cwd=_ROOT,
            )
        except OSError as e:  # merges are then done in process
            self.problem = f"merge worker not started ({e})"

    def submit(self, inputs: list[Run], output: str, layout: Layout) -> Pending:
        """Merge ``inputs`` into the run file ``output``."""
        job = {
            "kind": "merge",
            "layout": [layout.key_bytes, layout.words, layout.deltas, layout.block_entries],
        }
        return self.send(job, inputs, output)

    def send(self, job: dict[str, Any], inputs: list[Run], output: str) -> Pending:
        """Hand the worker a job over ``inputs`` that writes ``output``."""
        pending = Pending(self, job, inputs, output)
        job = job | {"inputs": [[r.path, r.count, r.crc] for r in inputs], "output": output}
        if self.proc is None or self.proc.stdin is None:
            pending.failed = self.problem
            return pending
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as e:
            pending.failed = f"merge worker unreachable ({e})"
            self.lost(pending.failed)
            return pending
        self._waiting.append(pending)
        return pending

    def collect(self, pending: Pending, *, block: bool) -> None:
        """Read the worker's answers so far (until ``pending`` has its own, if ``block``)."""
        if self.proc is None or self.proc.stdout is None:
            return  # nothing was sent: its jobs failed when handed over
        stdout = self.proc.stdout
        while self._waiting and not pending.done:
            if not block and not select.select([stdout], [], [], 0)[0]:
                return
            chunk = os.read(stdout.fileno(), 1 << 16)
            if not chunk:
                self.lost("merge worker exited")
                return
            self._buffer += chunk
            while b"\n" in self._buffer and self._waiting:
                line, _, self._buffer = self._buffer.partition(b"\n")
                answer = json.loads(line)
                done = self._waiting.popleft()
                if "error" in answer:
                    done.failed = str(answer["error"])
                else:
                    done.answer = answer

    def lost(self, why: str) -> None:
        """The worker is gone: every merge waiting fails (and is done again in process)."""
        for waiting in self._waiting:
            waiting.failed = why
        self._waiting.clear()
        self.stop()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """End the worker (a merge it is doing leaves a stray: its inputs stay named)."""
        proc = self.proc
        if proc is None or os.getpid() != self.pid:
            return
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        with contextlib.suppress(Exception):
            proc.wait()


_workers: dict[str, MergeWorker] = {}


def worker(lane: str = "merge") -> MergeWorker:
    """This process's worker for ``lane``, started when first needed (a short job, such
    as extending a filter, has a lane of its own, not to wait behind a long merge)."""
    found = _workers.get(lane)
    if found is None or found.pid != os.getpid() or not found.alive:
        if found is not None and found.pid == os.getpid():
            found.lost("merge worker exited")
        found = _workers[lane] = MergeWorker()
    return found


@atexit.register
def _stop_workers() -> None:
    """At exit, end this process's workers (a fork's copies are not its own)."""
    for found in _workers.values():
        found.stop()


class Merges:
    """One index's runs kept merged by the policy of ``choose_merge``, in the background.

    ``make_run`` writes a run in the index's directory (the merges done in
    process); ``layout`` is the runs' layout.
    """

    def __init__(self, directory: str, layout: Layout, make_run: MakeRun) -> None:
        self.dir, self.layout, self.make_run = directory, layout, make_run
        self.pending: Pending | None = None

    @property
    def merging(self) -> bool:
        """A merge is in flight."""
        return self.pending is not None

    def after_flush(self, runs: list[Run], new: Run | None, *, wait: bool = False) -> list[Run]:
        """Add ``new`` (if any) to ``runs``, adopt a finished merge, start the next one;
        return the runs made obsolete (to delete once a checkpoint no longer names them).

        ``wait`` (closing): finish the merge in flight, then every merge the policy
        asks for, waiting for each, so that a closed index is laid out as if every
        merge had been done on the write path (as few runs to read as before).
        """
        if new is not None:
            runs.append(new)
        obsolete = self._adopt(runs, block=wait)
        if wait:
            return obsolete + self._settle(runs)
        while not wait:
            if self.pending is None:
                obsolete += self._start(runs)
            if self.pending is None or len(runs) <= MAX_RUNS:
                break
            obsolete += self._adopt(runs, block=True)
        return obsolete

    def _settle(self, runs: list[Run]) -> list[Run]:
        """Closing: the merges the policy would have made on the write path, made here.

        A merge that lagged behind leaves a full size class under the last flush's
        short run, which the policy, looking at the newest runs, no longer merges;
        that class is merged too, so a closed index has as few runs as before."""
        obsolete: list[Run] = []
        while True:
            end, width = closing_merge(runs)
            if not width:
                return obsolete
            group = runs[end - width : end]
            runs[end - width : end] = [self.make_run(merge_runs(group))]
            obsolete += group

    def _start(self, runs: list[Run]) -> list[Run]:
        """Start the merge the policy asks for: in the worker, or here when it is small
        (then the next one too, as ``push_run`` does)."""
        obsolete: list[Run] = []
        while (width := choose_merge(runs)) and self.pending is None:
            tail = runs[-width:]
            if sum(r.count for r in tail) >= BACKGROUND_MIN:
                output = os.path.join(self.dir, f"merge-{secrets.token_hex(8)}.idx")
                self.pending = worker().submit(tail, output, self.layout)
                if self.pending.failed is None:
                    failpoints.reach("merge.started")
                    break
                self.pending = None
            del runs[-width:]
            runs.append(self.make_run(merge_runs(tail)))
            obsolete += tail
        return obsolete

    def _adopt(self, runs: list[Run], *, block: bool) -> list[Run]:
        """Put a finished merge's run in place of its inputs (or, if the worker failed,
        merge them here)."""
        pending = self.pending
        if pending is None:
            return []
        if not pending.done:
            pending.worker.collect(pending, block=block)
            if not pending.done:
                return []
        self.pending = None
        inputs = pending.inputs
        if not all(any(r is i for r in runs) for i in inputs):
            return []  # the runs were reset meanwhile: its output is a stray
        merged: Run | None = None
        if pending.result is not None:
            count, crc = pending.result
            with contextlib.suppress(OSError, ValueError):
                merged = Run(pending.output, count, crc)
            if merged is not None and merged.count != sum(r.count for r in inputs):
                merged.close()
                merged = None
        if merged is None:  # the worker failed: merge here (raising what a merge raises)
            with contextlib.suppress(OSError):
                os.unlink(pending.output)
            merged = self.make_run(merge_runs(inputs))
        at = next(i for i, r in enumerate(runs) if r is inputs[0])
        kept = [r for r in runs if not any(r is i for i in inputs)]
        kept.insert(at, merged)
        runs[:] = kept
        return list(inputs)

    def abandon(self) -> None:
        """Forget the merge in flight (the runs were reset): its output becomes a stray."""
        self.pending = None


# -- the worker process ----------------------------------------------------------


def _do(job: dict[str, Any], parent: int) -> dict[str, Any]:
    """Do one job; stop (``ChildProcessError``) when the parent is gone."""
    if job["kind"] == "bloom":
        runs = [Run(path, count, crc) for path, count, crc in job["inputs"]]
        try:
            crc = bloom.extend_shared(job["shared"], job["nbits"], runs, job["output"] or None)
        finally:
            for run in runs:
                run.close()
        return {"crc": crc}
    count, crc = _merge(job, parent)
    return {"count": count, "crc": crc}


def _merge(job: dict[str, Any], parent: int) -> tuple[int, int]:
    """Do one merge job; stop (``ChildProcessError``) when the parent is gone."""
    key_bytes, words, deltas, block_entries = job["layout"]
    layout = Layout(key_bytes, words, deltas, block_entries)
    runs = [Run(path, count, crc) for path, count, crc in job["inputs"]]

    def chunks() -> Iterator[bytes]:
        for chunk in merge_runs(runs):
            if os.getppid() != parent:
                raise ChildProcessError("the writer is gone")
            failpoints.reach("merge.worker-chunk")
            yield chunk

    try:
        return write_run(job["output"], chunks(), layout)
    finally:
        for run in runs:
            run.close()


def serve() -> None:
    """The worker's loop: a job a line on standard input, its answer a line on output."""
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer is interrupted, and ends this
    for line in sys.stdin.buffer:
        try:
            answer = _do(json.loads(line), parent)
        except ChildProcessError:
            return
        except Exception as e:  # answered, and done again by the writer
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.buffer.write(json.dumps(answer).encode() + b"\n")
        sys.stdout.buffer.flush()
