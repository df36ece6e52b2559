"""Showing untrusted text safely: no markup, control characters made visible."""

from __future__ import annotations

from rich.text import Text


def visible(value: str) -> str:
    """``value`` with every non-printable character written as an escape (``\\x1b``)."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in value)


def plain(value: str, style: str = "") -> Text:
    """A Text of untrusted ``value``: never parsed as markup, controls made visible."""
    return Text(visible(value), style=style)
