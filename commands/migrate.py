"""`eventfold migrate`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, UsageError, emit


def migrate(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.admin.migrate import migrate as run_migrate
    from eventfold.application.app import open_app
    from eventfold.infra.backends import is_shared
    from eventfold.reports.migrate import render_migrate, verdict

    source_backend, target_backend = getattr(args, "from"), args.to
    if source_backend == target_backend and is_shared(target_backend):
        raise UsageError(f"migrate copies between backends: --from and --to are both "
                         f"{target_backend}, one shared database")  # fmt: skip
    target_store = args.to_store or (args.store if is_shared(target_backend) else None)
    if target_store is None:
        raise UsageError("--to-store DIR is required: the file store to copy into")
    source = open_app(args.store, source_backend, create=False)
    try:
        target = open_app(target_store, target_backend)
        try:
            report = run_migrate(
                source, source.state_dir, target, target.state_dir,
                source_name=source.backend.describe(), target_name=target.backend.describe(),
            )
        finally:
            target.close()
    finally:
        source.close()
    emit(args, out, report.to_json, lambda: render_migrate(report), lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH
