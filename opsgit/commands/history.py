"""`opsgit history [--env ENV] [--json]`: the plans and applies that ran."""

from __future__ import annotations

from opsgit import output
from opsgit.config import find_root
from opsgit.gitops.history import RUNS, read_all
from opsgit.repo import load_repo


def history(env: str | None = None, *, as_json: bool = False) -> int:
    root = find_root()
    repo = load_repo(root, only={env} if env else None)
    entries = read_all(root, repo.environments, RUNS, strict=env is not None)
    if as_json:
        output.emit_json([{k: v for k, v in e.items() if k != "log"} for e in entries])
        return 0
    if not entries:
        output.say("No runs recorded yet.")
        return 0
    for entry in entries:
        commit = (entry.get("commit") or "")[:10]
        where = entry.get("pull_request") or commit
        output.say(f"{entry['at']}  {entry['env']:<12} {entry['kind']:<6} {entry['result']:<8} "
                   f"{entry.get('who') or '?':<10} {where:<14} {entry['duration_seconds']:>7.1f}s  {entry['summary']}")
    return 0
