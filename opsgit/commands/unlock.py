"""`opsgit unlock --env ENV [--force]` and `opsgit locks`."""

from __future__ import annotations

import sys

from opsgit import output
from opsgit.config import find_root
from opsgit.engine.workspace import open_workspace
from opsgit.errors import UserError
from opsgit.gitops.locks import current_holder, describe, force_unlock
from opsgit.repo import load_repo


def unlock(env: str, *, force: bool = False) -> int:
    workspace = open_workspace(env)
    holder = current_holder(workspace.graph.lock, env, workspace.root)
    if holder is None:
        output.say(f"environment {env} is not locked.")
        return 0
    output.say(describe(env, holder) + ".")
    if not force:
        if not sys.stdin.isatty():
            raise UserError("unlock needs confirmation", hint="pass --force to remove the lock without asking")
        if input("Remove this lock? Only 'yes' will be accepted: ").strip() != "yes":
            output.say("Unlock cancelled.")
            return 1
    force_unlock(workspace.graph.lock, env, workspace.root)
    output.say(f"environment {env} is unlocked.")
    return 0


def locks() -> int:
    root = find_root()
    repo = load_repo(root)
    for env in sorted(repo.environments):
        settings = repo.environments[env].lock
        try:
            holder = current_holder(settings, env, root)
        except Exception as error:  # one unreachable backend must not hide the others
            output.say(f"{env:<16} {settings.get('backend', 'local'):<7} unknown ({type(error).__name__})")
            continue
        state = describe(env, holder) if holder else "free"
        output.say(f"{env:<16} {settings.get('backend', 'local'):<7} {state}")
    return 0
