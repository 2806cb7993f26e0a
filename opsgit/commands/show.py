"""`opsgit show [--json] PLANFILE`: a saved plan, as text or in Terraform's JSON plan format
(`terraform show -json PLANFILE`), for the tools that read Terraform plans."""

from __future__ import annotations

import sys
from pathlib import Path

from opsgit.commands.base import Arg, Command


def show(plan_file: Path, *, as_json: bool = False) -> int:
    from opsgit import output
    from opsgit.engine.plan_text import format_plan
    from opsgit.engine.planfile import read_plan

    plan = read_plan(plan_file)
    if as_json:
        output.emit_json(plan.to_json())
    else:
        output.say(format_plan(plan, colour=output.use_colour(sys.stdout)))
    return 0


COMMANDS = (
    Command("show", "show a saved plan (as text, or --json: Terraform's JSON plan format)",
            lambda a: show(a.plan_file, as_json=a.json), args=(
                Arg("plan_file", "the saved plan, e.g. build/plans/dev.plan.json", kind="path", metavar="PLANFILE"),
                Arg("--json", "print it in Terraform's JSON plan format (terraform show -json)", kind="bool"))),
)
