"""`opsgit drift --env ENV`: what changed outside opsgit (exit 2 when something did)."""

from __future__ import annotations

import argparse
import sys

from opsgit.commands.base import Arg, Command
from opsgit.commands.plan import PARALLELISM


def drift(env: str, *, as_json: bool = False, parallelism: int = 10) -> int:
    from opsgit import output
    from opsgit.engine.plan_text import format_plan
    from opsgit.error_handler import EXIT_CHANGES
    from opsgit.gitops.history import head_commit
    from opsgit.gitops.runs import record_run
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    with record_run(workspace.runs, env, "drift", head_commit(workspace.root)) as run:
        result = workspace.plan(mode="refresh-only", parallelism=parallelism)
        if as_json:
            run.line(format_plan(result))
        else:
            output.say(format_plan(result, colour=output.use_colour(sys.stdout)))
        run.finish("drift" if result.resource_drift else "no_drift", summary=result.summary_line(),
                   drift=len(result.resource_drift))
    if as_json:
        output.emit_json({"env": env, "resource_drift": [c.to_json() for c in result.resource_drift]})
    return EXIT_CHANGES if result.resource_drift else 0


def _run(args: argparse.Namespace) -> int:
    return drift(args.env, as_json=args.json, parallelism=args.parallelism)


COMMANDS = (Command(
    "drift", "list what changed outside opsgit (exit 2 when something did)", _run, args=(
        Arg("--env", "the environment", required=True, metavar="ENV"),
        Arg("--json", "print the drift as JSON", kind="bool"),
        PARALLELISM,
    )),)
