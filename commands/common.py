"""What every command shares: exit codes, usage errors, the store argument."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType

if TYPE_CHECKING:
    from eventfold.application.app import Eventfold

from eventfold.commands.options import DEFAULT_STORE
from eventfold.infra.errors import EXIT_DAMAGED, EXIT_USAGE, UsageError

EXIT_OK, EXIT_MISMATCH = 0, 1
__all__ = ["EXIT_DAMAGED", "EXIT_MISMATCH", "EXIT_OK", "EXIT_USAGE", "UsageError"]


def given_store_options(args: argparse.Namespace) -> list[str]:
    """The ``--store``/``--backend`` options of this run, for the commands a report suggests."""
    options = [] if args.store == DEFAULT_STORE else ["--store", args.store]
    backend = getattr(args, "backend", None)
    return options + (["--backend", backend] if backend else [])


def absolute_store_options(args: argparse.Namespace) -> list[str]:
    """The store this run used as ``--store ABSOLUTE_DIR`` (and its ``--backend``), for the
    commands of a report read elsewhere (the HTML page, ``--json``)."""
    backend = getattr(args, "backend", None)
    return ["--store", os.path.abspath(args.store)] + (["--backend", backend] if backend else [])


def open_application(
    args: argparse.Namespace,
    *,
    create: bool = False,
    snapshot_interval: int | None = None,
    writes: bool = False,
) -> Eventfold:
    """The application over the backend the arguments choose (``--backend``, ``--store``).

    A file store must exist unless ``create`` (ingest creates one). ``writes``: this
    command writes to the store, so a read-only one is refused up front.
    """
    from eventfold.application.app import open_app

    return open_app(
        args.store,
        getattr(args, "backend", None),
        snapshot_interval=snapshot_interval,
        create=create,
        writes=args.command if writes else None,
    )


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
        out.print(rendered(), crop=False)  # a figure wider than the screen is never cut
