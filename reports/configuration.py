"""The configuration file in effect, as ``eventfold status`` shows it."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from eventfold.reports.text import plain


def configuration_json(
    path: str | None, values: Mapping[str, object], overridden: Mapping[str, str]
) -> dict[str, object] | None:
    """The ``configuration`` key of ``status --json``: None when there is no file."""
    if path is None:
        return None
    return {"file": path, "values": dict(values), "overridden": dict(overridden)}


def render_configuration(
    where: str, values: Mapping[str, object], overridden: Mapping[str, str]
) -> RenderableType:
    """Each value the file sets, and what overrides it in this run (``--store``, ...)."""
    if not where:
        return Text(
            "configuration file: none (eventfold.toml, or [tool.eventfold] in "
            "pyproject.toml, in the working directory)",
            style="dim",
        )
    table = Table(title=plain(f"configuration {where}"), title_justify="left")
    table.add_column("key")
    table.add_column("value")
    table.add_column("in this run")
    for key, value in values.items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        note = f"overridden by {overridden[key]}" if key in overridden else "in effect"
        table.add_row(key, plain(shown), note)
    if not values:
        table.caption = "the file sets no value"
    return table
