"""The invoke collection a monorepo's tasks.py imports: `from opsgit.tasks import ns`.

Built from the same command declarations as `opsgit` itself, so `invoke plan` takes every flag
`opsgit plan` takes. Commands with subcommands become collections (`invoke state.rm`); the
host-side commands that run a command line (`exec`, `lock`, `template`, `kv`, `agent`) stay
`opsgit` commands only.
"""

from __future__ import annotations

import argparse
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.parser.argument import Argument
from invoke.tasks import Task

from opsgit.commands import all_commands
from opsgit.commands.base import Arg, Command, namespace
from opsgit.error_handler import run_guarded
from opsgit.errors import UserError

# Numbers and durations arrive as text and are converted by the declaration, as for `opsgit`.
KINDS: dict[str, type] = {"bool": bool, "false": bool, "list": list}


class DeclaredTask(Task[Any]):
    """An invoke task whose arguments are a command's declared ones."""

    def __init__(self, command: Command, qualified: str | None = None) -> None:
        called = qualified or command.name  # as invoke users type it: `state.rm`
        def body(c: Context, **values: Any) -> None:
            def action() -> int:
                missing = [arg.name for arg in command.args if (arg.required or (arg.positional and arg.nargs != "?"))
                           and values.get(arg.attribute) in (None, "", [])]
                if missing:
                    raise UserError(f"{called} needs {', '.join(missing)}", hint=f"see `invoke --help {called}`")
                try:
                    parsed = namespace(command, values)
                except argparse.ArgumentTypeError as error:
                    raise UserError(str(error), hint=f"see `invoke --help {called}`") from None
                if command.check is not None:
                    problem = command.check(parsed)
                    if problem:
                        raise UserError(problem, hint=f"see `invoke --help {called}`")
                assert command.run is not None
                return command.run(parsed)

            code = run_guarded(action)
            if code != 0:
                raise Exit(code=code)

        body.__doc__ = command.help[:1].upper() + command.help[1:] + "."
        positional = [str(_argument(arg).name) for arg in command.args if arg.positional and arg.nargs is None]
        super().__init__(body, name=command.name, positional=positional)
        self.command = command

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        return [_argument(arg) for arg in self.command.args]


def _argument(arg: Arg) -> Argument:
    # Optional positionals (`apply PLANFILE`) are flags here: invoke's positionals are required.
    positional = arg.positional and arg.nargs is None
    name = arg.name.lstrip("-") if not arg.positional else arg.name.replace("_", "-")
    kind = list if arg.nargs == "+" else KINDS.get(arg.kind, str)  # many values: a repeatable flag here
    default: Any = [] if kind is list else False if kind is bool else None
    return Argument(names=(name,), kind=kind, default=default, help=arg.help, positional=positional,
                    attr_name=arg.attribute if arg.attribute != name else None)


def _collection() -> Collection:
    collection = Collection()
    for command in all_commands():
        if not command.task:
            continue
        if command.subcommands:
            collection.add_collection(Collection(command.name, *(DeclaredTask(sub, f"{command.name}.{sub.name}")
                                                                 for sub in command.subcommands)))
        else:
            collection.add_task(DeclaredTask(command))
    return collection


ns = _collection()
