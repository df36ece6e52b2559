"""What ``rebuild --compare`` found: the new generation against the one in use."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.projecting.shadow import Comparison
from eventfold.reports.text import plain, plural
from eventfold.reports.verify import difference_table


def render_comparison(comparison: Comparison | None, key_names: tuple[str, ...]) -> RenderableType:
    """Nothing more than one line when the two are equal; else the rows that differ
    (Δ is new minus current) and whether the new generation is in use."""
    if comparison is None:
        return plain("compare: no generation in use with a verified snapshot; switched")
    c = comparison
    at = f"at position {c.position:,}"
    if c.equal:
        return Text(
            f"compare: the new generation {c.new_generation} equals {c.current_generation} "
            f"{at}; switched",
            style="green",
        )
    parts: list[RenderableType] = []
    if c.by_rows:
        title = f"{plural(len(c.differences), 'row')} the new code changes {at}"
        parts.append(difference_table(c.differences, title, key_names, sides=("current", "new")))
    else:
        parts.append(
            plain(
                f"compare: the checksums differ {at} (current {c.current_checksum}, new "
                f"{c.new_checksum}); rows cannot be compared: {c.why_checksum}"
            )
        )
    if c.switched:
        outcome = f"switched to {c.new_generation} (--switch)"
    else:
        outcome = (
            f"not switched: {c.current_generation} stays in use and {c.new_generation} is kept "
            "beside it (eventfold generations); rebuild --compare --switch switches"
        )
    parts.append(Text(f"compare: the new generation differs; {outcome}", style="bold yellow"))
    return Group(*parts)
