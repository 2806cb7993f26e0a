"""A Plan as text, the way Terraform prints one: symbols, `(known after apply)`,
`# forces replacement`, unchanged attributes hidden, and the closing summary line."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


COLOURS = {"+": "32", "~": "33", "-": "31", "<=": "36"}


def _paint(symbol: str, colour: bool) -> str:
    """A change symbol in Terraform's colours: green +, yellow ~, red -, both halves of -/+."""
    if not colour:
        return symbol
    if symbol in ("-/+", "+/-"):
        return "".join(f"\033[{COLOURS[part]}m{part}\033[0m" if part in COLOURS else part for part in symbol)
    code = COLOURS.get(symbol)
    return f"\033[{code}m{symbol}\033[0m" if code else symbol


def _scalar(value: Any, sensitive: bool = False) -> str:
    """`show`, but a string as it reads (é, not \\u00e9), as Terraform's plan text has it."""
    if isinstance(value, str) and not sensitive:
        return json.dumps(value, ensure_ascii=False)
    return show(value, sensitive)


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() and not name[:1].isdigit() else json.dumps(name)


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.rstrip("\n")


class _Lines:
    """Terraform's layout: a change symbol in its column, nesting by four spaces, `=` aligned
    among siblings, unchanged members counted and hidden."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lines: list[str] = []

    def add(self, indent: int, symbol: str, text: str) -> None:
        mark = f"{_paint(symbol, self.colour)} " if symbol else "  "
        self.lines.append(" " * indent + mark + text)

    def close(self, indent: int, text: str) -> None:
        """A closing `}`, `]` or `EOT`, under the name it closes."""
        self.lines.append(" " * (indent + 2) + text)

    # a whole value, created or destroyed: every nested line carries the same symbol
    def whole(self, indent: int, symbol: str, head: str, value: Any, sensitive: bool = False, tail: str = "",
              comma: str = "") -> None:
        ending = " -> null" if symbol == "-" else ""
        if sensitive or value is UNKNOWN or value is None or not isinstance(value, dict | list) or not value:
            if _multiline(value) and not sensitive:
                self.add(indent, symbol, f"{head}<<-EOT")
                for line in str(value).rstrip("\n").split("\n"):
                    self.add(indent + 4, "", line)
                self.close(indent, f"EOT{ending}{comma}{tail}")
                return
            shown = "[]" if value == [] else "{}" if value == {} else _scalar(value, sensitive)
            self.add(indent, symbol, f"{head}{shown}{ending}{comma}{tail}")
            return
        if isinstance(value, dict):
            self.add(indent, symbol, f"{head}{{{tail}")
            width = max(len(_key(k)) for k in value)
            for name in sorted(value):
                self.whole(indent + 4, symbol, f"{_key(name).ljust(width)} = ", value[name])
            self.close(indent, f"}}{ending}{comma}")
            return
        self.add(indent, symbol, f"{head}[{tail}")
        for item in value:
            self.whole(indent + 4, symbol, "", item, comma=",")
        self.close(indent, f"]{ending}{comma}")

    # a value that changed: maps and lists member by member
    def changed(self, indent: int, head: str, old: Any, new: Any, sensitive: bool = False, tail: str = "",
                comma: str = "") -> None:
        if sensitive:
            self.add(indent, "~", f"{head}(sensitive value){comma}{tail}")
        elif isinstance(old, dict) and isinstance(new, dict):
            self.add(indent, "~", f"{head}{{{tail}")
            keys = sorted(set(old) | set(new))
            width = max((len(_key(k)) for k in keys), default=0)
            hidden = 0
            for name in keys:
                label = f"{_key(name).ljust(width)} = "
                if name not in new or (new[name] is None and old.get(name) is not None):
                    self.whole(indent + 4, "-", label, old[name])
                elif name not in old or (old[name] is None and new.get(name) is not None):
                    self.whole(indent + 4, "+", label, new[name])
                elif same(old[name], new[name]):
                    hidden += 1
                else:
                    self.changed(indent + 4, label, old[name], new[name])
            if hidden:
                self.add(indent + 4, "", f"# ({hidden} unchanged {'element' if hidden == 1 else 'elements'} hidden)")
            self.close(indent, f"}}{comma}")
        elif isinstance(old, list) and isinstance(new, list):
            self.add(indent, "~", f"{head}[{tail}")
            hidden = 0
            for index in range(max(len(old), len(new))):
                if index >= len(new):
                    self.whole(indent + 4, "-", "", old[index], comma=",")
                elif index >= len(old):
                    self.whole(indent + 4, "+", "", new[index], comma=",")
                elif same(old[index], new[index]):
                    hidden += 1
                else:
                    self.changed(indent + 4, "", old[index], new[index], comma=",")
            if hidden:
                self.add(indent + 4, "", f"# ({hidden} unchanged {'element' if hidden == 1 else 'elements'} hidden)")
            self.close(indent, f"]{comma}")
        elif (_multiline(old) and isinstance(new, str)) or (_multiline(new) and isinstance(old, str)):
            self.add(indent, "~", f"{head}<<-EOT{tail}")
            import difflib

            for line in difflib.ndiff(str(old).rstrip("\n").split("\n"), str(new).rstrip("\n").split("\n")):
                if line.startswith(("- ", "+ ")):
                    self.add(indent + 4, line[0], line[2:])
                elif line.startswith("  "):
                    self.add(indent + 4, "", line[2:])
            self.close(indent, f"EOT{comma}")
        else:
            self.add(indent, "~", f"{head}{_scalar(old)} -> {_scalar(new)}{comma}{tail}")


def format_change(change: ResourceChange, *, colour: bool = False, pending: Sequence[str] = ()) -> list[str]:
    """One change; `pending`: the not yet applied upstream environments its configuration reads."""
    symbol = SYMBOLS[change.actions]
    reason = {"delete_because_count_index": "(because index is out of range for count)",
              "delete_because_no_resource_config": "(because it is no longer in the configuration)"}
    lines = [f"  # {change.address} {HEADLINES[change.actions]}"]
    for upstream in pending:
        lines.append(f"  # (values read from environment {upstream} are known after apply of {upstream})")
    if change.action_reason in reason:
        lines.append(f"  # {reason[change.action_reason]}")
    if change.action_reason == "read_because_config_unknown":
        lines.append("  # (config refers to values not yet known)")
    elif change.action_reason == "read_because_dependency_pending":
        lines.append("  # (depends on a resource or a module with changes pending)")
    kind = "data" if change.actions == ("read",) else "resource"
    lines.append(f"{' ' * (3 - len(symbol))}{_paint(symbol, colour)} {kind} \"{change.type}\" \"{change.name}\" {{")
    before: Mapping[str, Any] = change.before or {}
    after: Mapping[str, Any] = change.after or {}
    # As Terraform shows them: attributes null on both sides (a provider schema's unset
    # optional ones) are not listed.
    keys = sorted(k for k in set(before) | set(after) if before.get(k) is not None or after.get(k) is not None)
    width = max((len(k) for k in keys), default=0)
    body = _Lines(colour)
    hidden = 0
    for key in keys:
        secret = key in change.sensitive
        old, new = before.get(key), after.get(key)
        label = f"{key.ljust(width)} = "
        forces = "  # forces replacement" if key in change.replace_paths else ""
        if change.actions in (("create",), ("read",)):
            body.whole(6, "+", label, new, secret)
        elif change.actions == ("delete",):
            body.whole(6, "-", label, old, secret)
        elif key not in after:
            hidden += 1
        elif key not in before or old is None:
            body.whole(6, "+", label, new, secret, forces)
        elif same(old, new):
            if key == "id":
                body.add(6, "", f"{label}{_scalar(old, secret)}")
            else:
                hidden += 1
        elif new is None:
            body.whole(6, "-", label, old, secret, forces)
        else:
            body.changed(6, label, old, new, secret, forces)
    lines += body.lines
    if hidden:
        lines.append(f"        # ({hidden} unchanged attribute{'s' if hidden != 1 else ''} hidden)")
    lines.append("    }")
    return lines


def _natural(address: str) -> list[Any]:
    """`web[2]` before `web[10]`: numbers in an address compared as numbers."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", address)]


