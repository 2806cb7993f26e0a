"""`opsgit`: the parser built from the commands' declarations, then one command function.

Command modules are cheap to import (their heavy imports live inside their functions), so
building the whole parser stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from opsgit import __version__
from opsgit.commands import all_commands
from opsgit.commands.base import Arg, Command, go_flag_spellings, run_parsed
from opsgit.error_handler import EXIT_USER_ERROR, run_guarded

# Terraform's single-dash spellings, and what opsgit calls them.
TERRAFORM_FLAGS = {"no-color": "opsgit colours only on a terminal; set NO_COLOR=1 to turn colour off",
                   "input": "opsgit never prompts without a terminal; pass --auto-approve to apply without asking",
                   "var": "put variables in environments/<env>/env.yaml",
                   "var-file": "put variables in environments/<env>/env.yaml",
                   "chdir": "use -C DIR"}


class Parser(argparse.ArgumentParser):
    """argparse with opsgit's exit codes: a usage error is a user error (exit 1), with a hint for
    Terraform's spellings; exit 2 stays `plan --detailed-exitcode`'s "changes present"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        hint = usage_hint(message, self)
        print(f"error: {message}" + (f" ({hint})" if hint else ""), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def usage_hint(message: str, parser: argparse.ArgumentParser) -> str | None:
    """A hint for an unknown or mistyped flag: Terraform's `-out=FILE` is `--out FILE` here."""
    options = sorted(o for action in parser._actions for o in action.option_strings if o.startswith("--"))
    _, _, unknown = message.partition("unrecognized arguments: ")
    for token in unknown.split():
        if not token.startswith("-"):
            continue
        name, equals, value = token.lstrip("-").partition("=")
        if token.startswith("-") and not token.startswith("--") and name in TERRAFORM_FLAGS:
            return TERRAFORM_FLAGS[name]
        if f"--{name}" in options:
            spelled = f"--{name}" + (f" {value}" if equals else "")
            return f"opsgit spells it {spelled}, with two dashes"
        close = difflib.get_close_matches(f"--{name}", options, n=1)
        if close:
            return f"did you mean {close[0]}? see `{parser.prog} --help`"
        return f"see `{parser.prog} --help` for the options"
    return f"see `{parser.prog} --help`" if "required" in message or "invalid" in message else None


def _add_args(parser: argparse.ArgumentParser, args: Sequence[Arg]) -> None:
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for arg in args:
        target: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup = parser
        if arg.group:
            if arg.group not in groups:  # not setdefault: its default would add an empty group each time
                groups[arg.group] = parser.add_mutually_exclusive_group()
            target = groups[arg.group]
        options: dict[str, Any] = {"help": arg.help}
        if arg.kind not in ("str", "list", "bool", "false", "remainder") or arg.choices:
            options["type"] = arg.parse
        if arg.kind == "remainder":
            target.add_argument(arg.attribute, nargs=argparse.REMAINDER, metavar=arg.metavar, **options)
        elif arg.positional:
            if arg.nargs == "?":
                options["default"] = arg.default
            target.add_argument(arg.attribute, nargs=arg.nargs, metavar=arg.metavar or arg.name, **options)
        elif arg.kind in ("bool", "false"):
            target.add_argument(arg.name, dest=arg.attribute,
                                action="store_true" if arg.kind == "bool" else "store_false", **options)
        else:
            target.add_argument(arg.name, dest=arg.attribute, metavar=arg.metavar, required=arg.required,
                                default=arg.value_default, action="append" if arg.kind == "list" else "store",
                                **options)
    for arg in args:
        if arg.kind == "false":
            parser.set_defaults(**{arg.attribute: arg.value_default})


def _add_command(commands: argparse._SubParsersAction[Parser], command: Command, prefix: str, *,
                 complete: bool = True) -> None:
    parser = commands.add_parser(command.name, help=command.help, description=command.description or command.help)
    parser.set_defaults(**{f"{prefix}_command": command.name})
    if not complete:  # listed in `opsgit --help`; its arguments are added when it is the one run
        return
    if command.subcommands:
        sub = parser.add_subparsers(dest=f"{command.name}_command", metavar="SUBCOMMAND", required=True)
        for child in command.subcommands:
            _add_command(sub, child, command.name)
    _add_args(parser, command.args)


def build_parser(only: str | None = None) -> Parser:
    """The whole parser; with `only`, the arguments of that command alone (the others are listed
    by name and help), which is all one run needs."""
    parser = Parser(prog="opsgit",
                    description="GitOps for operations monorepos: render, plan, apply and report.")
    parser.add_argument("--version", action="version", version=f"opsgit {__version__}")
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in all_commands():
        _add_command(commands, command, "", complete=only is None or command.name == only)
    return parser


def _command_position(argv: Sequence[str]) -> int:
    """Where in an argument list the command's name is (the first word that is not a global
    option), or -1."""
    position = 0
    while position < len(argv):
        if argv[position] == "-C":
            position += 2
        elif argv[position].startswith("-"):
            position += 1
        else:
            return position
    return -1


def _command_named(argv: Sequence[str]) -> str:
    position = _command_position(argv)
    return argv[position] if position >= 0 else ""


def _leaf_parser(parser: Parser, path: Sequence[str]) -> argparse.ArgumentParser:
    found: argparse.ArgumentParser = parser
    for name in path:
        action = next(a for a in found._actions if isinstance(a, argparse._SubParsersAction))
        found = action.choices[name]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    position = _command_position(argv)
    named = next((c for c in all_commands() if position >= 0 and c.name == argv[position]), None)
    if named is not None and named.go_flags:
        argv[position + 1:] = go_flag_spellings(argv[position + 1:], named)
    parser = build_parser(only=_command_named(argv))
    args, extras = parser.parse_known_args(argv)
    if args.command is None:
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help()
        return 0
    if getattr(args, "command_args", None) and args.command_args[0] == "--":
        args.command_args = args.command_args[1:]
    command = next(c for c in all_commands() if c.name == args.command)
    if args.directory:
        try:
            os.chdir(Path(args.directory))
        except OSError as error:
            print(f"error: cannot enter {args.directory}: {error.strerror}", file=sys.stderr)
            return EXIT_USER_ERROR
    leaf, path = command, [command.name]
    while leaf.subcommands:
        leaf = next(c for c in leaf.subcommands if c.name == getattr(args, f"{leaf.name}_command"))
        path.append(leaf.name)
    if extras:  # said by the command's own parser, with its usage and options
        _leaf_parser(parser, path).error(f"unrecognized arguments: {' '.join(extras)}")
    if leaf.check is not None:
        problem = leaf.check(args)
        if problem:
            _leaf_parser(parser, path).error(problem)
    return run_guarded(lambda: run_parsed(command, args))
