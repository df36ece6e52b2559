"""Partitioned ingest: N processes split one source by category, without overlap.

A category belongs to partition ``K`` of ``N`` when the BLAKE2b-64 hash of its
UTF-8 name (big-endian) modulo ``N`` is ``K - 1``: stable across machines,
processes and releases. Every partition reads the whole source and applies
the same rules, so all of them agree on each id's first occurrence; each
records only the events of its own categories, and counts duplicates and
conflicts of the ids whose first occurrence is its own. Invalid lines are
quarantined by partition 1 alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b

from eventfold.application.kofn import k_of_n


def partition_of(category: str, count: int) -> int:
    """The partition (1 to ``count``) that a category belongs to."""
    digest = blake2b(category.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count + 1


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count`` (``K/N`` on the command line)."""

    index: int
    count: int
    _owned: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``K/N`` with 1 <= K <= N; ValueError says what is wrong."""
        return cls(*k_of_n(text, "partition"))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, category: str) -> bool:
        """Whether this partition records the events of ``category``."""
        owned = self._owned.get(category)
        if owned is None:
            if len(self._owned) > 100_000:
                self._owned.clear()
            owned = self._owned[category] = partition_of(category, self.count) == self.index
        return owned

    @property
    def quarantines(self) -> bool:
        """Whether invalid lines are this partition's to quarantine (partition 1's)."""
        return self.index == 1

    @property
    def source_suffix(self) -> str:
        """Appended to a source's identity: each partition has its own position."""
        return f"#partition={self.index}/{self.count}"

    @property
    def dedup_name(self) -> str:
        """Its own dedup index: it also marks ids whose first occurrence is another's."""
        return f"dedup-{self.index}of{self.count}"
