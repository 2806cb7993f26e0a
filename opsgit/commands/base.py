"""What a command declares once: its name, help, arguments and the function that runs it.

`cli.py` builds the `opsgit` parser from these declarations and `opsgit/tasks.py` builds the invoke
tasks from the same ones, so the two surfaces cannot drift apart. A command module must stay cheap
to import (its heavy imports live inside its functions): `opsgit --help` imports every one. The
declarations are NamedTuples, which are frozen values too and, unlike dataclasses, import nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

Kind = Literal["str", "int", "bool", "false", "list", "path", "duration", "remainder"]


class Arg(NamedTuple):
    """One option (`--env`, `-n`) or positional (`address`) of a command."""

    name: str
    help: str
    kind: Kind = "str"
    default: Any = None
    required: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    dest: str | None = None
    nargs: str | None = None  # positionals: "?" optional, "+" one or more
    group: str | None = None  # options of one group exclude each other

    @property
    def positional(self) -> bool:
        return not self.name.startswith("-")

    @property
    def attribute(self) -> str:
        return self.dest or self.name.lstrip("-").replace("-", "_")

    @property
    def value_default(self) -> Any:
        if self.kind == "bool":
            return bool(self.default)
        if self.kind == "false":
            return True if self.default is None else self.default
        if self.kind == "list":
            return list(self.default or [])
        return self.default

    def convert(self, text: Any) -> Any:
        """A value as typed (a string, or a list of them) turned into what the command takes."""
        if text is None or self.kind in ("bool", "false", "remainder"):
            return text
        if self.kind == "list":
            return [self.parse(item) for item in text]
        return self.parse(text)

    def parse(self, text: str) -> Any:
        """One typed value; argparse calls this for each occurrence."""
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if self.kind == "path":
            return Path(text)
        if self.kind == "duration":
            return duration(str(text))
        if self.choices and text not in self.choices:
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {', '.join(self.choices)})")
        return text


class Command(NamedTuple):
    """A command: `run` receives the parsed arguments (attributes named after the arguments)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int] | None = None
    args: tuple[Arg, ...] = ()
    description: str | None = None
    subcommands: tuple[Command, ...] = ()
    task: bool = True
    """Also an invoke task (`invoke plan ...`); host-side commands that take a command line are not."""
    check: Callable[[argparse.Namespace], str | None] | None = None
    """Argument combinations a parser cannot express: returns the usage error, or None."""
    go_flags: bool = False
    """Also takes Go's flag spellings (`-timeout=2s`, `-shell=false`), for a command that stands in
    for a Go tool whose users type them (`consul lock`)."""


def duration(text: str) -> float:
    from opsgit.consul.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use 30s, 500ms, 2m)") from None


def run_parsed(command: Command, args: argparse.Namespace) -> int:
    """Run a leaf command (or the subcommand `args` names)."""
    for sub in command.subcommands:
        if getattr(args, f"{command.name}_command", None) == sub.name:
            return run_parsed(sub, args)
    assert command.run is not None, command.name
    return command.run(args)


def namespace(command: Command, values: dict[str, Any]) -> argparse.Namespace:
    """The arguments of `command` from raw values keyed by attribute (as invoke hands them over),
    converted and defaulted as argparse would."""
    parsed = argparse.Namespace()
    for arg in command.args:
        raw = values.get(arg.attribute)
        if arg.kind == "false":
            setattr(parsed, arg.attribute, not raw if raw is not None else arg.value_default)
        elif raw is None or (raw == [] and arg.kind == "list"):
            setattr(parsed, arg.attribute, arg.value_default)
        else:
            setattr(parsed, arg.attribute, arg.convert(raw))
    return parsed


def leaves(commands: Sequence[Command], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Command]]:
    """Every runnable command with its path of names (`("state", "rm")`)."""
    found: list[tuple[tuple[str, ...], Command]] = []
    for command in commands:
        path = (*prefix, command.name)
        if command.subcommands:
            found.extend(leaves(command.subcommands, path))
        else:
            found.append((path, command))
    return found


def go_flag_spellings(words: Sequence[str], command: Command) -> list[str]:
    """A command's words with Go's flag spellings turned into argparse's: `-timeout=2s` is
    `--timeout=2s`, `-verbose` is `--verbose`, `-shell=true` is `--shell` and `-shell=false` the
    default (dropped). As Go's flag package does, it stops at the first word that is not a flag
    (or at `--`): what follows belongs to the child's command line."""
    from opsgit.consul.gobool import GO_BOOLS

    options = {arg.name.lstrip("-"): arg for arg in command.args if not arg.positional}
    spelled: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        if word == "--" or word == "-" or not word.startswith("-"):
            spelled.extend(words[position:])
            break
        name, equals, value = word.lstrip("-").partition("=")
        arg = options.get(name)
        if arg is None:
            spelled.append(word)  # argparse names it, with its hint
        elif arg.kind == "bool":
            if not equals:
                spelled.append(arg.name)
            elif value not in GO_BOOLS:
                spelled.append(f"{arg.name}={value}")  # argparse refuses it, naming the flag
            elif GO_BOOLS[value]:
                spelled.append(arg.name)
        else:
            spelled.append(f"{arg.name}={value}" if equals else arg.name)
            if not equals and position + 1 < len(words):
                position += 1
                spelled.append(words[position])
        position += 1
    return spelled

