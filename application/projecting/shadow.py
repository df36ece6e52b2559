"""A rebuild compared with the generation in use before it replaces it (``rebuild --compare``).

The new generation is folded up to the position of the current generation's
newest verified snapshot, compared there with that snapshot's state, then
folded on to the end of the store. Both states are of the same events, so any
difference is the code's: a changed projection shows exactly what it changes
before anyone reads it. The rows compare by the projection's keys when this
code reads the old state to its own checksum; otherwise by checksum alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventfold.application.proving.keyed import Difference, compare
from eventfold.projections.base import Projection, state_checksum
from eventfold.projections.snapshots import Kept


@dataclass
class Comparison:
    """The new generation against the current one, at ``position``."""

    current_generation: str
    new_generation: str
    position: int
    current_checksum: str
    new_checksum: str
    compared: list[Difference] = field(default_factory=list)  # empty: by checksum alone
    by_rows: bool = True
    why_checksum: str = ""  # why the rows could not be compared
    current_version: int = 0
    switched: bool = False

    @property
    def equal(self) -> bool:
        return self.current_checksum == self.new_checksum

    @property
    def differences(self) -> list[Difference]:
        return [d for d in self.compared if d.status != "match"]

    def to_json(self) -> dict[str, Any]:
        return {
            "current_generation": self.current_generation,
            "new_generation": self.new_generation,
            "position": self.position,
            "equal": self.equal,
            "switched": self.switched,
            "current_checksum": self.current_checksum,
            "new_checksum": self.new_checksum,
            "current_version": self.current_version,
            "by_rows": self.by_rows,
            "why_checksum_only": self.why_checksum or None,
            "differing": len(self.differences),
            "differences": [d.to_json() for d in self.differences],
        }


def compared(
    projection: Projection[Any], kept: Kept, current: str, new: str, state: Any
) -> Comparison:
    """The state ``state`` of the new generation (folded to ``kept.position``) against
    the current generation's snapshot ``kept``."""
    canonical = projection.canonical(state)
    comparison = Comparison(
        current,
        new,
        kept.position,
        kept.checksum,
        state_checksum(canonical),
        current_version=kept.version,
    )
    if kept.canonical is None:
        comparison.by_rows, comparison.why_checksum = False, kept.why
        return comparison
    old, fresh = projection.rows(kept.canonical), projection.rows(canonical)
    comparison.compared = compare(projection, old, fresh)
    return comparison
