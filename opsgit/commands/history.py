"""`opsgit history [--env ENV] [--json]`: the plans and applies that ran; `--env ENV --run N`:
one run with everything it printed."""

from __future__ import annotations

from typing import Any

from opsgit.commands.base import Arg, Command


def history(env: str | None = None, *, as_json: bool = False, run: int | None = None) -> int:
    from opsgit import output
    from opsgit.config import find_root
    from opsgit.errors import UserError
    from opsgit.gitops.history import RUNS, read_all
    from opsgit.repo import environment_names, load_environment, require_environment

    root = find_root()
    if run is not None:
        if not env:
            raise UserError("--run needs --env: run numbers count per environment",
                            hint=f"opsgit history --env ENV --run {run}")
        return show_run(root, env, run, as_json=as_json)
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
    output.say(f"{'WHEN':<25}  {'ENVIRONMENT':<12} {'RUN':>5} {'KIND':<6} {'RESULT':<8} {'WHO':<10} "
               f"{'COMMIT/PR':<14} {'TOOK':>8}  SUMMARY")
    for entry in entries:
        commit = (entry.get("commit") or "")[:10]
        where = entry.get("pull_request") or commit
        number = f"#{entry['run']}" if entry.get("run") else ""
        cause = entry.get("triggered_by") or {}
        after = f" (after {cause.get('env')} #{cause.get('run')})" if cause else ""
        output.say(f"{entry['at']}  {entry['env']:<12} {number:>5} {entry['kind']:<6} {entry['result']:<8} "
                   f"{entry.get('who') or '?':<10} {where:<14} {entry.get('duration_seconds', 0):>7.1f}s  "
                   f"{entry['summary']}{after}")
    return 0


def show_run(root: Any, env: str, number: int, *, as_json: bool = False) -> int:
    from opsgit import output
    from opsgit.errors import UserError
    from opsgit.gitops.runs import run_store
    from opsgit.repo import load_environment, require_environment

    require_environment(root, env)
    store = run_store(load_environment(root, env).state, root)
    found = store.get(env, number)
    if found is None:
        raise UserError(f"environment {env} has no run #{number} in {store.location}",
                        hint=f"list its runs with `opsgit history --env {env}`")
    log = store.log(env, number)
    if as_json:
        output.emit_json({**found.to_json(), "log": log})
        return 0
    output.say(run_heading(found.to_json()))
    output.say("")
    output.say(log.rstrip("\n"))
    return 0


def run_heading(run: dict[str, Any]) -> str:
    """`Run #12 of dev: apply APPLIED, by alice from a pull request (org/ops#7), commit 1a2b3c4d5e, 3.2s`."""
    trigger = run.get("trigger") or {}
    source = {"cli": "from the CLI", "ci": "from CI", "pull_request": "from a pull request"}.get(
        str(trigger.get("source")), "")
    where = f" ({trigger['pull_request']})" if trigger.get("pull_request") else ""
    took = f", {run['duration_seconds']:.1f}s" if run.get("duration_seconds") is not None else ""
    commit = f", commit {str(run['commit'])[:10]}" if run.get("commit") else ""
    status = str(run.get("status", "")).replace("_", " ").upper()
    lines = [f"Run #{run['number']} of {run['env']}: {run.get('kind')} {status}, by {trigger.get('who') or '?'} "
             f"{source}{where}{commit}{took}", f"Started {run.get('started_at')}"]
    cause = run.get("triggered_by") or {}
    if cause:
        lines.append(f"Planned because run #{cause.get('run')} of {cause.get('env')} changed "
                     f"{', '.join(cause.get('outputs') or []) or 'its outputs'}, which {run['env']} reads")
    if run.get("summary"):
        lines.append(str(run["summary"]))
    progress = run.get("progress")
    if run.get("status") == "running" and progress:
        lines.append(f"Progress: {progress['done']} of {progress['total']} changes done")
    return "\n".join(lines)


COMMANDS = (Command("history", "the plans and applies that ran, or one run's whole output",
                    lambda a: history(a.env, as_json=a.json, run=a.run), args=(
    Arg("--env", "only this environment", metavar="ENV"),
    Arg("--run", "with --env: show this run (its number in the history) with everything it printed", kind="int",
        metavar="N"),
    Arg("--json", "print the records as JSON", kind="bool"),
)),)
