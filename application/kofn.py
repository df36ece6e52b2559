"""``K/N`` on the command line: one of N processes sharing a job (a partition, a worker)."""

from __future__ import annotations

import re

_SPEC = re.compile(r"^(\d+)/(\d+)$")


def k_of_n(text: str, noun: str) -> tuple[int, int]:
    """``(K, N)`` of ``K/N`` with 1 <= K <= N; ValueError names the ``noun`` and the fault."""
    match = _SPEC.match(text.strip())
    if not match:
        msg = f"{noun} {text!r}: expected K/N, such as 1/2"
        raise ValueError(msg)
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        msg = f"{noun} {text!r}: K must be between 1 and N"
        raise ValueError(msg)
    return index, count
