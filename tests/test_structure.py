"""The package's shape, checked from its source: the renderer and the engine meet only through
`opsgit.graph` (and the workspace above both), no two modules import each other in a circle, and
every user error class is in the drawn tree of `opsgit/errors.py`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import opsgit
import opsgit.errors

PACKAGE = Path(opsgit.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST, *, top_level_only: bool, known: frozenset[str] = frozenset()) -> Iterator[str]:
    """Modules imported; with `top_level_only`, those run at import time (not inside functions or
    `if TYPE_CHECKING:` blocks)."""
    def walk(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            yield child
            yield from walk(child)

    for node in walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from opsgit.repo import yamlio` imports the module opsgit.repo.yamlio
            submodules = [f"{node.module}.{alias.name}" for alias in node.names
                          if f"{node.module}.{alias.name}" in known]
            yield from submodules or [node.module]


def sources() -> dict[str, ast.AST]:
    return {module_name(path): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}


def test_render_and_engine_do_not_import_each_other() -> None:
    found = []
    for name, tree in sources().items():
        for imported in imports(tree, top_level_only=False):
            if name.startswith("opsgit.render") and imported.startswith("opsgit.engine"):
                found.append(f"{name} imports {imported}")
            if name.startswith("opsgit.engine") and imported.startswith("opsgit.render"):
                found.append(f"{name} imports {imported}")
            if name.startswith("opsgit.commands.") and imported.startswith("opsgit.commands.") and \
                    imported not in ("opsgit.commands.base",) and not _declaration_import(name, imported):
                found.append(f"{name} imports {imported}")
    assert found == []


def _declaration_import(name: str, imported: str) -> bool:
    """Commands may share declared arguments (`--parallelism`, `--lock-timeout`), the plan and
    apply commands their `--affected` helpers (which plan and apply each environment in turn);
    they do not call each other's implementations otherwise."""
    return (imported, name) in {("opsgit.commands.plan", "opsgit.commands.apply"),
                                ("opsgit.commands.plan", "opsgit.commands.drift"),
                                ("opsgit.commands.apply", "opsgit.commands.state"),
                                ("opsgit.commands.plan_affected", "opsgit.commands.plan"),
                                # apply's helpers: one environment's run, and the ordered runs
                                ("opsgit.commands.apply_env", "opsgit.commands.apply"),
                                ("opsgit.commands.apply_affected", "opsgit.commands.apply"),
                                ("opsgit.commands.apply_env", "opsgit.commands.apply_affected"),
                                ("opsgit.commands.plan", "opsgit.commands.apply_affected"),
                                ("opsgit.commands.image", "opsgit.commands.verify"),
                                ("opsgit.commands.server", "opsgit.commands.alerts")}


def test_no_import_cycles() -> None:
    trees = sources()
    known = frozenset(trees)
    edges = {name: {i for i in imports(tree, top_level_only=True, known=known) if i in trees and i != name}
             for name, tree in trees.items()}
    cycles = strongly_connected(edges)
    assert [sorted(c) for c in cycles if len(c) > 1] == []


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            found.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_user_error_is_in_the_drawn_tree() -> None:
    import importlib

    for name in sources():
        if not name.endswith("__main__"):
            importlib.import_module(name)
    drawn = opsgit.errors.__doc__ or ""

    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    missing = sorted({c.__name__ for c in subclasses(opsgit.errors.UserError)
                      if c.__module__.startswith("opsgit") and f" {c.__name__} " not in drawn.replace("\n", " \n ")})
    assert missing == []
