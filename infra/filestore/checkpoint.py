"""Checkpoint files: a JSON document, then a line with its CRC-32 in hex, replaced atomically.

The store's index and the dedup index each keep one (``index/CHECKPOINT``,
``dedup/CHECKPOINT``); a checkpoint whose checksum fails is never trusted.
"""

from __future__ import annotations

import json
from typing import Any

from eventfold.infra import fileio
from eventfold.infra.filestore.format import crc32


def read_checkpoint(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """A checkpoint document (``{"format", ...}``) if its checksum holds, else why not.

    ``(None, None)`` when there is no checkpoint.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"checkpoint unreadable ({e.strerror or e})"
    doc_bytes, _, crc_hex = raw.rstrip(b"\n").rpartition(b"\n")
    try:
        if int(crc_hex, 16) != crc32(doc_bytes):
            return None, "checkpoint checksum mismatch"
        doc = json.loads(doc_bytes)
    except ValueError:
        return None, "checkpoint checksum mismatch"
    if not isinstance(doc, dict) or "format" not in doc:
        return None, "checkpoint unusable (not a checkpoint document)"
    return doc, None


def write_checkpoint(path: str, doc: dict[str, Any]) -> None:
    """Replace the checkpoint at ``path`` atomically: JSON, then its CRC in hex."""
    doc_bytes = json.dumps(doc, sort_keys=True).encode("utf-8")
    fileio.atomic_write(path, doc_bytes + b"\n" + b"%08x\n" % crc32(doc_bytes))
