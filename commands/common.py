"""What every command shares: exit codes, usage errors, the store argument."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console, RenderableType

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or unusable input: exit 2."""


def require_store(store: str) -> None:
    if not os.path.isdir(store):
        raise UsageError(f"{store}: no such store (eventfold ingest creates one)")


def emit(
    args: argparse.Namespace,
    out: Console,
    document: Callable[[], Any],
    rendered: Callable[[], RenderableType],
    quiet: Callable[[], RenderableType] | None = None,
) -> None:
    """Exactly one JSON document with ``--json``; else the one-line result with
    ``--quiet`` (when the command has one); else the full report."""
    if args.json:
        sys.stdout.write(json.dumps(document(), ensure_ascii=False) + "\n")
    elif quiet is not None and getattr(args, "quiet", False):
        out.print(quiet(), soft_wrap=True)
    else:
        out.print(rendered())
