"""`opsgit apply --env ENV [PLANFILE]`: apply a saved plan, or plan and apply after approval,
under the environment's run lock (a lost lock stops the run); `--affected`: every environment a
git change affects, upstreams first (apply_affected.py). One environment's run: apply_env.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsgit.commands.base import Arg, Command
from opsgit.commands.plan import PARALLELISM, POLICY, SHA

LOCK_TIMEOUT = Arg("--lock-timeout", "wait this long for the run lock, e.g. 10m (default: do not wait)",
                   kind="duration", default=0.0, metavar="DURATION")


def apply(env: str, plan_file: Path | None = None, *, auto_approve: bool = False, parallelism: int = 10,
          lock_timeout: float = 0.0, override_policy: str | None = None, policy: str = "auto", status: bool = False,
          sha: str | None = None, plan_dependents: bool = False) -> int:
    """Apply one environment under its run lock; with `plan_dependents`, then plan the
    environments that read an output the apply changed (and apply those that say auto_apply)."""
    from opsgit.commands.apply_env import apply_one

    applied = apply_one(env, plan_file, auto_approve=auto_approve, parallelism=parallelism,
                        lock_timeout=lock_timeout, override_policy=override_policy, policy=policy, status=status,
                        sha=sha)
    if applied.code != 0 or not plan_dependents:
        return applied.code
    from opsgit.commands.apply_affected import plan_dependents as plan_readers
    from opsgit.config import find_root

    return plan_readers(find_root(), env, applied, status=status, sha=sha, parallelism=parallelism,
                        lock_timeout=lock_timeout)


def _run_command(args: argparse.Namespace) -> int:
    if args.affected:
        from opsgit.commands.apply_affected import apply_affected

        return apply_affected(args.base, auto_approve=args.auto_approve, parallelism=args.parallelism,
                              lock_timeout=args.lock_timeout, status=args.status, sha=args.sha,
                              plan_dependents=args.plan_dependents, environments=args.environments)
    return apply(args.env, args.plan_file, auto_approve=args.auto_approve, parallelism=args.parallelism,
                 lock_timeout=args.lock_timeout, override_policy=args.override_policy, policy=args.policy,
                 status=args.status, sha=args.sha, plan_dependents=args.plan_dependents)


def _check(args: argparse.Namespace) -> str | None:
    if not args.env and not args.affected:
        return "apply needs --env ENV or --affected"
    if args.env and args.affected:
        return "apply takes --env ENV or --affected, not both"
    if args.affected and args.plan_file is not None:
        return "apply --affected plans each environment itself: it takes no PLANFILE"
    return None


COMMANDS = (Command(
    "apply", "apply a saved plan, or plan and apply after approval", _run_command, check=_check, args=(
        Arg("--env", "the environment (or --affected)", metavar="ENV"),
        Arg("--affected", "apply every environment the git change affects, upstreams first", kind="bool"),
        Arg("--base", "with --affected: the ref to compare with (default: [tool.opsgit] default_base)", metavar="REF"),
        Arg("--environments", "with --affected: how many independent environments to apply at once (default 4)",
            kind="int", default=4, metavar="N"),
        Arg("--plan-dependents", "then plan the environments that read an output this apply changed (and apply "
            "those with auto_apply: true)", kind="bool"),
        Arg("plan_file", "the saved plan to apply (default: plan now and ask)", kind="path", nargs="?",
            metavar="PLANFILE"),
        Arg("--auto-approve", "apply without asking (when no PLANFILE is given)", kind="bool"),
        PARALLELISM,
        LOCK_TIMEOUT,
        Arg("--override-policy", "apply although the plan failed its policy checks; the reason is recorded in the "
            "run history", metavar="REASON"),
        POLICY,
        Arg("--status", "post a commit status opsgit/apply: ENV (pending, then the apply's summary)", kind="bool"),
        SHA,
    )),)
