"""An environment's resource graph as Graphviz DOT, as `terraform graph` prints it: one node per
resource instance, an edge from each resource to what it depends on, modules as clusters; with a
plan, each node coloured and marked by its action (`+` create, `~` update, `-` delete, `-/+`
replace)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opsgit.graph.model import Graph

# the colours of the terminal's plan text
ACTIONS: Mapping[tuple[str, ...], tuple[str, str, str]] = {
    ("create",): ("+", "#2e7d32", "#e8f5e9"),
    ("update",): ("~", "#b8860b", "#fff8e1"),
    ("delete",): ("-", "#c62828", "#ffebee"),
    ("delete", "create"): ("-/+", "#c62828", "#fff3e0"),
    ("create", "delete"): ("+/-", "#2e7d32", "#fff3e0"),
    ("read",): ("<=", "#1565c0", "#e3f2fd"),
}


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def module_of(address: str) -> str:
    """`module.a.module.b.aws_instance.x[0]` -> `module.a.module.b`; '' at the root."""
    parts, module = address.split("."), []
    while len(parts) > 2 and parts[0] == "module":
        module += parts[:2]
        parts = parts[2:]
    return ".".join(module)


def to_dot(graph: Graph, actions: Mapping[str, Sequence[str]] | None = None,
           removed: Mapping[str, Sequence[str]] | None = None) -> str:
    """DOT text of `graph`; `actions` (address -> a plan's actions) colours it, and `removed`
    (address -> its dependencies) adds what the plan deletes, which the graph no longer has."""
    dependencies = {address: tuple(resource.dependencies) for address, resource in graph.resources.items()}
    dependencies.update({address: tuple(needs) for address, needs in (removed or {}).items()})
    lines = ["digraph G {", '  rankdir = "RL";', '  node [shape = rect, fontname = "sans-serif"];']
    clusters: dict[str, list[str]] = {}
    for address in sorted(dependencies):
        clusters.setdefault(module_of(address), []).append(address)
    for number, (module, addresses) in enumerate(sorted(clusters.items())):
        indent = "  "
        if module:
            lines += [f"  subgraph cluster_{number} {{", f"    label = {quote(module)};",
                      '    style = "rounded,dashed"; color = "#9e9e9e"; fontname = "sans-serif";']
            indent = "    "
        for address in addresses:
            lines.append(indent + _node(address, module, (actions or {}).get(address)))
        if module:
            lines.append("  }")
    for address in sorted(dependencies):
        for needed in sorted(set(dependencies[address])):
            if needed in dependencies:
                lines.append(f"  {quote(address)} -> {quote(needed)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(address: str, module: str, actions: Sequence[str] | None) -> str:
    label = address[len(module) + 1:] if module else address
    marked = ACTIONS.get(tuple(actions or ()))
    if marked is None:
        return f"{quote(address)} [label = {quote(label)}];"
    symbol, colour, fill = marked
    return (f"{quote(address)} [label = {quote(f'{symbol} {label}')}, color = {quote(colour)}, "
            f"fontcolor = {quote(colour)}, style = filled, fillcolor = {quote(fill)}];")


def to_svg(dot: str, timeout: float = 30.0) -> str:
    """The picture, by Graphviz's `dot` (Debian's graphviz)."""
    import shutil
    import subprocess

    from opsgit.errors import ToolError

    binary = shutil.which("dot")
    if binary is None:
        raise ToolError("Graphviz's dot is not installed", hint="apt-get install graphviz (make installs it)")
    try:
        done = subprocess.run([binary, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"dot took more than {timeout:g}s to draw the graph") from None
    if done.returncode != 0:
        raise ToolError(f"dot failed: {done.stderr.strip()[:300]}")
    return done.stdout
