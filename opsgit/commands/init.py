"""`opsgit init DIR [--name NAME]`: scaffold a new ops monorepo that renders and plans at once."""

from __future__ import annotations

import re
from pathlib import Path

from opsgit import output
from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError


def init(directory: str, name: str | None = None) -> int:
    import shutil
    import subprocess

    from opsgit.scaffold import files

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not empty", hint="choose a new directory")
    org = name or re.sub(r"[^a-z0-9-]+", "-", target.resolve().name.lower()).strip("-") or "ops"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", org):
        raise UserError(f"invalid name {org!r}", hint="use lower-case letters, digits and '-'")
    written = []
    try:
        for relative, text in files(org).items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(relative)
    except OSError as error:
        shutil.rmtree(target, ignore_errors=True)
        raise UserError(f"cannot write {target}: {error.strerror}", hint="check the parent directory") from None
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=target, check=False, capture_output=True)
    output.say(f"Created an ops monorepo for {org} in {target}:")
    for relative in written:
        output.say(f"  {relative}")
    output.say(f"\nNext:\n  cd {directory}\n  opsgit plan --env dev\n  opsgit apply --env dev "
               "build/plans/dev.plan.json\n  HC_ROLE=app opsgit image --env dev && opsgit verify --role app")
    return 0


COMMANDS = (Command(
    "init", "create a new ops monorepo that renders and plans at once", lambda a: init(a.target, a.name), args=(
        Arg("target", "a new or empty directory", metavar="DIR"),
        Arg("--name", "the organisation's name (default: the directory's)", metavar="NAME"),
    )),)
