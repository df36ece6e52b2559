"""What one ingest run did: counts, the pending tail, samples of what was set aside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventfold.infra.compression import Damage

SAMPLES = 20  # quarantined lines and conflicts kept for the report


@dataclass(frozen=True)
class PendingTail:
    """An unterminated last line that is not yet a complete JSON object."""

    line: int
    offset: int
    size: int


@dataclass(frozen=True)
class InvalidLine:
    line: int
    offset: int
    reason: str
    raw: str


@dataclass(frozen=True)
class ConflictSeen:
    """An id seen again with different content: the first stands, the later is kept."""

    event_id: str
    first: dict[str, Any]
    later: dict[str, Any]


@dataclass
class IngestReport:
    """Counts are for this run; ``position`` and ``line`` are where the source now stands."""

    source: str
    identity: str
    resumed_from: int = 0
    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    conflicts: int = 0
    invalid: int = 0
    pending_tail: PendingTail | None = None
    position: int = 0
    line: int = 0
    elapsed: float = 0.0
    rescanned: bool = False
    partition: str | None = None  # "K/N" for a partitioned run
    other_partitions: int = 0  # lines left to the other partitions
    quarantine_file: str | None = None
    invalid_samples: list[InvalidLine] = field(default_factory=list)
    conflict_samples: list[ConflictSeen] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. an index rebuilt along the way
    compression: str | None = None  # gzip, bzip2, xz, zstd; positions are then uncompressed
    damage: Damage | None = None  # where compressed data stopped being readable
    renamed_from: str | None = None  # the source this file continues (a rotated file, renamed)
    rotated_to: str | None = None  # the file that continues this one's earlier content

    @property
    def events_per_second(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (a public interface: keys are only ever added)."""
        tail = self.pending_tail
        return {
            "source": self.source,
            "read": self.read,
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "invalid": self.invalid,
            "pending_tail": None
            if tail is None
            else {"line": tail.line, "offset": tail.offset, "bytes": tail.size},
            "position": self.position,
            "line": self.line,
            "resumed_from": self.resumed_from,
            "rescanned": self.rescanned,
            "elapsed_seconds": round(self.elapsed, 6),
            "events_per_second": round(self.events_per_second, 1),
            "quarantine_file": self.quarantine_file,
            "invalid_lines": [vars(s) for s in self.invalid_samples],
            "conflicting_events": [vars(s) for s in self.conflict_samples],
            "partition": self.partition,
            "other_partitions": self.other_partitions,
            "warnings": self.warnings,
            "compression": self.compression,
            "damage": None if self.damage is None else vars(self.damage),
            "renamed_from": self.renamed_from,
            "rotated_to": self.rotated_to,
        }
