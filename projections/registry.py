"""Finding projections: built-in, entry points (``eventfold.projections``), ``module:Class``."""

from __future__ import annotations

import importlib
from typing import Any

from eventfold.infra.errors import EventfoldError
from eventfold.projections.base import Projection
from eventfold.projections.builtin import CategoryTotals, HourlyTotals

BUILTIN: dict[str, type[Projection[Any]]] = {
    CategoryTotals.name: CategoryTotals,
    HourlyTotals.name: HourlyTotals,
}
DEFAULT = CategoryTotals.name


class UnknownProjectionError(LookupError, EventfoldError):
    """No projection by that name (exit code 2)."""


def entry_points(group: str) -> Any:
    """The installed entry points of ``group`` (``importlib.metadata`` is imported here, when
    needed: importing it and reading every package's metadata takes a while)."""
    from importlib import metadata

    return metadata.entry_points(group=group)


def available() -> dict[str, type[Projection[Any]]]:
    """Every projection by name: built-in, then those of installed entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group="eventfold.projections"):
        if ep.name not in found:
            found[ep.name] = _checked(ep.load(), ep.value)
    return found


def load_projection(spec: str) -> Projection[Any]:
    """A projection named ``spec``, or the class at ``module:Class``.

    A built-in name is found without looking at the entry points (a built-in name
    wins over an entry point's anyway).
    """
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            msg = f"cannot load projection {spec!r}: {e}"
            raise UnknownProjectionError(msg) from None
        return _checked(cls, spec)()
    projections = available()
    if spec not in projections:
        msg = f"no projection named {spec!r} (known: {', '.join(sorted(projections))})"
        raise UnknownProjectionError(msg)
    return projections[spec]()


def _checked(cls: Any, where: str) -> type[Projection[Any]]:
    if not (isinstance(cls, type) and issubclass(cls, Projection)):
        msg = f"{where} is not an eventfold Projection subclass"
        raise UnknownProjectionError(msg)
    return cls


def stored_projection(name: str) -> Projection[Any]:
    """A stand-in for a projection known only by the ``name`` its snapshots are kept
    under (its class cannot be loaded here): enough to list them and their checksums;
    it reads no state."""
    stand_in = type("StoredProjection", (Projection,), {"name": name, "__module__": __name__})
    projection: Projection[Any] = stand_in()
    return projection
