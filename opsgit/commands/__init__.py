"""One module per command (or family: `state` and `import`, `unlock` and `locks`). Each declares
its `COMMANDS` — arguments with help, and the typed function that runs it — and stays cheap to
import: `opsgit --help` imports every one. `cli.py` and `opsgit/tasks.py` are built from them."""

from __future__ import annotations

import importlib
from functools import cache

from opsgit.commands.base import Command

# In the order `opsgit --help` lists them.
MODULES = ("render", "validate", "agent", "plan", "show", "apply", "drift", "state", "affected", "envs", "graph",
           "unlock", "history", "providers", "image", "images", "verify", "init", "template", "exec", "kv", "lock",
           "server", "alerts", "completion")


@cache
def all_commands() -> tuple[Command, ...]:
    commands: list[Command] = []
    for name in MODULES:
        commands.extend(importlib.import_module(f"opsgit.commands.{name}").COMMANDS)
    return tuple(commands)
