"""`opsgit apply --affected`: every environment a git change affects, upstreams first; and
`--plan-dependents`: after an apply, plan exactly the environments that read an output it changed.

Order comes from the environment graph (gitops/environments.py): an environment applies once
every affected environment upstream of it applied; independent ones apply side by side; the
dependents of one that failed are not applied. Each environment plans at its turn, so it reads
its upstreams' outputs as they are after their apply.

Run locks: every lock of the run is taken before the first apply, in one fixed order (by
environment name), and held until the run ends. Two ordered applies over overlapping
environments then wait for each other (with `--lock-timeout`) instead of deadlocking, and no
other run changes an environment between its upstream's apply and its own.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsgit.commands.apply_env import Applied
    from opsgit.gitops.environments import EnvironmentGraph
    from opsgit.locks import Held
    from opsgit.workspace import Workspace


def apply_affected(base: str | None, *, auto_approve: bool = False, parallelism: int = 10, lock_timeout: float = 0.0,
                   status: bool = False, sha: str | None = None, plan_dependents: bool = False,
                   environments: int = 4, root: Path | None = None) -> int:
    from opsgit import output
    from opsgit.commands.apply_env import apply_held
    from opsgit.config import find_root, load_settings
    from opsgit.errors import UserError
    from opsgit.gitops.affected import affected
    from opsgit.gitops.diff import refuse_or_warn_uncommitted
    from opsgit.gitops.environments import environment_graph, walk_in_order
    from opsgit.locks import hold
    from opsgit.workspace import open_workspace

    root = root or find_root()
    base = base or load_settings(root).default_base
    refuse_or_warn_uncommitted(root, posting=True)  # what is applied is what the commit says
    found = affected(root, base, "HEAD")
    gone = [i.name for i in found.environments if i.action == "destroy"]
    if gone:
        output.warn(f"{', '.join(gone)}: removed by this change; destroy with `opsgit apply --env ENV` on the "
                    "commit before, apply --affected does not")
    wanted = [i.name for i in found.environments if i.action == "plan"]
    if not wanted:
        output.say("Nothing to apply: the change affects no environment.")
        return 0
    if not auto_approve:
        raise UserError("apply --affected needs --auto-approve", hint="it plans and applies each environment in "
                        "turn; review the plans on the pull request first (plan --affected)")
    graph = environment_graph(root)
    order = graph.order(wanted)
    output.say(f"Applying {output.plural(len(order), 'environment')} in order: {' -> '.join(order)}")
    applied: dict[str, Applied] = {}
    workspaces: dict[str, Workspace] = {}
    broken: dict[str, UserError] = {}  # an env.yaml that does not load: its own failure, not the run's
    for env in order:
        try:
            workspaces[env] = open_workspace(env, root)
        except UserError as error:
            broken[env] = error
    with contextlib.ExitStack() as stack:
        held: dict[str, Held] = {}
        for env in sorted(workspaces):  # one fixed order for every run: no two runs wait on each other in a circle
            held[env] = stack.enter_context(hold(workspaces[env].lock, env, "apply", lock_timeout))

        def one(env: str) -> bool:
            if env in broken:
                raise broken[env]
            output.say(f"\n── {env} ──")
            applied[env] = apply_held(workspaces[env], held[env], auto_approve=True, parallelism=parallelism,
                                      status=status, sha=sha)
            return applied[env].code == 0

        outcomes = walk_in_order(graph, order, one, parallelism=environments)
    output.say("")
    failed = False
    for outcome in outcomes:
        failed = failed or outcome.status != "done"
        detail = f": {outcome.detail}" if outcome.detail else ""
        output.say(f"  {outcome.env:<20} {dict(done='applied', failed='FAILED', skipped='not applied')[outcome.status]}"
                   f"{detail}")
    code = 1 if failed else 0
    if plan_dependents:
        for env in order:
            if env in applied and applied[env].code == 0:
                readers = [r for r in graph.readers_of(env, applied[env].changed_outputs) if r not in order]
                if readers:
                    code = max(code, plan_dependents_of(root, graph, env, applied[env], readers, status=status,
                                                        sha=sha, parallelism=parallelism, lock_timeout=lock_timeout))
    return code


def plan_dependents(root: Path, upstream: str, applied: Applied, *, status: bool = False, sha: str | None = None,
                    parallelism: int = 10, lock_timeout: float = 0.0) -> int:
    """Plan the environments that read an output `upstream`'s apply changed — only those."""
    from opsgit import output
    from opsgit.gitops.environments import environment_graph

    graph = environment_graph(root)
    readers = graph.readers_of(upstream, applied.changed_outputs)
    if not readers:
        output.say(f"\nNo environment reads an output that this apply of {upstream} changed: nothing to plan.")
        return 0
    return plan_dependents_of(root, graph, upstream, applied, readers, status=status, sha=sha,
                              parallelism=parallelism, lock_timeout=lock_timeout)


def plan_dependents_of(root: Path, graph: EnvironmentGraph, upstream: str, applied: Applied, readers: list[str], *,
                       status: bool, sha: str | None, parallelism: int, lock_timeout: float) -> int:
    """Plan `readers` of `upstream` (in order), applying those that say auto_apply: true."""
    from opsgit import output
    from opsgit.commands.apply_env import apply_one
    from opsgit.commands.plan import plan
    from opsgit.workspace import open_workspace

    code = 0
    for env in graph.order(readers):
        read = sorted(set(graph.outputs_read(env, upstream)) & set(applied.changed_outputs))
        output.say(f"\n{env} reads {', '.join(read)} of {upstream}, changed by run #{applied.run}: planning {env}")
        trigger = {"env": upstream, "run": applied.run, "outputs": read}
        workspace = open_workspace(env, root)
        planned = plan(env, status=status, sha=sha, parallelism=parallelism, triggered_by=trigger)
        code = max(code, planned)
        if planned == 0 and workspace.environment.auto_apply:
            output.say(f"\n{env} says auto_apply: true: applying its plan")
            applied_here = apply_one(env, workspace.plan_path, parallelism=parallelism, lock_timeout=lock_timeout,
                                     status=status, sha=sha, root=root)
            code = max(code, applied_here.code)
            if applied_here.code == 0:  # and on down the graph: its own readers of what it changed
                code = max(code, plan_dependents(root, env, applied_here, status=status, sha=sha,
                                                 parallelism=parallelism, lock_timeout=lock_timeout))
    return code
