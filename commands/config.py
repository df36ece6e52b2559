"""The configuration file: defaults for the command line, read from the working directory.

``eventfold.toml`` (top-level keys), or else a ``[tool.eventfold]`` table in
``pyproject.toml``; when both exist, ``eventfold.toml`` is the one in effect
and ``pyproject.toml`` is not read. Keys: ``store``, ``backend``,
``projection`` (strings) and ``sources`` (a list of strings). An unknown key,
a wrong type or bad TOML is a ``ConfigurationError`` naming the file, the
line when it is known, and the key (exit 2).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.choices import BACKENDS
from eventfold.infra.errors import UsageError

CONFIG_FILE = "eventfold.toml"
PYPROJECT = "pyproject.toml"
TYPES: dict[str, str] = {  # key -> what it must be
    "store": "a string",
    "backend": "a string",
    "projection": "a string",
    "sources": "a list of strings",
}


class ConfigurationError(UsageError):
    """The configuration file cannot be used (exit code 2)."""

    label = "bad configuration"


@dataclass(frozen=True)
class Configuration:
    """The configuration in effect: its file (None when there is none) and its values."""

    path: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file's name as a user would type it (it is in the working directory)."""
        return os.path.basename(self.path) if self.path else ""

    @property
    def where(self) -> str:
        """Where the values are: ``eventfold.toml`` or ``pyproject.toml [tool.eventfold]``."""
        return f"{PYPROJECT} [tool.eventfold]" if self.name == PYPROJECT else self.name


def load_configuration(directory: str = ".") -> Configuration:
    """The configuration file in ``directory``, checked, or an empty configuration."""
    own = os.path.join(directory, CONFIG_FILE)
    if os.path.isfile(own):
        text = _read(own)
        return Configuration(os.path.abspath(own), _checked(own, text, _parse(own, text), ""))
    pyproject = os.path.join(directory, PYPROJECT)
    if os.path.isfile(pyproject):
        text = _read(pyproject)
        tool = _parse(pyproject, text).get("tool", {})
        table = tool.get("eventfold") if isinstance(tool, dict) else None
        if table is None:
            return Configuration()
        where = "tool.eventfold"
        if not isinstance(table, dict):
            raise _error(pyproject, _line(text, "eventfold", "tool"), f"[{where}] must be a table")
        return Configuration(os.path.abspath(pyproject), _checked(pyproject, text, table, where))
    return Configuration()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"{os.path.basename(path)}: cannot be read: {e}") from None


def _parse(path: str, text: str) -> dict[str, Any]:
    import tomllib  # a configuration file is there

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        line = int(found.group(1)) if found else None
        reason = message[: found.start()] if found else message
        raise _error(path, line, f"not valid TOML: {reason}") from None


def _checked(path: str, text: str, table: dict[str, Any], where: str) -> dict[str, Any]:
    prefix = f"[{where}] " if where else ""
    for key, value in table.items():
        line = _line(text, key, where)
        if key not in TYPES:
            known = ", ".join(TYPES)
            raise _error(path, line, f"{prefix}key {key!r}: unknown key (known: {known})")
        good = (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            if key == "sources"
            else isinstance(value, str) and value != ""
        )
        if not good:
            shown = f"{value!r}" if not isinstance(value, dict) else "a table"
            raise _error(path, line, f"{prefix}key {key!r}: expected {TYPES[key]}, not {shown}")
        if key == "backend" and value not in BACKENDS:
            choices = ", ".join(BACKENDS)
            raise _error(path, line, f"{prefix}key 'backend': {value!r} is not one of {choices}")
    return dict(table)


def _line(text: str, key: str, where: str) -> int | None:
    """The line where ``key`` is set in table ``where`` ("" for the top level), when a
    simple search finds it (a key set with a dotted name or inline is not found)."""
    table = ""
    name = re.escape(key)
    assignment = re.compile(rf"""\s*(?:{name}|"{name}"|'{name}')\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", line)
        if header:
            table = header.group(1)
            if table == (f"{where}.{key}" if where else key):
                return number
        elif table == where and assignment.match(line):
            return number
    return None


def _error(path: str, line: int | None, message: str) -> ConfigurationError:
    at = f"line {line}: " if line else ""
    return ConfigurationError(f"{os.path.basename(path)}: {at}{message}")
