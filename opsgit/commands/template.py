"""`opsgit template (--template SRC:DEST[:COMMAND] | --config FILE | --role ROLE) [--once] [--dry]
[--wait MIN[:MAX]] [--in-place] [--give-up-after DURATION]`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from opsgit.consul.client import Consul
from opsgit.errors import UserError
from opsgit.repo import load_repo
from opsgit.runtime.template import TemplateRunner
from opsgit.runtime.template_config import TemplateSpec, load_config, parse_spec, parse_wait


def role_specs(role: str, root: Path) -> list[TemplateSpec]:
    repo = load_repo(root, only=set())
    if role not in repo.roles:
        raise UserError(f"unknown role {role!r}", hint=f"roles: {', '.join(sorted(repo.roles)) or 'none'}")
    found = repo.roles[role]
    return [TemplateSpec(root / "roles" / role / "templates" / t.source, Path(t.destination),
                         tuple(t.command.split()) if t.command else (),
                         int(t.perms, 8) if t.perms else None) for t in found.templates]


def template(specs: Sequence[str], *, configs: Sequence[str] = (), role: str | None = None, once: bool = False,
             dry: bool = False, wait: str | None = None, missing_key_timeout: float | None = None,
             in_place: bool = False, give_up_after: float | None = None, root: Path | None = None) -> int:
    parsed = [parse_spec(text) for text in specs]
    for config in configs:
        parsed += load_config(Path(config))
    if role:
        parsed += role_specs(role, root or Path.cwd())
    if not parsed:
        raise UserError("no template given", hint="--template SRC:DEST[:COMMAND], --config FILE or --role ROLE")
    if in_place:
        parsed = [replace(spec, in_place=True) for spec in parsed]
    if dry:
        parsed = [replace(spec, command=()) for spec in parsed]
    runner = TemplateRunner(Consul(), parsed, dry=dry, wait=parse_wait(wait), missing_key_timeout=missing_key_timeout,
                            give_up_after=give_up_after)
    if once or dry:
        return runner.once()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return runner.run_forever(stop)
