"""`opsgit history [--env ENV] [--json]`: the plans and applies that ran."""

from __future__ import annotations

from opsgit import output
from opsgit.config import find_root
from opsgit.errors import UserError
from opsgit.gitops.history import read
from opsgit.repo import load_repo


def history(env: str | None = None, *, as_json: bool = False) -> int:
    root = find_root()
    repo = load_repo(root, only={env} if env else None)
    entries = []
    for name, environment in sorted(repo.environments.items()):
        try:
            entries.extend(read(root, environment.state, name))
        except UserError as error:
            if env:
                raise
            output.warn(f"{error}; listing the other environments")
    entries.sort(key=lambda e: str(e["at"]))
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
