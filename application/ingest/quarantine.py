"""The quarantine file of one source: its invalid lines, with line, offset, reason, raw text.

The store holds the same records as ``Source.Quarantined`` events, committed
with the source position; this file is their readable copy. Records are
appended and fsynced before the commit that covers them, so after a crash the
file may hold records beyond the committed position: ``open`` drops those
(the next run meets those lines again and writes them again).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence

from eventfold.application.ingest.report import InvalidLine
from eventfold.infra import fileio


def quarantine_path(directory: str, identity: str, source_id: str, generation: int) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(identity))[:64] or "source"
    return os.path.join(directory, f"{base}.{source_id[:8]}.g{generation}.jsonl")


class QuarantineFile:
    """Append-only JSON Lines: ``{"source", "line", "offset", "reason", "raw"}``."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self._fd: int | None = None
        self._size = 0

    def open(self, committed_position: int) -> None:
        """Open for appending, dropping records at or beyond ``committed_position``. A file
        that does not exist yet is created by the first ``append`` (a source with no
        invalid line leaves none)."""
        if not os.path.exists(self.path):
            return
        self._fd = os.open(self.path, os.O_RDWR)
        keep = 0
        with open(self.path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                try:
                    if int(json.loads(raw)["offset"]) >= committed_position:
                        break
                except (ValueError, KeyError, TypeError):
                    break
                keep += len(raw)
        if keep != os.fstat(self._fd).st_size:
            os.ftruncate(self._fd, keep)
            fileio.fsync(self._fd)
        self._size = keep

    def _create(self) -> int:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fileio.fsync_dir(os.path.dirname(self.path))
        return fd

    def append(self, records: Sequence[InvalidLine]) -> None:
        """Append and fsync (before the commit that covers these lines)."""
        if not records:
            return
        if self._fd is None:
            try:
                self._fd = self._create()
            except OSError as e:
                raise fileio.FileWriteError(e, "creating", self.path) from e
        data = b"".join(
            json.dumps(
                {
                    "source": self.source,
                    "line": r.line,
                    "offset": r.offset,
                    "reason": r.reason,
                    "raw": r.raw,
                },
                ensure_ascii=False,
            ).encode("utf-8")
            + b"\n"
            for r in records
        )
        try:
            fileio.write_all(self._fd, data, self._size)
            fileio.fsync(self._fd)
        except OSError as e:
            raise fileio.FileWriteError(e, "appending to", self.path) from e
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
