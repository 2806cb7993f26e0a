"""`opsgit plan --env ENV`: refresh, diff, print the plan, save it (or `--affected`: every
environment the git change affects)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsgit.commands.base import Arg, Command

if TYPE_CHECKING:
    from opsgit.engine.plan import Plan
    from opsgit.workspace import Workspace

PARALLELISM = Arg("--parallelism", "how many resources to read or change at once (default 10)", kind="int",
                  default=10, metavar="N")


POLICY = Arg("--policy", "run the policy checks (default: OPSGIT_POLICY, else when the repository has policies/ "
             "or [tool.opsgit.policy])", default="auto", choices=("auto", "true", "false"), metavar="auto|true|false")


SHA = Arg("--sha", "with --status: the commit to post on (default: the pull request's head in GitHub Actions, "
          "else GITHUB_SHA or CI_COMMIT_SHA)", metavar="SHA")


def plan(env: str, *, out: Path | None = None, refresh_only: bool = False, targets: Sequence[str] = (),
         destroy: bool = False, detailed_exitcode: bool = False, as_json: bool = False, parallelism: int = 10,
         refresh: bool = True, status: bool = False, policy: str = "auto", sha: str | None = None,
         comment: bool = False, triggered_by: Mapping[str, Any] | None = None) -> int:
    """`triggered_by`: the upstream run whose changed outputs made this plan needed (kept in its
    history record and run)."""
    from opsgit import output
    from opsgit.engine.plan_text import format_plan
    from opsgit.engine.planfile import save_plan
    from opsgit.error_handler import EXIT_CHANGES
    from opsgit.gitops import history
    from opsgit.gitops.runs import record_run
    from opsgit.policy import refuse_failed_policy
    from opsgit.workspace import open_workspace

    workspace = open_workspace(env)
    if status:
        from opsgit.gitops.diff import refuse_or_warn_uncommitted

        refuse_or_warn_uncommitted(workspace.root, posting=True)  # the status describes the commit
    mode = "refresh-only" if refresh_only else "destroy" if destroy else "normal"
    with record_run(workspace.runs, env, "plan", history.head_commit(workspace.root)) as run:
        if triggered_by:
            run.note(triggered_by=dict(triggered_by))
        result = _plan(workspace, mode, targets, parallelism, refresh, status, policy, sha)
        path = out or workspace.plan_path
        save_plan(result, path)
        verdict = _policy_verdict(result)
        text = format_plan(result) + (f"\n\n{verdict}" if verdict else "")
        if as_json:
            run.line(text)  # the run page shows the plan, not its JSON
        else:
            output.say(format_plan(result, colour=output.use_colour(sys.stdout)))
            if verdict:
                output.say(f"\n{verdict}")
            shown = path.relative_to(workspace.root) if path.is_relative_to(workspace.root) else path
            if result.has_changes:
                output.say(f"\nSaved the plan to: {shown}\nTo perform exactly these actions, run: "
                           f"opsgit apply --env {env} {shown}")
        history.record(workspace.history, workspace.root, env, kind="plan", summary=result.summary_line(),
                       result="changes" if result.has_changes else "no-op", duration=run.elapsed,
                       plan_document=result.to_json(), log=text,
                       extra={"run": run.number, **({"triggered_by": dict(triggered_by)} if triggered_by else {})})
        run.finish("planned" if result.has_changes else "no_changes", summary=result.summary_line(),
                   drift=len(result.resource_drift), policy=_policy_summary(result),
                   changes={c.address: list(c.actions) for c in result.resource_changes
                            if c.actions not in (("no-op",), ("read",))})
        if comment:
            _comment(workspace, result, sha)
    if as_json:
        output.emit_json(result.to_json())
    refuse_failed_policy(result, "plan")
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0


def _plan(workspace: Workspace, mode: str, targets: Sequence[str], parallelism: int, refresh: bool, status: bool,
          policy: str, sha: str | None) -> Plan:
    """The plan, then its policy checks (checkov loads itself while the plan is made), each stage
    with its commit status when `status`."""
    from opsgit.gitops.status import StageStatus
    from opsgit.policy import check_policy, start_policy

    plans: list[Plan] = []
    checking = start_policy(workspace, policy, mode)
    env, prefix = workspace.env, workspace.settings.status_context_prefix
    try:
        with StageStatus(workspace.root, prefix, env, "plan", plans, sha) if status else contextlib.nullcontext(plans):
            _tell_holder(workspace)
            result = workspace.plan(mode=mode, targets=targets, parallelism=parallelism, refresh=refresh)
            plans.append(result)
        with StageStatus(workspace.root, prefix, env, "policy", plans, sha) if status and checking is not None else \
                contextlib.nullcontext(plans):
            result = check_policy(workspace, result, policy, checking)
            plans.append(result)
    finally:
        if checking is not None:
            checking.cancel()
    return result


def _policy_summary(result: Plan) -> str | None:
    from opsgit.policy import PolicyResult

    return PolicyResult.from_json(result.policy).summary() if result.policy is not None else None


def _comment(workspace: Workspace, result: Plan, sha: str | None) -> None:
    """This environment's section of the pull request's one plans comment (each matrix job
    writes its own)."""
    from opsgit.commands.plan_affected import section
    from opsgit.gitops.status import StatusPoster, target_from_environment
    from opsgit.policy import PolicyResult

    failed = result.policy is not None and not PolicyResult.from_json(result.policy).ok
    poster = StatusPoster(target_from_environment(workspace.root, sha))
    poster.update_sections({workspace.env: section(workspace.env, "policy failed" if failed else "planned", result)})


def _policy_verdict(result: Plan) -> str:
    from opsgit.policy import PolicyResult, format_result

    return format_result(PolicyResult.from_json(result.policy)) if result.policy is not None else ""


def _tell_holder(workspace: Workspace) -> None:
    """A plan made while an apply holds the lock may be out of date when that apply ends: say so."""
    from opsgit import output
    from opsgit.locks import describe

    try:
        holder = workspace.lock.holder()
    except Exception as error:
        output.warn(f"could not read the run lock of {workspace.env} ({type(error).__name__}); planning anyway")
        return
    if holder is not None:
        local = workspace.environment.lock.get("backend", "local") == "local"
        output.warn(f"{describe(workspace.env, holder, local=local)}; planning anyway, but the plan may be out "
                    "of date when that run finishes")


def _run(args: argparse.Namespace) -> int:
    if args.affected:
        from opsgit.commands.plan_affected import plan_affected

        return plan_affected(args.base, status=args.status, detailed_exitcode=args.detailed_exitcode)
    return plan(args.env, out=args.out, refresh_only=args.refresh_only, targets=args.target, destroy=args.destroy,
                detailed_exitcode=args.detailed_exitcode, as_json=args.json, parallelism=args.parallelism,
                refresh=args.refresh == "true", status=args.status, policy=args.policy, sha=args.sha,
                comment=args.comment)


def _check(args: argparse.Namespace) -> str | None:
    if not args.env and not args.affected:
        return "plan needs --env ENV or --affected"
    if args.env and args.affected:
        return "plan takes --env ENV or --affected, not both"
    return None


COMMANDS = (Command(
    "plan", "refresh, diff and show what apply would do; saves the plan", _run, check=_check, args=(
        Arg("--env", "the environment (or --affected)", metavar="ENV"),
        Arg("--affected", "plan every environment the git change affects", kind="bool"),
        Arg("--base", "with --affected: the ref to compare with (default: [tool.opsgit] default_base)", metavar="REF"),
        Arg("--status", "post commit statuses (GitHub/GitLab): pending, then the plan's summary", kind="bool"),
        Arg("--out", "where to save the plan (default build/plans/ENV.plan.json)", kind="path", metavar="FILE"),
        Arg("--refresh-only", "only bring the state up to date with reality", kind="bool"),
        Arg("--target", "only ADDR and its dependencies; repeatable", kind="list", metavar="ADDR"),
        Arg("--destroy", "plan to destroy everything", kind="bool"),
        Arg("--refresh", "read resources first (default true)", default="true", choices=("true", "false"),
            metavar="true|false"),
        Arg("--detailed-exitcode", "exit 2 when there are changes", kind="bool"),
        PARALLELISM,
        Arg("--json", "print the plan in Terraform's JSON plan format (terraform show -json)", kind="bool"),
        POLICY,
        SHA,
        Arg("--comment", "with --env: write this environment's section of the pull request's one plans comment",
            kind="bool"),
    )),)
