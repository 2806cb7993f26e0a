"""`opsgit apply --env ENV [PLANFILE]`: apply a saved plan, or plan and apply after approval."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from opsgit import output
from opsgit.commands.plan import make_plan
from opsgit.engine.apply import Applier, StalePlan
from opsgit.engine.plan import Plan, input_hash
from opsgit.engine.plan_text import format_plan, show
from opsgit.engine.workspace import Workspace, open_workspace
from opsgit.errors import UserError
from opsgit.gitops import history
from opsgit.gitops.locks import run_lock


def read_plan(path: Path) -> Plan:
    try:
        return Plan.from_file(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"no saved plan at {path}", hint="make one with `opsgit plan --env ENV`") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"not a saved opsgit plan: {error}", file=str(path)) from None


def apply(env: str, plan_file: Path | None = None, *, auto_approve: bool = False, parallelism: int = 10,
          lock_timeout: float = 0.0) -> int:
    workspace = open_workspace(env)
    with run_lock(workspace.graph.lock, env, workspace.root, "apply", lock_timeout):
        if plan_file is not None:
            chosen = read_plan(plan_file)
            if chosen.env != env:
                raise UserError(f"the plan in {plan_file} is for environment {chosen.env!r}, not {env!r}")
            if chosen.input_hash != input_hash(workspace.graph):
                raise StalePlan("the configuration changed since the plan was made",
                                hint=f"run `opsgit plan --env {env}` again")
        else:
            chosen = make_plan(workspace, parallelism=parallelism)
            output.say(format_plan(chosen))
            if not chosen.has_changes:
                return 0
            if not auto_approve and not _approved(env):
                output.say("Apply cancelled.")
                return 1
        return _run(workspace, chosen, parallelism)


def _approved(env: str) -> bool:
    if not sys.stdin.isatty():
        raise UserError("apply needs approval", hint="pass --auto-approve, or apply a saved plan file")
    answer = input(f"\nDo you want to perform these actions in {env}?\n  Only 'yes' will be accepted to approve."
                   "\n\n  Enter a value: ")
    return answer.strip() == "yes"


def _run(workspace: Workspace, plan: Plan, parallelism: int) -> int:
    state = workspace.backend.load()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        output.say(line)

    applier = Applier(plan, workspace.backend, workspace.providers(state), parallelism=parallelism,
                      progress=progress)
    started = time.monotonic()
    result = applier.run()
    history.record(workspace.root, workspace.graph.state, workspace.env, kind="apply",
                   summary=result.summary_line() if result.ok else "; ".join(result.errors)[:300],
                   result="applied" if result.ok else "failed", duration=time.monotonic() - started,
                   plan_document=plan.to_json(), log="\n".join(lines))
    if not result.ok:
        output.say("")
        for error in result.errors:
            output.say(f"Error: {error}")
        output.say(f"Apply stopped: {result.added} added, {result.changed} changed, {result.destroyed} destroyed; "
                   f"not done: {', '.join(result.not_done) or 'nothing'}. The state is saved; fix the problem and "
                   "run apply again.")
        return 1
    output.say("")
    output.say(output.paint(result.summary_line(), "green"))
    if result.state.outputs:
        output.say("\nOutputs:\n")
        for name, entry in sorted(result.state.outputs.items()):
            output.say(f"{name} = {show(entry['value'], bool(entry.get('sensitive')))}")
    return 0
