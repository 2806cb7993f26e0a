"""`opsgit graph --env ENV [--plan PLANFILE] [--svg]`: the environment's resource graph as
Graphviz DOT, as `terraform graph` prints it (or a saved plan's, coloured by action);
`opsgit graph --envs`: the environments and which reads which one's outputs."""

from __future__ import annotations

from pathlib import Path

from opsgit.commands.base import Arg, Command


def graph(env: str | None, *, plan_file: Path | None = None, svg: bool = False, envs: bool = False) -> int:
    import sys

    from opsgit.errors import UserError
    from opsgit.graph.dot import to_dot, to_svg

    if envs:
        from opsgit.config import find_root
        from opsgit.gitops.environments import environment_graph

        text = environment_graph(find_root()).to_dot()
    elif env is None:
        raise UserError("graph needs --env ENV, or --envs for the graph of environments")
    elif plan_file is not None:
        from opsgit.engine.planfile import read_plan

        plan = read_plan(plan_file)
        if plan.env != env:
            raise UserError(f"the plan in {plan_file} is for environment {plan.env!r}, not {env!r}")
        if plan.graph is None:
            raise UserError(f"the plan in {plan_file} carries no graph", hint=f"make it with `opsgit plan --env {env}`")
        actions = {change.address: change.actions for change in plan.resource_changes}
        removed = {change.address: change.dependencies for change in plan.resource_changes
                   if change.address not in plan.graph.resources}
        text = to_dot(plan.graph, actions, removed)
    else:
        from opsgit.workspace import open_workspace

        text = to_dot(open_workspace(env).graph)
    sys.stdout.write(to_svg(text) if svg else text)  # DOT has no secrets: addresses only
    return 0


COMMANDS = (Command("graph", "print the resource graph as Graphviz DOT (or a saved plan's, coloured by action)",
                    lambda a: graph(a.env, plan_file=a.plan, svg=a.svg, envs=a.envs), args=(
    Arg("--env", "the environment", metavar="ENV", group="what"),
    Arg("--envs", "draw the environments instead: which reads which one's outputs", kind="bool", group="what"),
    Arg("--plan", "draw this saved plan's changes instead", kind="path", metavar="PLANFILE"),
    Arg("--svg", "draw it as SVG with Graphviz's dot", kind="bool"),
)),)
