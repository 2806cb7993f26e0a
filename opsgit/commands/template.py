"""`opsgit template (--template SRC:DEST[:COMMAND] | --config FILE | --role ROLE) [--once] [--dry]
[--wait MIN[:MAX]] [--in-place] [--give-up-after DURATION]`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError

if TYPE_CHECKING:
    from opsgit.runtime.template_config import TemplateSpec


def role_specs(role: str, root: Path, destination_root: Path = Path("/")) -> list[TemplateSpec]:
    """The role's templates; destinations under `destination_root` (an image being assembled, a
    container's root) and held inside the places host templates may write."""
    import shlex

    from opsgit.repo import load_repo
    from opsgit.repo.load import HOST_WRITE_ROOTS
    from opsgit.runtime.template_config import TemplateSpec

    repo = load_repo(root, only=set())
    if role not in repo.roles:
        raise UserError(f"unknown role {role!r}", hint=f"roles: {', '.join(sorted(repo.roles)) or 'none'}")
    found = repo.roles[role]
    confine = tuple(destination_root / place.strip("/") for place in HOST_WRITE_ROOTS)
    return [TemplateSpec(root / "roles" / role / "templates" / t.source, destination_root / t.destination.lstrip("/"),
                         tuple(shlex.split(t.command)) if t.command else (),
                         int(t.perms, 8) if t.perms else None, confine=confine) for t in found.templates]


def template(specs: Sequence[str], *, configs: Sequence[str] = (), role: str | None = None, once: bool = False,
             dry: bool = False, wait: str | None = None, missing_key_timeout: float | None = None,
             in_place: bool = False, give_up_after: float | None = None, root: Path | None = None,
             destination_root: str | None = None) -> int:
    import signal
    import threading
    from dataclasses import replace

    from opsgit.consul.client import Consul
    from opsgit.runtime.template import TemplateRunner
    from opsgit.runtime.template_config import load_config, parse_spec, parse_wait

    parsed = [parse_spec(text) for text in specs]
    for config in configs:
        parsed += load_config(Path(config))
    if role:
        parsed += role_specs(role, root or Path.cwd(), Path(destination_root or "/"))
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


def _run(args: argparse.Namespace) -> int:
    return template(args.template, configs=args.config, role=args.role, once=args.once, dry=args.dry, wait=args.wait,
                    missing_key_timeout=args.missing_key_timeout, in_place=args.in_place,
                    give_up_after=args.give_up_after, destination_root=args.destination_root)


COMMANDS = (Command(
    "template", "render config files from Consul (consul-template style)", _run, task=False, args=(
        Arg("--template", "SRC:DEST[:COMMAND]: render SRC to DEST, then run COMMAND; repeatable", kind="list",
            metavar="SRC:DEST[:COMMAND]"),
        Arg("--config", "a YAML list of templates (source, destination, command, command_timeout, perms, backup, "
            "wait, left_delimiter, right_delimiter, in_place); repeatable", kind="list", metavar="FILE"),
        Arg("--role", "the role's templates and destinations from its role.yaml", metavar="ROLE"),
        Arg("--destination-root", "with --role: write the destinations under DIR (an image or container root)",
            metavar="DIR"),
        Arg("--once", "render once and exit", kind="bool"),
        Arg("--dry", "print instead of writing", kind="bool"),
        Arg("--wait", "quiescence before re-rendering", metavar="MIN[:MAX]"),
        Arg("--missing-key-timeout", "fail, naming the key, when key() waits longer than this", kind="duration",
            metavar="DURATION"),
        Arg("--in-place", "rewrite destinations in place (keeps the inode, for bind-mounted files)", kind="bool"),
        Arg("--give-up-after", "exit 1 when Consul has been unreachable this long (default: keep retrying)",
            kind="duration", metavar="DURATION"),
    )),)
