"""`opsgit plan --env ENV`: refresh, diff, print the plan, save it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from opsgit import output
from opsgit.engine.plan import Plan, Planner
from opsgit.engine.plan_text import format_plan
from opsgit.engine.workspace import Workspace, open_workspace
from opsgit.error_handler import EXIT_CHANGES
from opsgit.gitops import history


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
         refresh: bool = True, status: bool = False) -> int:
    if status:
        return _plan_with_status(env, detailed_exitcode=detailed_exitcode)
    workspace = open_workspace(env)
    mode = "refresh-only" if refresh_only else "destroy" if destroy else "normal"
    started = time.monotonic()
    result = make_plan(workspace, mode=mode, targets=targets, parallelism=parallelism, refresh=refresh)
    path = out or workspace.plan_path
    save_plan(result, path)
    history.record(workspace.root, workspace.graph.state, env, kind="plan", summary=result.summary_line(),
                   result="changes" if result.has_changes else "no-op", duration=time.monotonic() - started,
                   plan_document=result.to_json(), log=format_plan(result))
    if as_json:
        output.emit_json(result.to_json())
    else:
        output.say(format_plan(result))
        shown = path.relative_to(workspace.root) if path.is_relative_to(workspace.root) else path
        if result.has_changes:
            output.say(f"\nSaved the plan to: {shown}\nTo perform exactly these actions, run: "
                       f"opsgit apply --env {env} {shown}")
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0


def _plan_with_status(env: str, *, detailed_exitcode: bool) -> int:
    """One environment's plan with its commit status (a CI matrix job per environment)."""
    from opsgit.config import find_root, load_settings
    from opsgit.errors import UserError
    from opsgit.gitops.status import StatusPoster, context_name, target_from_environment

    root = find_root()
    poster = StatusPoster(target_from_environment(root))
    context = context_name(load_settings(root).status_context_prefix, "plan", env)
    poster.post(context, "pending", "Planning…")
    try:
        code = plan(env, detailed_exitcode=detailed_exitcode)
    except UserError as error:
        poster.post(context, "failure", str(error))
        raise
    except Exception as error:
        poster.post(context, "error", f"opsgit failed: {type(error).__name__}")
        raise
    saved = open_workspace(env).plan_path
    summary = json.loads(saved.read_text())["summary"]
    poster.post(context, "success", f"Plan: {summary['add']} to add, {summary['change']} to change, "
                f"{summary['destroy']} to destroy.")
    return code
