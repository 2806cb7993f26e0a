"""The provider protocol, resource schemas, and the registry (imported lazily: planning a
Consul-only environment never imports boto3)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from opsgit.errors import UserError

REGISTRY: dict[str, str] = {
    "aws": "opsgit.providers.aws",
    "consul": "opsgit.providers.consul",
    "local": "opsgit.providers.local",
    "null": "opsgit.providers.null",
    "time": "opsgit.providers.time",
}


@dataclass(frozen=True)
class Field:
    required: bool = False
    # set by the provider (an id, an address); shown as (known after apply) until then
    computed: bool = False
    # a change can only be made by replacing the resource
    force_new: bool = False
    # never shown in plans, statuses or logs
    sensitive: bool = False


@dataclass(frozen=True)
class Schema:
    fields: Mapping[str, Field] = field(default_factory=dict)

    def check(self, type_name: str, config: Mapping[str, Any]) -> str | None:
        """A problem with a resource's configuration, or None."""
        for name in config:
            known = self.fields.get(name)
            if known is None:
                import difflib
                close = difflib.get_close_matches(name, list(self.fields), n=1)
                return f"{type_name} has no attribute {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        for name, spec in self.fields.items():
            if spec.required and name not in config:
                return f"{type_name} needs attribute {name!r}"
        return None

    @property
    def sensitive(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.fields.items() if spec.sensitive)

    @property
    def force_new(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.fields.items() if spec.force_new)


class ResourceType(Protocol):
    schema: Schema

    # the resource's attributes as they are now (config-shaped, plus computed ones); None if gone
    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None: ...

    # the same for many resources, with as few API calls as the API allows
    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]: ...

    # create; `token` is stable across a crash and a retry, so a create that happened but was
    # never recorded is found and adopted instead of made twice
    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]: ...

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None: ...


class Stored(NamedTuple):
    """A managed object as state keeps it, with what a plugin provider needs back each call."""

    id: str
    attributes: Mapping[str, Any]
    private: str = ""            # the provider's opaque bytes, base64
    schema_version: int | None = None


class PlannedChange(NamedTuple):
    actions: tuple[str, ...]
    after: Mapping[str, Any] | None
    replace_paths: tuple[str, ...] = ()
    reason: str | None = None
    # top-level attributes unknown until apply that are collections: "list" (lists, sets,
    # tuples) or "map" (maps, objects), as Terraform's JSON plan shapes them
    unknown_shapes: Mapping[str, str] = {}


@runtime_checkable
class PlanningType(Protocol):
    """A resource type that plans its own changes (a Terraform provider plugin's): the engine
    asks it what a change would do instead of comparing attributes itself, and gives it back
    the private data it keeps with each object."""

    schema: Schema

    def plan_change(self, address: str, prior: Stored | None, config: Mapping[str, Any] | None,
                    ignore_changes: Any = ()) -> PlannedChange: ...

    # `receipt` (creates): what to keep with the provider's answer until the engine has recorded
    # the object and settles it (`RecordsCreates`); its "name" is stable across a crash and a retry
    def apply_change(self, address: str, prior: Stored | None, config: Mapping[str, Any] | None,
                     ignore_changes: Any = (), receipt: Mapping[str, Any] | None = None) -> Stored | None: ...

    def refresh(self, address: str, prior: Stored) -> Stored | None: ...

    def import_object(self, address: str, resource_id: str) -> Stored: ...


class PendingCreate(NamedTuple):
    """A create a run began and did not record: `stored` is the object the provider answered
    with (None when it made none); `answered` is False when no answer was kept at all."""

    name: str
    address: str
    type: str
    dependencies: tuple[str, ...]
    stored: Stored | None
    answered: bool


@runtime_checkable
class RecordsCreates(Protocol):
    """A provider whose creates leave receipts until they are recorded (a plugin's, through its
    witness process), so an object made by a run killed before recording it is recovered, never
    made twice."""

    def pending_creates(self, lineage: str) -> list[PendingCreate]: ...

    def settle(self, name: str) -> None: ...


class DataType(Protocol):
    """A data source: `read_data` returns its attributes for a wholly known configuration."""

    schema: Schema

    def read_data(self, address: str, config: Mapping[str, Any]) -> dict[str, Any]: ...


class Provider(Protocol):
    """`resource_types`; providers that have data sources also have `data_sources`
    (Mapping[str, DataType])."""

    name: str

    @property
    def resource_types(self) -> Mapping[str, ResourceType | PlanningType]: ...


class ReadEach:
    """`read_many` for APIs that can only read one resource at a time."""

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        return [self.read(resource_id, attributes) for resource_id, attributes in items]


class ReadMany:
    """`read` for types whose natural call reads many resources at once."""

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        raise NotImplementedError

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.read_many([(resource_id, attributes)])[0]


class ProviderError(UserError):
    """A provider call failed; the message names the resource address."""


def describe_error(error: BaseException) -> str:
    """One line for a provider SDK's exception: `Code: Message` for AWS errors."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        detail = response["Error"]
        return f"{detail.get('Code', type(error).__name__)}: {detail.get('Message', '')}".strip()
    text = " ".join(str(error).split())
    return text[:300] or type(error).__name__


def load_provider(name: str, config: Mapping[str, Any], root: Path | None = None) -> Provider:
    """The provider `name`: opsgit's own, or with a `source` (hashicorp/aws) the Terraform
    provider plugin of that source and version."""
    if "source" in config:
        from opsgit.plugin.provider import PluginProvider

        return PluginProvider(name, config, root or Path.cwd())
    module_name = REGISTRY.get(name)
    if module_name is None:
        raise UserError(f"unknown provider {name!r}", hint=f"known providers: {', '.join(sorted(REGISTRY))}")
    module = importlib.import_module(module_name)
    provider: Provider = module.make(config)
    return provider
