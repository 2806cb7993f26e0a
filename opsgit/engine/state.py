"""The state of one environment: a plain value, and its JSON form.

    {"version": 1, "lineage": "<uuid>", "serial": 12,
     "resources": [{"address", "type", "provider", "id", "attributes", "dependencies",
                    "schema_version" and "private" for a provider plugin's resources}],
     "outputs": {"name": {"value": ..., "sensitive": false}}}

`lineage` is fixed when a state is born; `serial` grows with every persisted change, so a saved
plan can tell whether the state moved on since it was made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opsgit.providers.base import Stored

STATE_VERSION = 1


@dataclass(frozen=True)
class ResourceState:
    address: str
    type: str
    provider: str
    id: str
    attributes: Mapping[str, Any]
    dependencies: tuple[str, ...] = ()
    # Kept for resources a provider plugin manages: its opaque private data (base64) and the
    # version of its schema the attributes were written in (a newer provider upgrades them).
    private: str = ""
    schema_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"address": self.address, "type": self.type, "provider": self.provider, "id": self.id,
                "attributes": self.attributes, "dependencies": list(self.dependencies)}
        if self.schema_version is not None:
            data["schema_version"] = self.schema_version
            data["private"] = self.private
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceState:
        version = data.get("schema_version")
        attributes = data.get("attributes") or {}
        if version is None and data["provider"] == "aws":  # opsgit's own aws code wrote it: its old shapes migrate
            from opsgit.providers.aws.shapes import reshape_stored

            attributes = reshape_stored(str(data["type"]), attributes)
        return cls(address=data["address"], type=data["type"], provider=data["provider"], id=str(data["id"]),
                   attributes=attributes, dependencies=tuple(data.get("dependencies") or ()),
                   private=str(data.get("private") or ""), schema_version=version if isinstance(version, int) else None)

    @property
    def stored(self) -> Stored:
        return Stored(self.id, self.attributes, self.private, self.schema_version)


@dataclass(frozen=True)
class State:
    lineage: str
    serial: int = 0
    resources: Mapping[str, ResourceState] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def new(cls) -> State:
        return cls(lineage=str(uuid.uuid4()))

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "lineage": self.lineage, "serial": self.serial,
                "resources": [r.to_json() for _, r in sorted(self.resources.items())],
                "outputs": dict(self.outputs)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> State:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        resources = [ResourceState.from_json(r) for r in data.get("resources") or []]
        return cls(lineage=str(data["lineage"]), serial=int(data["serial"]),
                   resources={r.address: r for r in resources}, outputs=data.get("outputs") or {})

    def with_resource(self, resource: ResourceState, serial: int) -> State:
        return replace(self, serial=serial, resources={**self.resources, resource.address: resource})

    def without_resource(self, address: str, serial: int) -> State:
        return replace(self, serial=serial, resources={a: r for a, r in self.resources.items() if a != address})


def journal_entry(lineage: str, serial: int, address: str, resource: ResourceState | None) -> dict[str, Any]:
    """One completed resource change, as state backends journal it."""
    return {"lineage": lineage, "serial": serial, "address": address,
            "resource": resource.to_json() if resource else None}


def entry_problem(entry: Any) -> str | None:
    """What is wrong with a decoded journal entry (None: it is one `journal_entry` writes)."""
    if not isinstance(entry, dict):
        return f"a journal entry is an object, not {type(entry).__name__}"
    if not isinstance(entry.get("serial"), int) or isinstance(entry.get("serial"), bool):
        return "its serial is not a whole number"
    if not isinstance(entry.get("address"), str) or not isinstance(entry.get("lineage"), str):
        return "its address or lineage is not a string"
    resource = entry.get("resource")
    fields = {"address", "type", "provider", "id"}
    if resource is not None and not (isinstance(resource, dict) and fields <= set(resource)):
        return "its resource is not a state resource"
    return None


def replay(state: State, entries: Iterable[Mapping[str, Any]], *, adopt_lineage: bool = False) -> State:
    """`state` with the journal entries that follow it applied, in order. `adopt_lineage`: the
    state was never written, so the journal's first entry says which lineage it belongs to."""
    resources = dict(state.resources)
    serial = state.serial
    lineage = state.lineage
    for number, entry in enumerate(entries):
        if adopt_lineage and number == 0:
            lineage = str(entry.get("lineage", lineage))
        if entry.get("lineage") != lineage or int(entry["serial"]) <= serial:
            continue
        serial = int(entry["serial"])
        if entry.get("resource"):
            resources[str(entry["address"])] = ResourceState.from_json(entry["resource"])
        else:
            resources.pop(str(entry["address"]), None)
    return replace(state, lineage=lineage, serial=serial, resources=resources)
