"""Applying one environment: under its run lock, a saved plan or one made now (approved, or
`--auto-approve`), its statuses, run record and history (with the hash of every output, which
dependents compare). `apply --env` runs it once; `apply --affected` once per environment."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from opsgit.engine.apply import ApplyResult
    from opsgit.engine.plan import Plan
    from opsgit.gitops.runs import Recorder
    from opsgit.locks import Held
    from opsgit.workspace import Workspace


class Applied(NamedTuple):
    code: int  # the exit code
    changed_outputs: tuple[str, ...] = ()  # outputs whose value the apply changed (added, removed)
    run: int | None = None  # the run's number


def apply_one(env: str, plan_file: Path | None = None, *, auto_approve: bool = False, parallelism: int = 10,
              lock_timeout: float = 0.0, override_policy: str | None = None, policy: str = "auto",
              status: bool = False, sha: str | None = None, root: Path | None = None) -> Applied:
    """Apply one environment under its run lock."""
    from opsgit.locks import hold
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env, root)
    with hold(workspace.lock, env, "apply", lock_timeout) as held:
        return apply_held(workspace, held, plan_file, auto_approve=auto_approve, parallelism=parallelism,
                          override_policy=override_policy, policy=policy, status=status, sha=sha)


def apply_held(workspace: Workspace, held: Held, plan_file: Path | None = None, *, auto_approve: bool = False,
               parallelism: int = 10, override_policy: str | None = None, policy: str = "auto",
               status: bool = False, sha: str | None = None) -> Applied:
    """Apply one environment whose run lock `held` is this run's."""
    from opsgit import output
    from opsgit.engine.apply import StalePlan
    from opsgit.engine.plan import input_hash
    from opsgit.engine.plan_text import format_plan
    from opsgit.engine.planfile import read_plan
    from opsgit.engine.upstream import refuse_moved, refuse_unapplied
    from opsgit.errors import UserError
    from opsgit.gitops.history import head_commit
    from opsgit.gitops.runs import record_run
    from opsgit.policy import PolicyResult, check_policy, format_result, refuse_failed_policy

    env = workspace.env
    with record_run(workspace.runs, env, "apply", head_commit(workspace.root)) as run:
        workspace.recover_creates(record=True)  # what a killed run created is recorded, not made again
        if plan_file is not None:
            chosen = read_plan(plan_file)
            if chosen.env != env:
                raise UserError(f"the plan in {plan_file} is for environment {chosen.env!r}, not {env!r}")
            if chosen.input_hash != input_hash(workspace.graph, workspace.backend_settings):
                raise StalePlan("the configuration changed since the plan was made",
                                hint=f"run `opsgit plan --env {env}` again")
            refuse_unapplied(env, chosen.upstreams, _read_at(workspace))
            refuse_moved(env, chosen.upstreams, workspace.upstreams())
        else:
            chosen = check_policy(workspace, workspace.plan(parallelism=parallelism), policy)
            output.say(format_plan(chosen, colour=output.use_colour(sys.stdout)))
            if chosen.policy is not None:
                output.say("\n" + format_result(PolicyResult.from_json(chosen.policy)))
            if not chosen.has_changes:
                run.finish("no_changes", summary=chosen.summary_line())
                return Applied(0, (), run.number)
            refuse_unapplied(env, chosen.upstreams, _read_at(workspace))
            if not auto_approve and not _approved(env, workspace):
                output.say("Apply cancelled.")
                run.finish("discarded", summary="Apply cancelled.")
                return Applied(1, (), run.number)
        refuse_failed_policy(chosen, "apply", override_policy)
        held.check()
        if not status:
            return _run(workspace, chosen, parallelism, held, run, override_policy)
        from opsgit.gitops.status import StageStatus

        results: list[ApplyResult] = []
        reporter = StageStatus(workspace.root, workspace.settings.status_context_prefix, env, "apply", results, sha)
        with reporter:
            posted = {"context": reporter.context, "sha": reporter.poster.target.sha,
                      "url": reporter.poster.target.target_url}
            run.note(status=posted)
            return _run(workspace, chosen, parallelism, held, run, override_policy, results, {"status": posted})


