"""`opsgit history [--env ENV] [--json]`: the plans and applies that ran."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command


def history(env: str | None = None, *, as_json: bool = False) -> int:
    from opsgit import output
    from opsgit.config import find_root
    from opsgit.gitops.history import RUNS, read_all
    from opsgit.repo import environment_names, load_environment, require_environment

    root = find_root()
    if env:
        require_environment(root, env)
    environments = {name: load_environment(root, name) for name in ([env] if env else environment_names(root))}
    entries = read_all(root, environments, RUNS, strict=env is not None)
    if as_json:
        output.emit_json([{k: v for k, v in e.items() if k != "log"} for e in entries])
        return 0
    if not entries:
        output.say("No runs recorded yet.")
        return 0
    output.say(f"{'WHEN':<25}  {'ENVIRONMENT':<12} {'KIND':<6} {'RESULT':<8} {'WHO':<10} {'COMMIT/PR':<14} "
               f"{'TOOK':>8}  SUMMARY")
    for entry in entries:
        commit = (entry.get("commit") or "")[:10]
        where = entry.get("pull_request") or commit
        output.say(f"{entry['at']}  {entry['env']:<12} {entry['kind']:<6} {entry['result']:<8} "
                   f"{entry.get('who') or '?':<10} {where:<14} {entry['duration_seconds']:>7.1f}s  {entry['summary']}")
    return 0


COMMANDS = (Command("history", "the plans and applies that ran", lambda a: history(a.env, as_json=a.json), args=(
    Arg("--env", "only this environment", metavar="ENV"),
    Arg("--json", "print the records as JSON", kind="bool"),
)),)
