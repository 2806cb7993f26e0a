"""`opsgit plan --affected`: plan every environment a change affects, post statuses, summarise.

    invoke plan --affected --base origin/main --status
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from opsgit import output
from opsgit.config import find_root, load_settings
from opsgit.engine.plan import Plan
from opsgit.engine.plan_text import format_plan
from opsgit.engine.planfile import save_plan
from opsgit.error_handler import EXIT_CHANGES
from opsgit.errors import UserError
from opsgit.gitops.affected import Impact, affected
from opsgit.gitops.comment import Section
from opsgit.gitops.diff import export_tree
from opsgit.gitops.history import head_commit
from opsgit.gitops.runs import Recorder, started_run
from opsgit.gitops.status import StatusPoster, context_name, target_from_environment
from opsgit.policy import PolicyResult, check_policy, format_result, start_policy
from opsgit.workspace import Workspace, open_workspace

PLAN_WORKERS = 4


@dataclass
class Outcome:
    env: str
    action: str
    plan: Plan | None = None
    error: str | None = None
    bug: bool = False

    @property
    def policy(self) -> PolicyResult | None:
        return PolicyResult.from_json(self.plan.policy) if self.plan is not None and self.plan.policy else None

    @property
    def result(self) -> str:
        if self.bug:
            return "error"
        if self.error:
            return "failed"
        return "policy failed" if self.policy is not None and not self.policy.ok else "planned"


def _deleted_workspace(root: Path, base: str, env: str) -> Workspace:
    """An environment deleted by the change: its graph as it was at the base, with no resources,
    so that planning it plans the destruction of everything its state holds."""
    with tempfile.TemporaryDirectory(prefix="opsgit-deleted-") as scratch:
        export_tree(root, base, Path(scratch), ["pyproject.toml", "modules", "roles", "templates",
                                                f"environments/{env}"])
        old = open_workspace(env, Path(scratch))
        graph = replace(old.graph, resources={}, outputs={})
    return Workspace(root=root, settings=load_settings(root), environment=old.environment, rendered=graph)


def _plan_one(root: Path, base: str, impact: Impact) -> Outcome:
    run: Recorder | None = None
    try:
        if impact.action == "destroy":
            workspace = _deleted_workspace(root, base, impact.name)
            run = started_run(workspace.runs, impact.name, "plan", head_commit(root))
            result = workspace.plan(mode="destroy")
        else:
            workspace = open_workspace(impact.name, root)
            run = started_run(workspace.runs, impact.name, "plan", head_commit(root))
            checking = start_policy(workspace, "auto")
            try:
                result = check_policy(workspace, workspace.plan(), "auto", checking)
            finally:
                if checking is not None:
                    checking.cancel()
        save_plan(result, workspace.plan_path)
        run.line(format_plan(result))
        run.finish("planned" if result.has_changes else "no_changes", summary=result.summary_line(),
                   drift=len(result.resource_drift),
                   changes={c.address: list(c.actions) for c in result.resource_changes
                            if c.actions not in (("no-op",), ("read",))})
        return Outcome(impact.name, impact.action, plan=result)
    except UserError as error:
        if run is not None:
            run.fail(str(error))
        return Outcome(impact.name, impact.action, error=str(error))
    except Exception as error:  # an opsgit bug in one environment must not hide the others' results
        message = f"unexpected {type(error).__name__}: {error}"
        if run is not None:
            run.fail(message)
        return Outcome(impact.name, impact.action, error=message, bug=True)


def plan_affected(base: str | None = None, head: str = "HEAD", *, status: bool = False,
                  detailed_exitcode: bool = False) -> int:
    from opsgit.gitops.diff import refuse_or_warn_uncommitted

    root = find_root()
    settings = load_settings(root)
    base = base or settings.default_base
    refuse_or_warn_uncommitted(root, posting=status)  # before anything is posted
    poster = StatusPoster(target_from_environment(root)) if status else None  # fail before any work
    found = affected(root, base, head)
    if not found.environments:
        output.say(f"No environment is affected by the change from {base}.")
        return 0
    prefix = settings.status_context_prefix
    if poster is not None:
        for impact in found.environments:
            poster.post(context_name(prefix, "plan", impact.name), "pending", "Planning…")
    with ThreadPoolExecutor(max_workers=PLAN_WORKERS) as pool:
        outcomes = list(pool.map(lambda impact: _plan_one(root, found.base, impact), found.environments))
    for outcome in outcomes:
        output.say(f"\n=== {outcome.env} ({outcome.action}) ===")
        output.say(format_plan(outcome.plan, colour=output.use_colour(sys.stdout)) if outcome.plan
                   else f"Error: {outcome.error}")
        if outcome.policy is not None:
            output.say("\n" + format_result(outcome.policy))
        if poster is not None:
            context = context_name(prefix, "plan", outcome.env)
            if outcome.plan is not None:
                poster.post(context, "success", outcome.plan.summary_line())
            else:
                poster.post(context, "error" if outcome.bug else "failure", outcome.error or "failed")
            if outcome.policy is not None:
                poster.post(context_name(prefix, "policy", outcome.env),
                            "success" if outcome.policy.ok else "failure", outcome.policy.summary())
    output.say("\n" + _table(outcomes))
    if poster is not None:
        poster.update_sections({o.env: section(o.env, o.result, o.plan, o.error) for o in outcomes},
                               title=f"opsgit plans for {found.head[:12]} (against {found.base[:12]})")
    if any(o.error or o.result == "policy failed" for o in outcomes):
        return 1
    changed = any(o.plan is not None and o.plan.has_changes for o in outcomes)
    return EXIT_CHANGES if detailed_exitcode and changed else 0


def _table(outcomes: list[Outcome]) -> str:
    rows = [("environment", "add", "change", "destroy", "result")]
    for outcome in outcomes:
        add, change, destroy = outcome.plan.summary if outcome.plan else ("-", "-", "-")
        rows.append((outcome.env, str(add), str(change), str(destroy), outcome.result))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def section(env: str, result: str, plan: Plan | None, error: str | None = None) -> Section:
    """One environment's part of the pull request's plans comment: the plan, and its failed
    policy checks under it."""
    policy = PolicyResult.from_json(plan.policy) if plan is not None and plan.policy else None
    details = format_plan(plan) if plan is not None else f"Error: {error}"
    if policy is not None and policy.failed:
        details += "\n\n" + format_result(policy)
    return Section(env, result, plan.summary_line() if plan is not None else (error or "failed"),
                   policy.summary() if policy is not None else "", details)