def _pending_reads(plan: Plan, address: str) -> list[str]:
    """The pending upstreams whose outputs the configuration of `address` reads."""
    resource = plan.graph.resources.get(address) if plan.graph is not None else None
    if resource is None or not plan.pending_upstreams:
        return []
    text = json.dumps(resource.attributes)
    return [env for env in plan.pending_upstreams if f"${{environment.{env}.outputs." in text]


def format_plan(plan: Plan, *, colour: bool = False) -> str:
    out: list[str] = []
    if plan.resource_drift:
        out += ["Note: Objects have changed outside of opsgit", ""]
        for drift in plan.resource_drift:
            what = "has been deleted" if drift.after is None else "has changed"
            out.append(f"  # {drift.address} {what}")
            if drift.after is not None:
                noted = _Lines(colour)
                for key in sorted(set(drift.before or {}) | set(drift.after)):
                    old, new = (drift.before or {}).get(key), drift.after.get(key)
                    if not same(old, new):
                        noted.changed(6, f"{key} = ", old, new, key in drift.sensitive)
                out += noted.lines
        out.append("")
    # A data source read while planning is not an action; one deferred to apply is shown.
    changes = sorted((c for c in plan.resource_changes if c.actions != NOOP
                      and not (c.actions == ("read",) and c.action_reason is None)), key=lambda c: _natural(c.address))
    if plan.targets:
        out += ["Resource targeting is in effect: only " + ", ".join(plan.targets) + " and what they need.", ""]
    if changes:
        used = sorted({SYMBOLS[c.actions] for c in changes}, key=list(LEGEND).index)
        out += ["opsgit used the selected providers to generate the following execution plan. "
                "Resource actions are indicated with the following symbols:"]
        out += [f"{' ' * (3 - len(symbol))}{_paint(symbol, colour)} {LEGEND[symbol]}" for symbol in used]
        out += ["", "opsgit will perform the following actions:", ""]
        for change in changes:
            out += [*format_change(change, colour=colour, pending=_pending_reads(plan, change.address)), ""]
    for upstream in plan.pending_upstreams:
        out += [f"Note: environment {upstream} has not been applied with every output this plan reads: "
                f"their values are known after apply of {upstream}. Apply {upstream} first, then plan again.", ""]
    out.append(plan.summary_line())
    moved_outputs = {k: v for k, v in plan.output_changes.items() if v["actions"] != ["no-op"]}
    if moved_outputs and plan.mode != "refresh-only":
        out += ["", "Changes to Outputs:"]
        listed = _Lines(colour)
        for name, output in sorted(moved_outputs.items()):
            after = UNKNOWN if output["after_unknown"] is True else output["after"]
            if isinstance(after, list) and isinstance(output["after_unknown"], list):
                after = [UNKNOWN if unknown is True else value
                         for value, unknown in zip(after, output["after_unknown"], strict=False)]
            action = output["actions"][0]
            if action == "update" and output.get("before") is not None:
                listed.changed(2, f"{name} = ", output.get("before"), after, bool(output["sensitive"]))
            else:
                listed.whole(2, {"create": "+", "delete": "-"}.get(action, "~"), f"{name} = ",
                             output.get("before") if action == "delete" else after, bool(output["sensitive"]))
        out += listed.lines
    return "\n".join(out)
