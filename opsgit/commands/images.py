"""`opsgit images [--env ENV] [--json]`: the images built, newest last."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command


def images(env: str | None = None, *, as_json: bool = False) -> int:
    from opsgit import output
    from opsgit.config import find_root
    from opsgit.gitops.history import IMAGES, read_all
    from opsgit.repo import environment_names, load_environment, require_environment

    root = find_root()
    if env:
        require_environment(root, env)
    environments = {name: load_environment(root, name) for name in ([env] if env else environment_names(root))}
    entries = read_all(root, environments, IMAGES, strict=env is not None)
    if as_json:
        output.emit_json(entries)
        return 0
    if not entries:
        output.say("No images built yet." + ("" if env else " Build one: HC_ROLE=binstore invoke image"))
        return 0
    promoted = {(name, role): image for name, environment in environments.items()
                for role, image in environment.images.items()}
    output.say(f"{'WHEN':<25}  {'ENV':<10} {'ROLE':<10} {'IMAGE':<28} {'BUILDER':<11} {'COMMIT':<10} WHO")
    for entry in entries:
        live = "  (promoted)" if promoted.get((entry["env"], entry["role"])) == entry["image_id"] else ""
        output.say(f"{entry['at']}  {entry['env']:<10} {entry['role']:<10} {entry['image_id']:<28} "
                   f"{entry['builder']:<11} {(entry.get('commit') or '')[:10]:<10} {entry.get('who') or '?'}{live}")
    return 0


COMMANDS = (Command("images", "the images built, per environment", lambda a: images(a.env, as_json=a.json), args=(
    Arg("--env", "only this environment", metavar="ENV"),
    Arg("--json", "print the records as JSON", kind="bool"),
)),)
