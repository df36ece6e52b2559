"""The import rules of docs/ARCHITECTURE.md, checked over every module of the package.

Each layer names the eventfold modules it may import (a prefix allows a whole
package); ``domain`` may import only the standard library and
``eventsourcing.domain``. Imports under ``if TYPE_CHECKING:`` count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import eventfold

PACKAGE = Path(eventfold.__file__).parent

# layer -> the eventfold modules it may import (besides its own package)
ALLOWED: dict[str, tuple[str, ...]] = {
    "domain": (),
    "infra": (),
    "projections": ("eventfold.domain", "eventfold.infra.errors", "eventfold.infra.backends.base"),
    "application": ("eventfold.domain", "eventfold.infra", "eventfold.projections"),
    "reports": (
        "eventfold.application",
        "eventfold.projections",
        "eventfold.infra.errors",
        "eventfold.infra.filestore.check",
    ),
    "commands": (
        "eventfold.application",
        "eventfold.reports",
        "eventfold.projections.registry",
        "eventfold.projections.base",
        "eventfold.infra.errors",
    ),
    "cli": ("eventfold.commands", "eventfold.infra.errors", "eventfold.infra.gc_policy"),
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ".venv" not in p.parts)


def layer_of(path: Path) -> str | None:
    first = path.relative_to(PACKAGE).parts[0]
    name = first.removesuffix(".py")
    return name if name in ALLOWED else None


def imported(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def breaks(layer: str, module: str) -> bool:
    own = f"eventfold.{layer}"
    if layer == "domain":
        top = module.split(".")[0]
        return not (top in sys.stdlib_module_names or module == "eventsourcing.domain")
    if not module.startswith("eventfold.") or module == own or module.startswith(own + "."):
        return False
    return not any(module == a or module.startswith(a + ".") for a in ALLOWED[layer])


def test_every_layer_imports_only_what_it_may() -> None:
    checked, broken = 0, []
    for path in modules():
        layer = layer_of(path)
        if layer is None:
            continue
        checked += 1
        for line, module in imported(path):
            if breaks(layer, module):
                broken.append(f"{path.relative_to(PACKAGE)}:{line}: imports {module}")
    assert checked > 80, "the package's modules were not found"
    assert broken == []


@pytest.mark.parametrize(
    ("layer", "module", "broken"),
    [
        ("domain", "eventsourcing.application", True),
        ("domain", "eventfold.infra", True),
        ("domain", "decimal", False),
        ("infra", "eventfold.application.app", True),
        ("commands", "eventfold.infra.backends", True),
        ("commands", "eventfold.application.ingest", False),
        ("projections", "eventfold.application", True),
    ],
)
def test_the_rule_catches_a_wrong_import(layer: str, module: str, broken: bool) -> None:
    assert breaks(layer, module) is broken
