"""`opsgit unlock --env ENV [--force]` and `opsgit locks`: who holds the run locks, and removing one.

Both read env.yaml alone, so they work while a module or template is broken."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command


def unlock(env: str, *, force: bool = False) -> int:
    import sys

    from opsgit import output
    from opsgit.errors import UserError
    from opsgit.locks import describe
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    holder = workspace.lock.holder()
    if holder is None:
        output.say(f"environment {env} is not locked.")
        return 0
    was = describe(env, holder, local=workspace.environment.lock.get("backend") == "local")
    output.say(was + ".")
    if not force:
        if not sys.stdin.isatty():
            raise UserError("unlock needs confirmation", hint="pass --force to remove the lock without asking")
        if input("Remove this lock? Only 'yes' will be accepted: ").strip() != "yes":
            output.say("Unlock cancelled.")
            return 1
    workspace.lock.force_unlock()
    from opsgit.gitops import history
    from opsgit.locks import holder_record

    history.record_unlock(workspace.history, workspace.root, env, who=holder_record("unlock").get("who", "?"),
                          holder=holder, was=was, via="cli")
    output.say(f"environment {env} is unlocked.")
    return 0


def locks() -> int:
    from opsgit import output
    from opsgit.config import find_root
    from opsgit.errors import UserError
    from opsgit.locks import describe, open_lock
    from opsgit.repo import environment_names, load_environment

    root = find_root()
    output.say(f"{'ENVIRONMENT':<16} {'BACKEND':<7} LOCK")
    for env in environment_names(root):
        try:
            settings = load_environment(root, env).lock
        except UserError as error:  # one broken env.yaml must not hide the other environments' locks
            output.say(f"{env:<16} {'?':<7} unknown ({error})")
            continue
        backend = str(settings.get("backend", "local"))
        try:
            holder = open_lock(settings, env, root).holder()
        except Exception as error:
            output.say(f"{env:<16} {backend:<7} unknown ({type(error).__name__})")
            continue
        state = describe(env, holder, local=backend == "local") if holder is not None else "free"
        output.say(f"{env:<16} {backend:<7} {state}")
    return 0


COMMANDS = (
    Command("unlock", "show who holds an environment's run lock, and remove it",
            lambda a: unlock(a.env, force=a.force), args=(
                Arg("--env", "the environment", required=True, metavar="ENV"),
                Arg("--force", "remove without asking", kind="bool"))),
    Command("locks", "list every environment's run lock and its holder", lambda a: locks()),
)
