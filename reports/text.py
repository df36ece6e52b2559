"""Showing untrusted text safely: no markup, control characters made visible."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import unicodedata
from collections.abc import Iterable

from rich.text import Text


def visible(value: str) -> str:
    """``value`` with every non-printable character written as an escape (``\\x1b``)."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in value)


def plain(value: str, style: str = "") -> Text:
    """A Text of untrusted ``value``: never parsed as markup, controls made visible."""
    return Text(visible(value), style=style)


def program() -> str:
    """How to run eventfold again, as this process was started (for commands we suggest).

    ``eventfold`` when that name on ``PATH`` is this program; else the path it was
    started by (``.venv/bin/eventfold`` under ``make demo``), or ``python -m eventfold``.
    """
    started = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not started or started.endswith(".py"):  # python -m eventfold, or embedded
        return f"{shlex.quote(shortest_path(sys.executable))} -m eventfold"
    found = shutil.which("eventfold")
    with contextlib.suppress(OSError):
        if found and os.path.samefile(found, started):
            return "eventfold"
    return shlex.quote(shortest_path(started))


def command_line(*args: str) -> str:
    """A command line a user can paste: ``program()`` then ``args``, quoted for a shell."""
    return " ".join([program(), *map(shlex.quote, args)])


def shortest_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    if relative.startswith(".."):
        return absolute
    return relative if os.sep in relative else os.path.join(os.curdir, relative)


def grouped(number: str | int) -> str:
    """An integer or exact decimal string with thousands separators (``1,234,567.5``);
    the digits are kept exactly (no float). Anything else is returned as it is."""
    text = str(number)
    sign = text[:1] if text[:1] in "+-" else ""
    whole, dot, fraction = text[len(sign) :].partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()):
        return text
    whole = whole.lstrip("0") or "0"
    head = len(whole) % 3 or 3  # grouped as text: any number of digits (int() stops at 4,300)
    groups = [whole[:head], *(whole[i : i + 3] for i in range(head, len(whole), 3))]
    return f"{sign}{','.join(groups)}{dot}{fraction}"


def signed(number: str | int) -> str:
    """``grouped(number)`` with its sign: ``+1,234.5``, ``-3``, ``0``."""
    text = grouped(number)
    return text if text.startswith(("-", "+")) or text == "0" else "+" + text


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 event``, ``2 events``, ``1,234 categories`` (``nouns`` when not ``noun + "s"``)."""
    many = nouns if nouns is not None else noun + "s"
    return f"{count:,} {noun if count == 1 else many}"


def look_alikes(names: Iterable[str]) -> set[str]:
    """The names that another of ``names`` looks like: equal once both are in Unicode's
    composed form (NFC) but not as written (``café`` written two ways)."""
    forms: dict[str, set[str]] = {}
    for name in names:
        forms.setdefault(unicodedata.normalize("NFC", name), set()).add(name)
    return {name for group in forms.values() if len(group) > 1 for name in group}


def told_apart(name: str) -> str:
    """A look-alike name with its code points shown: ``café (cafe\\u0301)``."""
    return f"{name} ({ascii(name)[1:-1]})"
