"""`eventfold migrate`."""

from __future__ import annotations

import argparse

from rich.console import Console

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, UsageError, emit, require_store


def migrate(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.app import open_app
    from eventfold.application.migrate import migrate as run_migrate
    from eventfold.reports.migrate import render_migrate, verdict

    source_backend, target_backend = getattr(args, "from"), args.to
    if source_backend == target_backend == "postgres":
        raise UsageError("migrate copies between backends: --from and --to are both postgres")
    target_store = args.to_store or (args.store if target_backend == "postgres" else None)
    if target_store is None:
        raise UsageError("--to-store DIR is required: the file store to copy into")
    if source_backend == "file":
        require_store(args.store)
    source = open_app(args.store, source_backend)
    try:
        target = open_app(target_store, target_backend)
        try:
            report = run_migrate(
                source, source.state_dir or args.store, target, target.state_dir or target_store,
                source_name=_name(source_backend, source.state_dir or args.store),
                target_name=_name(target_backend, target.state_dir or target_store),
            )
        finally:
            target.close()
    finally:
        source.close()
    emit(args, out, report.to_json, lambda: render_migrate(report), lambda: verdict(report))
    return EXIT_OK if report.matches else EXIT_MISMATCH


def _name(backend: str, store: str) -> str:
    """How the report (and the resume tracking record) names a side."""
    if backend == "postgres":
        import os

        schema = os.environ.get("POSTGRES_SCHEMA") or "public"
        return (f"postgres://{os.environ.get('POSTGRES_HOST')}:"
                f"{os.environ.get('POSTGRES_PORT') or 5432}/"
                f"{os.environ.get('POSTGRES_DBNAME')}/{schema}")  # fmt: skip
    return f"file:{store}"
