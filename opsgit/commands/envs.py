"""`opsgit envs [--graph] [--json]`: the environments, and which reads which one's outputs."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command


def envs(*, graph: bool = False, as_json: bool = False) -> int:
    from opsgit import output
    from opsgit.config import find_root
    from opsgit.gitops.environments import environment_graph

    found = environment_graph(find_root())
    if as_json:
        output.emit_json({"environments": [
            {"name": name, "reads": {up: found.outputs_read(name, up) for up in found.upstreams(name)},
             "read_by": found.dependents(name)} for name in found.order()],
            "order": found.order()})
        return 0
    if graph:
        for line in found.tree():
            output.say(line)
        return 0
    output.say(f"{'ENVIRONMENT':<20} {'READS':<40} READ BY")
    for name in found.order():
        reads = "; ".join(f"{up} ({', '.join(found.outputs_read(name, up))})" for up in found.upstreams(name))
        output.say(f"{name:<20} {reads or '-':<40} {', '.join(found.dependents(name)) or '-'}")
    output.say(f"\n{output.plural(len(found.names), 'environment')}, in the order they apply.")
    return 0


COMMANDS = (Command("envs", "the environments, in the order they apply, and whose outputs each reads",
                    lambda a: envs(graph=a.graph, as_json=a.json), args=(
    Arg("--graph", "draw which environment reads which as a tree", kind="bool"),
    Arg("--json", "the environments, what each reads and the order as JSON", kind="bool"),
)),)
