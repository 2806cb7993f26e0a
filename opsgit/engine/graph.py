"""The resource graph of one environment: a plain frozen value, its JSON form, and its order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgit.errors import CycleError

GRAPH_FORMAT = 1


@dataclass(frozen=True)
class Resource:
    address: str
    module: str
    type: str
    name: str
    index: int | str | None
    provider: str
    attributes: Mapping[str, Any]
    dependencies: tuple[str, ...]
    lifecycle: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_json(self, *, sources: bool = True) -> dict[str, Any]:
        data = {
            "address": self.address, "module": self.module, "type": self.type, "name": self.name,
            "index": self.index, "provider": self.provider, "attributes": self.attributes,
            "dependencies": list(self.dependencies), "lifecycle": self.lifecycle,
        }
        if sources:
            data["source"] = self.source
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Resource:
        return cls(address=data["address"], module=data["module"], type=data["type"], name=data["name"],
                   index=data["index"], provider=data["provider"], attributes=data["attributes"],
                   dependencies=tuple(data["dependencies"]), lifecycle=data.get("lifecycle", {}),
                   source=data.get("source", ""))


@dataclass(frozen=True)
class Graph:
    env: str
    resources: Mapping[str, Resource]
    outputs: Mapping[str, Any]
    sensitive_outputs: frozenset[str] = frozenset()
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    lock: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, *, sources: bool = True) -> dict[str, Any]:
        return {
            "format": GRAPH_FORMAT, "env": self.env,
            "providers": self.providers, "state": self.state, "lock": self.lock,
            "resources": [r.to_json(sources=sources) for r in self.resources.values()],
            "outputs": self.outputs, "sensitive_outputs": sorted(self.sensitive_outputs),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        resources = [Resource.from_json(r) for r in data["resources"]]
        return cls(env=data["env"], resources={r.address: r for r in resources}, outputs=data["outputs"],
                   sensitive_outputs=frozenset(data.get("sensitive_outputs", ())),
                   providers=data.get("providers", {}), state=data.get("state", {}),
                   lock=data.get("lock", {}))

    def instances(self, block: str) -> list[str]:
        """The addresses of a resource block's instances (`aws_instance.web` -> `...web[0]`, ...)."""
        return [a for a in self.resources if a == block or a.startswith(block + "[")]

    def order(self) -> list[str]:
        """Addresses in dependency order (dependencies first); raises CycleError naming a cycle."""
        return topological_order({a: r.dependencies for a, r in self.resources.items()},
                                 lambda address: self.resources[address].source)


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
