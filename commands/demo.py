"""`eventfold demo`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from eventfold.commands.common import EXIT_MISMATCH, EXIT_OK, UsageError
from eventfold.commands.options import Commands, command
from eventfold.reports.text import command_line, program, shortest_path


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "demo",
        "the whole story: ingest with a crash, catch up, verify, reconcile, verify",
        "example: eventfold demo --dir /tmp/eventfold-demo",
    )
    parser.add_argument("--dir", metavar="DIR", help="where to create the demo store")
    parser.set_defaults(run=demo)


def demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.application.demo.story import Step, run_demo
    from eventfold.application.proving.verify import VerifyReport
    from eventfold.reports.fold import Folded
    from eventfold.reports.verify import render_verify

    directory = args.dir or tempfile.mkdtemp(prefix="eventfold-demo-")
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise UsageError(f"{directory}: a file; the demo needs a new or empty directory")
    if os.path.exists(directory) and os.listdir(directory):
        raise UsageError(f"{directory}: the demo needs a new or empty directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{directory}: cannot create the directory ({e.strerror or e})") from None
    out.print(Panel(Text(f"eventfold demo in {directory}"), expand=False))

    store = os.path.join(directory, "store")

    def show(step: Step) -> None:
        out.print(Text(step.title, style="bold"))
        for line in step.lines:  # folded to the screen, never inside a number
            out.print(Folded(Text(line), indent=3), crop=False)
        if isinstance(step.result, VerifyReport):
            out.print(render_verify(step.result, store_options=["--store", store]), crop=False)

    proved = run_demo(directory, show)
    verdict = (
        "the totals are proved against the bus archive"
        if proved
        else "the story did not end as it should: the totals do NOT match"
    )
    out.print(Panel(Text(verdict, style="bold green" if proved else "bold red"), expand=False))
    out.print(Text("explore it:"))
    archive = os.path.join(directory, "events.jsonl")
    for suggested in (
        ("status", "--store", store),
        ("verify", "--store", store, "--source", archive, "--all"),
        ("rebuild", "--store", store, "--projection", "hourly_totals"),
        ("check", "--store", store),
    ):
        out.print(Text(f"   {command_line(*suggested)}"), soft_wrap=True)
    activate = os.path.join(os.path.dirname(sys.argv[0]), "activate")
    if program() != "eventfold" and os.path.isfile(activate):
        out.print(
            Text(f"   (to type just 'eventfold': . {shlex.quote(shortest_path(activate))})"),
            soft_wrap=True,
        )
    return EXIT_OK if proved else EXIT_MISMATCH
