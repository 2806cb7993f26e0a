"""`opsgit render`: render artefacts into the build directory."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from opsgit import output
from opsgit.commands.base import Arg, Command

KIND_NAMES = {"graph": "environment graph", "image": "image template", "config": "role bundle"}


def render(root: Path | None = None, envs: Sequence[str] = (), roles: Sequence[str] = (),
           as_json: bool = False) -> int:
    from opsgit.config import find_root, load_settings
    from opsgit.render.pipeline import Selection, publish, render_selection
    from opsgit.repo import load_repo

    started = time.perf_counter()
    root = root or find_root()
    settings = load_settings(root)
    repo = load_repo(root, settings)
    selection = Selection(envs=list(envs) or None, roles=list(roles) or None)
    artefacts = render_selection(repo, selection)
    complete = not envs and not roles
    build = publish(settings.build_path, artefacts, complete=complete, source=_source(root) if complete else None)
    if as_json:
        output.emit_json({"build_dir": str(build), "artefacts": [a.record() for a in artefacts]})
        return 0
    counts = Counter(a.kind for a in artefacts)
    for artefact in artefacts:
        output.say(f"  {output.paint(artefact.kind.ljust(6), 'dim')} {artefact.directory:<28} "
                   f"{artefact.hash[:12]}  ({output.plural(len(artefact.reads), 'file')} read)")
    summary = ", ".join(output.plural(n, KIND_NAMES[k]) for k, n in sorted(counts.items()))
    shown = build.relative_to(root) if build.is_relative_to(root) else build
    output.say(f"Rendered {summary or 'nothing'} into {shown}/ in {time.perf_counter() - started:.2f}s.")
    return 0


def _source(root: Path) -> dict[str, str] | None:
    """The git content this render read, when it is exactly a commit's (no uncommitted change)."""
    from opsgit import __version__
    from opsgit.gitops.diff import content_id, worktree_is_clean

    content = content_id(root)
    if content is None or not worktree_is_clean(root):
        return None
    return {"content": content, "opsgit": __version__}


COMMANDS = (Command(
    "render", "render image templates, environment graphs and role bundles into the build directory",
    lambda a: render(envs=a.env, roles=a.role, as_json=a.json), args=(
        Arg("--env", "only this environment (and the roles it deploys); repeatable", kind="list", metavar="ENV"),
        Arg("--role", "only this role's image template and bundle; repeatable", kind="list", metavar="ROLE"),
        Arg("--json", "print the artefacts as JSON", kind="bool"),
    )),)