def _read_at(workspace: Workspace) -> dict[str, tuple[str, int | None]]:
    """Where env.yaml first reads each upstream environment: the file and line of a refusal."""
    from opsgit.repo.reads import reads_of

    found: dict[str, tuple[str, int | None]] = {}
    for read in sorted(reads_of(workspace.environment), key=lambda r: r.line or 0):
        found.setdefault(read.upstream, (read.file, read.line))
    return found


def _approved(env: str, workspace: Workspace) -> bool:
    from opsgit.errors import UserError

    if not sys.stdin.isatty():
        saved = workspace.plan_path
        shown = saved.relative_to(workspace.root) if saved.is_relative_to(workspace.root) else saved
        raise UserError("apply needs approval", hint="pass --auto-approve, or apply a saved plan: "
                        f"opsgit apply --env {env} {shown}")
    answer = input(f"\nDo you want to perform these actions in {env}?\n  Only 'yes' will be accepted to approve."
                   "\n\n  Enter a value: ")
    return answer.strip() == "yes"


def _run(workspace: Workspace, plan: Plan, parallelism: int, held: Held, run: Recorder,
         override_policy: str | None = None, results: list[ApplyResult] | None = None,
         recorded: dict[str, Any] | None = None) -> Applied:
    from opsgit import output
    from opsgit.engine.apply import Applier
    from opsgit.engine.plan_text import show
    from opsgit.engine.upstream import output_hashes
    from opsgit.gitops import history
    from opsgit.locks import lock_lost

    state = workspace.backend.load()
    before = output_hashes(state.outputs)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        output.say(line)

    applier = Applier(plan, workspace.backend, workspace.providers(state), parallelism=parallelism,
                      progress=progress, stop=held.lost, on_step=run.progress)
    started = time.monotonic()
    result = applier.run()
    if results is not None:
        results.append(result)  # for the apply's commit status
    problems = [str(lock_lost(workspace.env))] * result.stopped + result.errors
    # what dependents compare: the hash of each output's value (a sensitive one is not kept)
    after = output_hashes(result.state.outputs) if result.ok else before
    changed = tuple(sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name)))
    history.record(workspace.history, workspace.root, workspace.env, kind="apply",
                   summary=result.summary_line() if result.ok else "; ".join(problems)[:300],
                   result="applied" if result.ok else "failed", duration=time.monotonic() - started,
                   plan_document=plan.to_json(), log="\n".join(lines),
                   extra={**_override(plan, override_policy), **(recorded or {}), "run": run.number,
                          "output_hashes": after, "outputs_changed": list(changed),
                          **_upstream_runs(plan)})
    outputs = {name: show(entry["value"], bool(entry.get("sensitive")))
               for name, entry in sorted(result.state.outputs.items())}
    if not result.ok:
        output.say("")
        for error in result.errors:
            output.say(f"Error: {error}")
        output.say(f"Apply stopped: {result.added} added, {result.changed} changed, {result.destroyed} destroyed; "
                   f"not done: {', '.join(result.not_done) or 'nothing'}. The state is saved; "
                   + ("plan again once the lock is yours." if result.stopped else
                      "fix the problem and run apply again."))
        run.finish("errored", summary="; ".join(problems)[:300], error="; ".join(problems)[:2000])
        if result.stopped:
            raise lock_lost(workspace.env)
        return Applied(1, (), run.number)
    output.say("")
    output.say(output.paint(result.summary_line(), "green"))
    if outputs:
        output.say("\nOutputs:\n")
        for name, shown in outputs.items():
            output.say(f"{name} = {shown}")
    # what the applied plan found changed outside opsgit, it has now put back: no drift left
    run.finish("applied", summary=result.summary_line(), outputs=outputs, drift=0, output_hashes=after)
    return Applied(0, changed, run.number)


def _upstream_runs(plan: Plan) -> dict[str, Any]:
    """The upstream outputs an apply used: which state (serial) and which value hashes."""
    if not plan.upstreams:
        return {}
    return {"upstreams": {name: {"serial": u.serial, "hashes": u.hashes} for name, u in plan.upstreams.items()}}


def _override(plan: Plan, reason: str | None) -> dict[str, Any]:
    """What the run history keeps of an apply past failed policy checks: which, and why."""
    from opsgit.policy import PolicyResult

    if not reason or plan.policy is None or PolicyResult.from_json(plan.policy).ok:
        return {}
    failed = sorted({f.check_id for f in PolicyResult.from_json(plan.policy).failed})
    return {"policy_override": {"reason": reason, "failed_checks": failed}}
