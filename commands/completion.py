"""`eventfold completion`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from eventfold.commands.common import EXIT_OK
from eventfold.commands.options import Commands, command

SHELLS = ("bash", "zsh", "fish")


def register(commands: Commands) -> None:
    parser = command(
        commands,
        "completion",
        "print a shell completion script (bash, zsh or fish)",
        "The script completes commands, options, their choices and file names.\n"
        "examples:\n"
        "  mkdir -p ~/.local/share/bash-completion/completions\n"
        "  eventfold completion bash > ~/.local/share/bash-completion/completions/eventfold\n"
        "  mkdir -p ~/.zfunc    # then in ~/.zshrc: fpath=(~/.zfunc $fpath)\n"
        "  eventfold completion zsh > ~/.zfunc/_eventfold\n"
        "  mkdir -p ~/.config/fish/completions\n"
        "  eventfold completion fish > ~/.config/fish/completions/eventfold.fish\n",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(run=completion)


def completion(args: argparse.Namespace, out: Console, err: Console) -> int:
    from eventfold.commands.completion_scripts import describe, script

    parser: argparse.ArgumentParser = args.parser
    sys.stdout.write(script(describe(parser, projection_names()), args.shell))
    return EXIT_OK


def projection_names() -> tuple[str, ...]:
    """The projections known here (built-in, then installed entry points)."""
    from eventfold.projections.registry import BUILTIN, available

    try:
        return tuple(available())
    except Exception:  # a broken plugin: complete the built-in ones
        return tuple(BUILTIN)
