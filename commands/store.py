"""`eventfold check`, `status` and `demo`."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from eventfold.commands.common import (
    EXIT_DAMAGED,
    EXIT_MISMATCH,
    EXIT_OK,
    UsageError,
    emit,
    open_application,
)
from eventfold.reports.check import render_check
from eventfold.reports.text import command_line, program, shortest_path


def check(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.admin.check import check as check_store
    from eventfold.infra.backends import backend_name, checks_files

    if not checks_files(backend_name(args.backend)):
        raise UsageError("check reads the file store's log files; PostgreSQL keeps its own "
                         "integrity (use the database's tools)")  # fmt: skip
    report = check_store(args.store, repair=args.repair)
    if args.json:
        doc: dict[str, Any] = {
            "store": report.path,
            "status": "ok" if report.sound else "damaged",
            "logs": [asdict(log) | {"sound": log.sound} for log in report.logs],
            "derived": [asdict(d) for d in report.derived],
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
    for derived in report.derived:
        for p in derived.problems if not derived.sound else []:
            err.print(Text(f"eventfold: damaged {derived.kind}: {p.file}: byte offset {p.offset}: "
                           f"{p.reason} (eventfold check --repair discards it; it is rebuilt "
                           "from the log)"), soft_wrap=True)  # fmt: skip
    return EXIT_DAMAGED


def status(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.admin.status import store_status
    from eventfold.reports.projection import render_status

    app = open_application(args)
    try:
        status = store_status(app, app.state_dir or os.path.abspath(args.store))
    finally:
        app.close()
    emit(args, out, status.to_json, lambda: render_status(status))
    return EXIT_OK


def demo(args: argparse.Namespace, out: Console) -> int:
    from eventfold.application.demo.story import Step, run_demo
    from eventfold.application.proving.verify import VerifyReport
    from eventfold.reports.verify import render_verify

    directory = args.dir or tempfile.mkdtemp(prefix="eventfold-demo-")
    if os.path.exists(directory) and os.listdir(directory):
        raise UsageError(f"{directory}: the demo needs a new or empty directory")
    os.makedirs(directory, exist_ok=True)
    out.print(Panel(Text(f"eventfold demo in {directory}"), expand=False))

    store = os.path.join(directory, "store")

    def show(step: Step) -> None:
        out.print(Text(step.title, style="bold"))
        for line in step.lines:
            out.print(Text(f"   {line}"), soft_wrap=True)
        if isinstance(step.result, VerifyReport):
            out.print(render_verify(step.result, store_options=["--store", store]))

    proved = run_demo(directory, show)
    verdict = (
        "the totals are proved against the bus archive" if proved
        else "the story did not end as it should: the totals do NOT match"
    )  # fmt: skip
    out.print(Panel(Text(verdict, style="bold green" if proved else "bold red"), expand=False))
    out.print(Text("explore it:"))
    archive = os.path.join(directory, "events.jsonl")
    for suggested in (("status", "--store", store),
                      ("verify", "--store", store, "--source", archive, "--all"),
                      ("rebuild", "--store", store, "--projection", "hourly_totals"),
                      ("check", "--store", store)):  # fmt: skip
        out.print(Text(f"   {command_line(*suggested)}"), soft_wrap=True)
    activate = os.path.join(os.path.dirname(sys.argv[0]), "activate")
    if program() != "eventfold" and os.path.isfile(activate):
        out.print(Text(f"   (to type just 'eventfold': . {shlex.quote(shortest_path(activate))})"),
                  soft_wrap=True)  # fmt: skip
    return EXIT_OK if proved else EXIT_MISMATCH
