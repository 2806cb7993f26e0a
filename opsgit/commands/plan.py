"""`opsgit plan --env ENV`: refresh, diff, print the plan, save it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from opsgit import output
from opsgit.engine.plan import Plan, Planner
from opsgit.engine.plan_text import format_plan
from opsgit.engine.workspace import Workspace, open_workspace
from opsgit.error_handler import EXIT_CHANGES


def make_plan(workspace: Workspace, *, mode: str = "normal", targets: Sequence[str] = (),
              parallelism: int = 10, refresh: bool = True) -> Plan:
    state = workspace.backend.load()
    planner = Planner(workspace.graph, state, workspace.providers(state), parallelism=parallelism)
    return planner.plan(mode=mode, targets=targets, refresh=refresh)


def save_plan(plan: Plan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(plan.to_file(), sort_keys=True, indent=1))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def plan(env: str, *, out: Path | None = None, refresh_only: bool = False, targets: Sequence[str] = (),
         destroy: bool = False, detailed_exitcode: bool = False, as_json: bool = False, parallelism: int = 10,
         refresh: bool = True) -> int:
    workspace = open_workspace(env)
    mode = "refresh-only" if refresh_only else "destroy" if destroy else "normal"
    result = make_plan(workspace, mode=mode, targets=targets, parallelism=parallelism, refresh=refresh)
    path = out or workspace.plan_path
    save_plan(result, path)
    if as_json:
        output.emit_json(result.to_json())
    else:
        output.say(format_plan(result))
        shown = path.relative_to(workspace.root) if path.is_relative_to(workspace.root) else path
        if result.has_changes:
            output.say(f"\nSaved the plan to: {shown}\nTo perform exactly these actions, run: "
                       f"opsgit apply --env {env} {shown}")
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0
