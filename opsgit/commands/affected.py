"""`opsgit affected --base REF [--head REF] [--json]`."""

from __future__ import annotations

from pathlib import Path

from opsgit.commands.base import Arg, Command


def affected(base: str | None = None, head: str = "HEAD", *, as_json: bool = False, root: Path | None = None) -> int:
    from opsgit import output
    from opsgit.config import find_root, load_settings
    from opsgit.gitops.affected import affected as detect
    from opsgit.gitops.diff import refuse_or_warn_uncommitted

    root = root or find_root()
    base = base or load_settings(root).default_base
    if head == "HEAD":
        refuse_or_warn_uncommitted(root, posting=False)
    result = detect(root, base, head)
    if as_json:
        output.emit_json(result.to_json())
        return 0
    output.say(f"Comparing {result.base[:12]} (merge base of {base}) with {result.head[:12]}: "
               f"{output.plural(len(result.changed), 'file')} changed.")
    if not (result.environments or result.images or result.configs):
        output.say("Nothing affected: no rendered environment, image or role bundle changed.")
        return 0
    for title, impacts in (("Environments", result.environments), ("Images", result.images),
                           ("Role bundles", result.configs)):
        if impacts:
            output.say(f"\n{title}:")
            for impact in impacts:
                output.say(f"  {impact.name:<20} {impact.action:<8} ({', '.join(impact.reasons[:3])}"
                           f"{', ...' if len(impact.reasons) > 3 else ''})")
    if result.dependents:
        output.say("\nDependents (they read outputs of the environments above: plan them once those are applied, "
                   "with `opsgit apply --env ENV --plan-dependents`):")
        for impact in result.dependents:
            output.say(f"  {impact.name:<20} after: {', '.join(impact.reasons)}")
    return 0


COMMANDS = (Command(
    "affected", "the environments and images a git change affects, exactly", lambda a: affected(
        a.base, a.head, as_json=a.json), args=(
        Arg("--base", "compare with this ref's merge base (default: [tool.opsgit] default_base)", metavar="REF"),
        Arg("--head", "the commit to compare (default HEAD)", default="HEAD", metavar="REF"),
        Arg("--json", "JSON with a CI matrix (one job per environment)", kind="bool"),
    )),)
