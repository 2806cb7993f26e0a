"""A Plan as text, the way Terraform prints one: symbols, `(known after apply)`,
`# forces replacement`, unchanged attributes hidden, and the closing summary line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opsgit.engine.plan import NOOP, Plan, ResourceChange, same
from opsgit.engine.resolve import UNKNOWN, replace_unknown

SYMBOLS = {("create",): "+", ("update",): "~", ("delete",): "-", ("delete", "create"): "-/+",
           ("create", "delete"): "+/-", ("read",): "<="}
HEADLINES = {("create",): "will be created", ("update",): "will be updated in-place",
             ("delete",): "will be destroyed", ("delete", "create"): "must be replaced",
             ("create", "delete"): "must be replaced", ("read",): "will be read during apply"}
LEGEND = {"+": "create", "~": "update in-place", "-": "destroy", "-/+": "destroy and then create replacement",
          "+/-": "create replacement and then destroy", "<=": "read (data resources)"}


def show(value: Any, sensitive: bool = False) -> str:
    if sensitive:
        return "(sensitive value)"
    if value is UNKNOWN:
        return "(known after apply)"
    if value is None:
        return "null"
    return json.dumps(replace_unknown(value, "(known after apply)"), sort_keys=True)


def format_change(change: ResourceChange, *, paint: Any = None) -> list[str]:
    symbol = SYMBOLS[change.actions]
    reason = {"delete_because_count_index": "(because index is out of range for count)",
              "delete_because_no_resource_config": "(because it is no longer in the configuration)"}
    lines = [f"  # {change.address} {HEADLINES[change.actions]}"]
    if change.action_reason in reason:
        lines.append(f"  # {reason[change.action_reason]}")
    if change.action_reason == "read_because_config_unknown":
        lines.append("  # (config refers to values not yet known)")
    elif change.action_reason == "read_because_dependency_pending":
        lines.append("  # (depends on a resource or a module with changes pending)")
    kind = "data" if change.actions == ("read",) else "resource"
    lines.append(f"{symbol:>3} {kind} \"{change.type}\" \"{change.name}\" {{")
    before: Mapping[str, Any] = change.before or {}
    after: Mapping[str, Any] = change.after or {}
    # As Terraform shows them: attributes null on both sides (a provider schema's unset
    # optional ones) are not listed.
    keys = sorted(k for k in set(before) | set(after) if before.get(k) is not None or after.get(k) is not None)
    width = max((len(k) for k in keys), default=0)
    hidden = 0
    for key in keys:
        secret = key in change.sensitive
        old, new = before.get(key), after.get(key)
        name = key.ljust(width)
        forces = "  # forces replacement" if key in change.replace_paths else ""
        if change.actions in (("create",), ("read",)):
            lines.append(f"      + {name} = {show(new, secret)}")
        elif change.actions == ("delete",):
            lines.append(f"      - {name} = {show(old, secret)} -> null")
        elif key not in after:
            hidden += 1
        elif key not in before:
            lines.append(f"      + {name} = {show(new, secret)}{forces}")
        elif old == new:
            if key == "id":
                lines.append(f"        {name} = {show(old, secret)}")
            else:
                hidden += 1
        else:
            lines.append(f"      ~ {name} = {show(old, secret)} -> {show(new, secret)}{forces}")
    if hidden:
        lines.append(f"        # ({hidden} unchanged attribute{'s' if hidden != 1 else ''} hidden)")
    lines.append("    }")
    return lines


def format_plan(plan: Plan) -> str:
    out: list[str] = []
    if plan.resource_drift:
        out += ["Note: Objects have changed outside of opsgit", ""]
        for drift in plan.resource_drift:
            what = "has been deleted" if drift.after is None else "has changed"
            out.append(f"  # {drift.address} {what}")
            if drift.after is not None:
                for key in sorted(set(drift.before or {}) | set(drift.after)):
                    old, new = (drift.before or {}).get(key), drift.after.get(key)
                    if not same(old, new):
                        out.append(f"      ~ {key} = {show(old, key in drift.sensitive)} -> "
                                   f"{show(new, key in drift.sensitive)}")
        out.append("")
    # A data source read while planning is not an action; one deferred to apply is shown.
    changes = [c for c in plan.resource_changes if c.actions != NOOP
               and not (c.actions == ("read",) and c.action_reason is None)]
    if plan.targets:
        out += ["Resource targeting is in effect: only " + ", ".join(plan.targets) + " and what they need.", ""]
    if changes:
        used = sorted({SYMBOLS[c.actions] for c in changes}, key=list(LEGEND).index)
        out += ["opsgit used the selected providers to generate the following execution plan. "
                "Resource actions are indicated with the following symbols:"]
        out += [f"  {symbol:>3} {LEGEND[symbol]}" for symbol in used]
        out += ["", "opsgit will perform the following actions:", ""]
        for change in changes:
            out += [*format_change(change), ""]
    out.append(plan.summary_line())
    moved_outputs = {k: v for k, v in plan.output_changes.items() if v["actions"] != ["no-op"]}
    if moved_outputs and plan.mode != "refresh-only":
        out += ["", "Changes to Outputs:"]
        for name, output in sorted(moved_outputs.items()):
            symbol = {"create": "+", "update": "~", "delete": "-"}[output["actions"][0]]
            after = UNKNOWN if output["after_unknown"] is True else output["after"]
            shown = "(sensitive value)" if output["sensitive"] else show(after)
            out.append(f"  {symbol} {name} = {shown}")
    return "\n".join(out)
