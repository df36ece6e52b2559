"""`eventfold check`, `status` and `demo`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from eventfold.commands.common import EXIT_DAMAGED, EXIT_OK, UsageError, require_store
from eventfold.reports.check import render_check


def check(args: argparse.Namespace, out: Console) -> int:
    from eventfold.infra.check import check_store

    report = check_store(args.store, repair=args.repair)
    if args.json:
        doc: dict[str, Any] = {
            "store": report.path,
            "status": "ok" if report.sound else "damaged",
            "logs": [asdict(log) | {"sound": log.sound} for log in report.logs],
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        out.print(render_check(report))
    if report.sound:
        return EXIT_OK
    err = Console(stderr=True, highlight=False)
    for log in report.logs:
        for p in log.problems:
            err.print(
                Text(f"eventfold: damaged store: {p.file}: byte offset {p.offset}: {p.reason}"),
                soft_wrap=True,
            )
        if not log.problems and not log.sound:
            err.print(
                Text(
                    f"eventfold: damaged index: {log.path}: {log.index} "
                    "(eventfold check --repair rebuilds it)"
                ),
                soft_wrap=True,
            )
    return EXIT_DAMAGED


def status(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.app import open_store
    from eventfold.application.status import store_status
    from eventfold.reports.projection import render_status

    require_store(args.store)
    app = open_store(args.store)
    try:
        status = store_status(app, app.state_dir or os.path.abspath(args.store))
    finally:
        app.close()
    if args.json:
        sys.stdout.write(json.dumps(status.to_json(), ensure_ascii=False) + "\n")
    else:
        out.print(render_status(status))
    return EXIT_OK


def demo(args: argparse.Namespace, out: Console) -> int:
    from eventfold.storedemo import DemoStep, run_demo

    store = args.dir or tempfile.mkdtemp(prefix="eventfold-demo-")
    if os.path.exists(store) and os.listdir(store):
        raise UsageError(f"{store}: the demo needs a new or empty directory")
    out.print(Panel(Text(f"eventfold store demo in {store}"), expand=False))

    def show(step: DemoStep) -> None:
        out.print(Text(step.title, style="bold"))
        for line in step.lines:
            out.print(Text(f"   {line}"), soft_wrap=True)
        if step.report is not None:
            out.print(render_check(step.report))

    proved = run_demo(store, show)
    verdict = "every acknowledged commit survived" if proved else "the store is NOT intact"
    out.print(Panel(Text(verdict, style="bold green" if proved else "bold red"), expand=False))
    out.print(Text(f"explore it: eventfold check --store {store}"))
    return EXIT_OK if proved else EXIT_DAMAGED
