"""Dependency order of a graph's nodes, and the cycle that prevents one."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from opsgit.errors import CycleError


def topological_order(edges: Mapping[str, tuple[str, ...]], source: Callable[[str], str] | None = None
                      ) -> list[str]:
    """Kahn's algorithm. Every dependency must be a node. `source` says where a node is written
    (`file:line`), for the error; it is asked only when there is a cycle."""
    waiting = {node: len(deps) for node, deps in edges.items()}
    dependants: dict[str, list[str]] = {node: [] for node in edges}
    for node, deps in edges.items():
        for dep in deps:
            dependants[dep].append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in dependants[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) != len(edges):
        cycle = find_cycle({n: d for n, d in edges.items() if waiting[n] > 0})
        raise CycleError.at(source(cycle[0]) if source else "", "dependency cycle: " + " -> ".join(cycle),
                            hint="break the cycle by removing one of these references")
    return order


def find_cycle(edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle in a graph where every node is on or leads to a cycle, as a closed path."""
    start = min(edges)
    seen: dict[str, int] = {}
    path: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in edges[node] if d in edges)
    return [*path[seen[node]:], node]
