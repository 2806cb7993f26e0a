"""`opsgit template --template SRC:DEST[:COMMAND] [--once] [--dry] [--wait MIN[:MAX]]`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from opsgit.consul.client import Consul
from opsgit.consul.durations import parse_duration
from opsgit.errors import UserError
from opsgit.repo import load_repo
from opsgit.runtime.template import TemplateRunner, TemplateSpec, parse_spec


def _wait(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    low, _, high = text.partition(":")
    try:
        minimum = parse_duration(low)
        maximum = parse_duration(high) if high else minimum * 4  # consul-template's default
    except ValueError:
        raise UserError(f"invalid --wait {text!r}", hint="use MIN[:MAX], such as 2s:10s") from None
    return minimum, max(minimum, maximum)


def role_specs(role: str, root: Path) -> list[TemplateSpec]:
    repo = load_repo(root, only=set())
    if role not in repo.roles:
        raise UserError(f"unknown role {role!r}")
    found = repo.roles[role]
    return [TemplateSpec(root / "roles" / role / "templates" / t.source, Path(t.destination),
                         tuple(t.command.split()) if t.command else (),
                         int(t.perms, 8) if t.perms else None) for t in found.templates]


def template(specs: Sequence[str], *, role: str | None = None, once: bool = False, dry: bool = False,
             wait: str | None = None, missing_key_timeout: float | None = None, root: Path | None = None) -> int:
    parsed = [parse_spec(text) for text in specs]
    if role:
        parsed += role_specs(role, root or Path.cwd())
    if not parsed:
        raise UserError("no template given", hint="--template SRC:DEST[:COMMAND] or --role ROLE")
    if dry:
        parsed = [replace(spec, command=()) for spec in parsed]
    runner = TemplateRunner(Consul(), parsed, dry=dry, wait=_wait(wait), missing_key_timeout=missing_key_timeout)
    if once or dry:
        return runner.once()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return runner.run_forever(stop)
