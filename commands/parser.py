"""The argument parser of every command: usage errors in eventfold's one error form.

Every error line on stderr reads ``eventfold: LABEL: message``. A usage error
(an unknown, missing or malformed argument) prints the command's usage line,
then ``eventfold: usage: message``, and exits with 2. An unknown option or
command name is named, with the closest known ones (``did you mean``), before
any other complaint: ``verify --sorce x`` is about ``--sorce``, not about the
missing ``--source``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from eventfold.infra.errors import EXIT_USAGE, EventfoldError

USAGE_LABEL = "usage"
CUTOFF, NEAR = 0.6, 0.05  # suggest words this similar (difflib's ratio), near the closest


def error_line(label: str, message: str) -> str:
    """The one line of an error: ``eventfold: LABEL: message`` (the message on one line,
    any other control character in it, such as one in a category's name, written as an
    escape: ``\\x1b``)."""
    text = " ".join(line.strip() for line in message.splitlines())
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return f"eventfold: {label}: {text}"


def exit_with(error: EventfoldError) -> NoReturn:
    """Report ``error`` as its one line on stderr and exit with its code (before ``main`` runs
    a command, e.g. while the parser's defaults are read from the environment)."""
    sys.stderr.write(error_line(error.label, str(error)) + "\n")
    raise SystemExit(error.exit_code)


def suggestion(word: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` with the closest of ``known``, or an empty string."""
    from difflib import SequenceMatcher  # a usage error only

    scored = sorted(((SequenceMatcher(None, word, k).ratio(), k) for k in set(known)), reverse=True)
    if not scored or scored[0][0] < CUTOFF:
        return ""
    best = scored[0][0]
    close = sorted(k for score, k in scored[:3] if score >= max(CUTOFF, best - NEAR))
    return f" (did you mean {' or '.join(close)}?)"


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with eventfold's usage errors (its sub-commands too)."""

    _argv: list[str] | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._command_parser(parsed)._unrecognized(extras, also=self)
        return parsed

    def error(self, message: str) -> NoReturn:
        """An unknown option first (the complaint that explains the others), then ``message``."""
        unknown = self._unknown_options(self._argv or [])
        if unknown:
            self._unrecognized(unknown)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, error_line(USAGE_LABEL, message) + "\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside an argument's choices (a command name too), with the closest ones."""
        if action.choices is None or value in action.choices:
            return
        known = [str(c) for c in action.choices]
        if isinstance(action, argparse._SubParsersAction):
            what, among = f"unknown command {value}", "the commands"
        else:
            name = "/".join(action.option_strings) or action.dest
            what, among = f"argument {name}: invalid choice {value!r}", "choose from"
        message = f"{what}{suggestion(str(value), known)}; {among}: {', '.join(known)}"
        raise argparse.ArgumentError(None, message)

    def _unrecognized(
        self, extras: list[str], also: argparse.ArgumentParser | None = None
    ) -> NoReturn:
        """Name the first unrecognized argument, with the closest options of this command
        (and of ``also``, the top-level parser)."""
        options = [o for o in extras if _looks_like_option(o)]
        if not options:
            self.print_usage(sys.stderr)
            self.exit(
                EXIT_USAGE, error_line(USAGE_LABEL, f"unrecognized argument {extras[0]!r}") + "\n"
            )
        word = options[0].partition("=")[0]
        known = list(self._option_string_actions)
        if also is not None and also is not self:
            known += list(also._option_string_actions)
        hint = suggestion(word, known) or f" ({self.prog} --help lists the options)"
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, error_line(USAGE_LABEL, f"unrecognized option {word}{hint}") + "\n")

    def _unknown_options(self, argv: list[str]) -> list[str]:
        """The option-like words of ``argv`` this parser does not know (up to ``--``)."""
        commands = any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        unknown = []
        for word in argv:
            if word == "--" or (commands and not word.startswith("-")):
                break  # the command's own arguments are its parser's to judge
            if _looks_like_option(word) and not self._knows(word.partition("=")[0]):
                unknown.append(word)
        return unknown

    def _knows(self, option: str) -> bool:
        if option in self._option_string_actions:
            return True
        if not option.startswith("--"):  # a cluster of short options: its first one
            return option[:2] in self._option_string_actions
        matches = [o for o in self._option_string_actions if o.startswith(option)]
        return self.allow_abbrev and len(matches) == 1

    def _command_parser(self, parsed: argparse.Namespace) -> Parser:
        """The sub-command's parser that ``parsed`` chose, or this one."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest or "", None) or "")
                if isinstance(chosen, Parser):
                    return chosen
        return self


def _looks_like_option(word: str) -> bool:
    if not word.startswith("-") or word == "-":
        return False
    try:
        float(word)
    except ValueError:
        return True
    return False  # a negative number
