"""The resource graph of one environment: a plain frozen value and its JSON form.

Where state lives and how runs are locked are the environment's settings, not the graph's
(`opsgit.workspace`); a saved plan's input hash covers both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgit.graph.order import topological_order

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
    mode: str = "managed"
    """"data" for a data source (`data.aws_ami.base`): read, never created."""

    def to_json(self, *, sources: bool = True) -> dict[str, Any]:
        data = {
            "address": self.address, "module": self.module, "type": self.type, "name": self.name,
            "index": self.index, "provider": self.provider, "attributes": self.attributes,
            "dependencies": list(self.dependencies), "lifecycle": self.lifecycle,
        }
        if sources:
            data["source"] = self.source
        if self.mode != "managed":
            data["mode"] = self.mode
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Resource:
        return cls(address=data["address"], module=data["module"], type=data["type"], name=data["name"],
                   index=data["index"], provider=data["provider"], attributes=data["attributes"],
                   dependencies=tuple(data["dependencies"]), lifecycle=data.get("lifecycle", {}),
                   source=data.get("source", ""), mode=data.get("mode", "managed"))


@dataclass(frozen=True)
class Graph:
    env: str
    resources: Mapping[str, Resource]
    outputs: Mapping[str, Any]
    sensitive_outputs: frozenset[str] = frozenset()
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    upstreams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Other environments' outputs this one reads (`${environment.global.outputs.zone_id}`): env -> names."""

    def to_json(self, *, sources: bool = True) -> dict[str, Any]:
        data = {
            "format": GRAPH_FORMAT, "env": self.env,
            "providers": self.providers,
            "resources": [r.to_json(sources=sources) for r in self.resources.values()],
            "outputs": self.outputs, "sensitive_outputs": sorted(self.sensitive_outputs),
        }
        if self.upstreams:
            data["upstreams"] = {env: list(names) for env, names in self.upstreams.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        resources = [Resource.from_json(r) for r in data["resources"]]
        return cls(env=data["env"], resources={r.address: r for r in resources}, outputs=data["outputs"],
                   sensitive_outputs=frozenset(data.get("sensitive_outputs", ())),
                   providers=data.get("providers", {}),
                   upstreams={env: tuple(names) for env, names in (data.get("upstreams") or {}).items()})

    def instances(self, block: str) -> list[str]:
        """The addresses of a resource block's instances (`aws_instance.web` -> `...web[0]`, ...)."""
        return [a for a in self.resources if a == block or a.startswith(block + "[")]

    def order(self) -> list[str]:
        """Addresses in dependency order (dependencies first); raises CycleError naming a cycle."""
        return topological_order({a: r.dependencies for a, r in self.resources.items()},
                                 lambda address: self.resources[address].source)
