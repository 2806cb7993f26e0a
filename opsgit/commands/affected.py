"""`opsgit affected --base REF [--head REF] [--json]`."""

from __future__ import annotations

from pathlib import Path

from opsgit import output
from opsgit.config import find_root, load_settings
from opsgit.gitops.affected import affected as detect


def affected(base: str | None = None, head: str = "HEAD", *, as_json: bool = False, root: Path | None = None) -> int:
    root = root or find_root()
    base = base or load_settings(root).default_base
    result = detect(root, base, head)
    if as_json:
        output.emit_json(result.to_json())
        return 0
    output.say(f"Comparing {result.base[:12]} (merge base of {base}) with {result.head[:12]}: "
               f"{len(result.changed)} file(s) changed.")
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
    return 0
