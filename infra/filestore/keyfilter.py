"""Which originator keys a store index's runs may hold: a Bloom filter in memory.

``LogIndex.max_version`` of an originator the store has never seen would read a
block of every run to find nothing: at 100,000 categories, a first ingest asks
that for each new category. The index keeps this filter of the keys its runs
hold whenever it can know them all (it started from no runs, and every run
since was flushed by this process: a new store, or one whose index is
rebuilt); a key the filter has not seen is then in no run, without a read.
Nothing of it is persisted: a store opened with runs has no filter.

Keys are BLAKE2b-128 digests, uniform, so the probes are taken from the key's
own bits. The filter grows by layers (each as many keys as those before it), 16
bits (2 bytes) a key and 4 probes: a key absent is taken for present (a run
read in vain) about once in 400 per full layer, under 1 in 50 in all.
"""

from __future__ import annotations

from collections.abc import Iterable

BITS_PER_KEY = 16
FIRST_LAYER_KEYS = 1 << 14
_SHIFTS = (0, 32, 64, 96)  # four probes, 32 bits of the key each


class KeyFilter:
    """The 16-byte keys added so far, or a few more (never fewer)."""

    def __init__(self) -> None:
        self._layers: list[tuple[bytearray, int]] = []  # bits, and how many
        self._room = 0  # keys the newest layer has room for still
        self._keys = 0  # keys added (counted again when added again)

    def add_many(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            if not self._room:
                self._grow()
            bits, n = self._layers[-1]
            h = int.from_bytes(key, "little")
            for shift in _SHIFTS:
                p = (h >> shift & 0xFFFFFFFF) % n
                bits[p >> 3] |= 1 << (p & 7)
            self._room -= 1
            self._keys += 1

    def _grow(self) -> None:
        keys = max(FIRST_LAYER_KEYS, self._keys)
        n = keys * BITS_PER_KEY
        self._layers.append((bytearray(n + 7 >> 3), n))
        self._room = keys

    def __contains__(self, key: bytes) -> bool:
        h = int.from_bytes(key, "little")
        for bits, n in self._layers:
            for shift in _SHIFTS:
                p = (h >> shift & 0xFFFFFFFF) % n
                if not bits[p >> 3] >> (p & 7) & 1:
                    break
            else:
                return True
        return False
