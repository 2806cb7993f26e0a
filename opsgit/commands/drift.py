"""`opsgit drift --env ENV`: what changed outside opsgit (exit 2 when something did)."""

from __future__ import annotations

from opsgit import output
from opsgit.commands.plan import make_plan
from opsgit.engine.plan_text import format_plan
from opsgit.engine.workspace import open_workspace
from opsgit.error_handler import EXIT_CHANGES


def drift(env: str, *, as_json: bool = False, parallelism: int = 10) -> int:
    workspace = open_workspace(env)
    result = make_plan(workspace, mode="refresh-only", parallelism=parallelism)
    if as_json:
        output.emit_json({"env": env, "resource_drift": [c.to_json() for c in result.resource_drift]})
    else:
        output.say(format_plan(result))
    return EXIT_CHANGES if result.resource_drift else 0
