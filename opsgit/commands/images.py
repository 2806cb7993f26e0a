"""`opsgit images [--env ENV] [--json]`: the images built, newest last."""

from __future__ import annotations

from opsgit import output
from opsgit.config import find_root
from opsgit.gitops.history import IMAGES, read_all
from opsgit.repo import load_repo


def images(env: str | None = None, *, as_json: bool = False) -> int:
    root = find_root()
    repo = load_repo(root, only={env} if env else None)
    entries = read_all(root, repo.environments, IMAGES, strict=env is not None)
    if as_json:
        output.emit_json(entries)
        return 0
    if not entries:
        output.say("No images built yet." + ("" if env else " Build one: HC_ROLE=binstore invoke image"))
        return 0
    promoted = {(name, role): image for name, environment in repo.environments.items()
                for role, image in environment.images.items()}
    for entry in entries:
        live = "  (promoted)" if promoted.get((entry["env"], entry["role"])) == entry["image_id"] else ""
        output.say(f"{entry['at']}  {entry['env']:<10} {entry['role']:<10} {entry['image_id']:<28} "
                   f"{entry['builder']:<11} {(entry.get('commit') or '')[:10]:<10} {entry.get('who') or '?'}{live}")
    return 0
