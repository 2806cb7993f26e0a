"""A Terraform provider plugin as an opsgit provider: one process per provider configuration per
run, started when a resource of it is first planned, shared by all its resources and called
concurrently by the engine's workers.

Each managed type plans its own changes as Terraform has providers do: the configuration is
completed to the schema's object, merged with the prior state into the proposed new state
(computed attributes the configuration leaves unset keep their prior value), and the provider's
PlanResourceChange says the planned state, what is unknown until apply, and which changed paths
force a replacement. Apply plans again with the final, known configuration and applies that.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from opsgit.engine.resolve import UNKNOWN, Unknown
from opsgit.errors import ConfigError
from opsgit.plugin import cty, discovery
from opsgit.plugin.client import DiagnosticError, ProviderClient
from opsgit.plugin.process import PluginProcess
from opsgit.plugin.receipts import Receipts
from opsgit.plugin.schema import GROUP, LIST, MAP, SINGLE, Attribute, Block, TypeSchema
from opsgit.providers.base import (
    Field,
    PendingCreate,
    PlannedChange,
    PlanningType,
    ProviderError,
    ResourceType,
    Schema,
    Stored,
)

OWN_KEYS = ("source", "version", "native", "auto_mtls")
CREATE, UPDATE, DELETE, NOOP = ("create",), ("update",), ("delete",), ("no-op",)
REPLACE, REPLACE_CBD = ("delete", "create"), ("create", "delete")


class PluginProvider:
    """`providers: {aws: {source: hashicorp/aws, version: 5.100.0, region: ...}}`."""

    def __init__(self, name: str, config: Mapping[str, Any], root: Path) -> None:
        from opsgit.config import load_settings

        self.name = name
        self.root = root
        self.address = discovery.parse_source(str(config["source"]))
        version = config.get("version")
        if version is not None and not isinstance(version, str | int | float):
            raise ConfigError(f"provider {name}: version must be one version, such as 5.100.0",
                              hint='version: "5.100.0"')
        self.version = str(version) if version is not None else None
        self.settings = {k: v for k, v in config.items() if k not in OWN_KEYS}
        native = config.get("native") or []
        if not isinstance(native, list) or not all(isinstance(t, str) for t in native):
            raise ConfigError(f"provider {name}: native must be a list of resource types",
                              hint="native: [aws_security_group, aws_instance]")
        self._native_types = tuple(native)
        self.auto_mtls = config.get("auto_mtls", False)
        if not isinstance(self.auto_mtls, bool):
            raise ConfigError(f"provider {name}: auto_mtls must be true or false", hint="auto_mtls: true")
        self._native: Any = None
        self._plugin_dirs = load_settings(root).plugin_dirs
        self.receipts = Receipts(root / ".opsgit" / "receipts")
        self._client: ProviderClient | None = None
        self._lock = threading.Lock()
        self.resource_types = _Types(self)
        self.data_sources = _DataSources(self)

    @property
    def client(self) -> ProviderClient:
        """The running, configured provider (started on first use)."""
        with self._lock:
            if self._client is None:
                found = discovery.find(self.address, self.version, self.root, self._plugin_dirs)
                digest = discovery.verify(found, self.root)
                process = PluginProcess(self.name, found.binary, self.receipts.folder, auto_mtls=self.auto_mtls)
                client = ProviderClient(self.name, process, discovery.cache_dir(), digest)
                try:
                    client.configure(self.settings)
                except BaseException:
                    process.stop()
                    raise
                self._client = client
            return self._client

    def native(self) -> Any:
        if self._native is None:
            from opsgit.providers.base import load_provider

            self._native = load_provider(self.name, {k: v for k, v in self.settings.items()})
        return self._native

    def close(self) -> None:
        if self._client is not None:
            self._client.process.stop()

    # -- creates a killed run did not record (the engine's `RecordsCreates`) ------------------

    def pending_creates(self, lineage: str) -> list[PendingCreate]:
        found = []
        for receipt in self.receipts.pending(lineage):
            record = receipt.record
            if record.get("provider") != self.name:
                continue
            stored = None
            if receipt.answer is not None:
                kind = self.resource_types[str(record["type"])]
                assert isinstance(kind, PluginResourceType)
                stored = kind.recover(receipt.answer)
            found.append(PendingCreate(receipt.name, str(record["address"]), str(record["type"]),
                                       tuple(record.get("dependencies") or ()), stored, receipt.answer is not None))
        return found

    def settle(self, name: str) -> None:
        self.receipts.settle(name)


class _Types(Mapping[str, "ResourceType | PlanningType"]):
    """The provider's resource types, each made when first asked for."""

    def __init__(self, provider: PluginProvider) -> None:
        self.provider = provider
        self._made: dict[str, ResourceType | PlanningType] = {}

    def __getitem__(self, type_name: str) -> ResourceType | PlanningType:
        if type_name not in self._made:
            if type_name in self.provider._native_types:
                self._made[type_name] = self.provider.native().resource_types[type_name]
            elif type_name in self.provider.client.schema.response.resource_schemas:
                self._made[type_name] = PluginResourceType(self.provider, type_name)
            else:
                raise KeyError(type_name)
        return self._made[type_name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self.provider._native_types, *self.provider.client.schema.resource_types}))

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __contains__(self, type_name: object) -> bool:
        return isinstance(type_name, str) and (type_name in self.provider._native_types or
                                               type_name in self.provider.client.schema.response.resource_schemas)


class _DataSources(Mapping[str, "PluginDataSource"]):
    def __init__(self, provider: PluginProvider) -> None:
        self.provider = provider
        self._made: dict[str, PluginDataSource] = {}

    def __getitem__(self, type_name: str) -> PluginDataSource:
        if type_name not in self._made:
            if type_name not in self.provider.client.schema.response.data_source_schemas:
                raise KeyError(type_name)
            self._made[type_name] = PluginDataSource(self.provider, type_name)
        return self._made[type_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.provider.client.schema.data_source_types)

    def __len__(self) -> int:
        return len(self.provider.client.schema.data_source_types)

    def __contains__(self, type_name: object) -> bool:
        return isinstance(type_name, str) and type_name in self.provider.client.schema.response.data_source_schemas


class PluginDataSource:
    """One data source of a plugin: ValidateDataSourceConfig, then ReadDataSource."""

    def __init__(self, provider: PluginProvider, type_name: str) -> None:
        self.provider = provider
        self.type_name = type_name
        self.block = provider.client.schema.data_source(type_name).block
        self.schema = _schema_of(self.block)

    def read_data(self, address: str, config: Mapping[str, Any]) -> dict[str, Any]:
        wanted = self.block.complete(dict(config))
        try:
            cty.encode(wanted, self.block.implied_type)
        except cty.CtyError as error:
            raise DiagnosticError(f"{address}: {error}", error.path) from None
        state = self.provider.client.read_data(self.type_name, self.block, wanted, address)
        if state is None:
            raise ProviderError(f"{address}: provider {self.provider.name} read nothing")
        values: dict[str, Any] = _storable(state)
        return values


def _schema_of(block: Block) -> Schema:
    """The engine's view of a block: each attribute's flags, each nested block as a field."""
    # `computed` here means set by the provider alone (not optional as well)
    fields = {name: Field(required=a.required, computed=a.computed and not a.optional, sensitive=a.sensitive)
              for name, a in block.attributes.items()}
    fields.update({name: Field(required=nested.min_items > 0) for name, nested in block.blocks.items()})
    return Schema(fields=fields)


class PluginResourceType:
    """One managed resource type of a plugin (the engine's `PlanningType`)."""

    def __init__(self, provider: PluginProvider, type_name: str) -> None:
        self.provider = provider
        self.type_name = type_name
        self.definition: TypeSchema = provider.client.schema.resource(type_name)
        self.block = self.definition.block
        self.schema = _schema_of(self.block)

    @property
    def client(self) -> ProviderClient:
        return self.provider.client

    # -- plan ------------------------------------------------------------------------------------

    def plan_change(self, address: str, prior: Stored | None, config: Mapping[str, Any] | None,
                    ignore_changes: Any = ()) -> PlannedChange:
        prior_value = self._prior(prior)
        if config is None:
            if prior_value is None:
                return PlannedChange(NOOP, None)
            return PlannedChange(DELETE, None)
        wanted = self._config(address, config, prior_value, ignore_changes)
        _mask(self.block, wanted, prior_value)
        self.client.validate(self.type_name, self.block, wanted, address)
        proposed = proposed_new(self.block, prior_value, wanted)
        planned = self.client.plan(self.type_name, self.block, prior_value, proposed, wanted, self._private(prior),
                                   address)
        if prior_value is None:
            return PlannedChange(CREATE, _storable(planned.state), unknown_shapes=_unknown_shapes(self.block,
                                                                                                  planned.state))
        if _equal(prior_value, planned.state):
            return PlannedChange(NOOP, _storable(prior_value))
        forcing = tuple(sorted({_path_text(p) for p in planned.requires_replace
                                if not _equal(_at(prior_value, p), _at(planned.state, p))}))
        if forcing:
            fresh = self.client.plan(self.type_name, self.block, None, proposed_new(self.block, None, wanted), wanted,
                                     planned.private, address)
            return PlannedChange(REPLACE, _storable(fresh.state), forcing, "replace_because_cannot_update",
                                 _unknown_shapes(self.block, fresh.state))
        return PlannedChange(UPDATE, _storable(planned.state),
                             unknown_shapes=_unknown_shapes(self.block, planned.state))

    # -- apply -----------------------------------------------------------------------------------

    def apply_change(self, address: str, prior: Stored | None, config: Mapping[str, Any] | None,
                     ignore_changes: Any = (), receipt: Mapping[str, Any] | None = None) -> Stored | None:
        prior_value = self._prior(prior)
        private = self._private(prior)
        if config is None:
            if prior_value is None:
                return None
            if self.client.schema.plan_destroy:
                planned = self.client.plan(self.type_name, self.block, prior_value, None, None, private, address)
                private = planned.private or private
            try:
                new_state, _ = self.client.apply(self.type_name, self.block, prior_value, None, None, private, address)
            except DiagnosticError as error:
                raise ProviderError(str(error)) from None
            if new_state is not None:
                raise ProviderError(f"{address}: provider {self.provider.name} kept the object after deleting it")
            return None
        wanted = self._config(address, config, prior_value, ignore_changes)
        proposed = proposed_new(self.block, prior_value, wanted)
        planned = self.client.plan(self.type_name, self.block, prior_value, proposed, wanted, private, address)
        name = ""
        if receipt is not None and prior_value is None:
            name = str(receipt["name"])
            self.provider.receipts.intend(name, {**receipt, "type": self.type_name})
        try:
            new_state, new_private = self.client.apply(self.type_name, self.block, prior_value, planned.state, wanted,
                                                       planned.private, address, receipt=name)
        except DiagnosticError as error:
            partial = getattr(error, "partial", None)
            if partial is not None and partial[0] is not None and prior_value is None:
                # The object exists though its create failed part-way: keep it (Terraform taints it).
                raise PartialCreate(str(error), self._stored(partial[0], partial[1])) from None
            if name:
                self.provider.receipts.settle(name)  # the provider answered that it made nothing
            raise ProviderError(str(error)) from None
        if new_state is None:
            raise ProviderError(f"{address}: provider {self.provider.name} returned no object after apply")
        if _has_unknown(new_state):
            raise ProviderError(f"{address}: provider {self.provider.name} left values unknown after apply")
        return self._stored(new_state, new_private)

    def recover(self, answer: bytes) -> Stored | None:
        """The object a kept create answer describes (None: the provider made none)."""
        state, private = self.client.applied(answer, self.block)
        return None if state is None or _has_unknown(state) else self._stored(state, private)

    # -- refresh and import ------------------------------------------------------------------

    def refresh(self, address: str, prior: Stored) -> Stored | None:
        value = self._prior(prior)
        new_state, private = self.client.read(self.type_name, self.block, value, self._private(prior), address)
        if new_state is None:
            return None
        return self._stored(new_state, private)

    def import_object(self, address: str, resource_id: str) -> Stored:
        imported = self.client.import_state(self.type_name, resource_id, address)
        if len(imported) != 1:
            raise ProviderError(f"{address}: importing {resource_id!r} gave {len(imported)} objects, not one")
        type_name, state, private = imported[0]
        if type_name != self.type_name:
            raise ProviderError(f"{address}: {resource_id!r} is a {type_name}, not a {self.type_name}")
        new_state, new_private = self.client.read(self.type_name, self.block, state, private, address)
        if new_state is None:
            raise ProviderError(f"{address}: cannot import {resource_id!r}: no such object",
                                hint="check the id; `opsgit import` takes what the provider's import documents")
        return self._stored(new_state, new_private)

    # -- values ----------------------------------------------------------------------------------

    def register_sensitive(self, attributes: Mapping[str, Any]) -> None:
        """Mask, from now on, the values this type's schema marks sensitive in `attributes`."""
        _mask(self.block, attributes)

    def _config(self, address: str, config: Mapping[str, Any], prior: Any, ignore_changes: Any) -> Any:
        wanted = self.block.complete(dict(config))
        if prior is not None and ignore_changes:
            names = list(self.block.attributes) if ignore_changes == "all" else list(ignore_changes)
            for name in names:
                if name in wanted:
                    wanted[name] = prior.get(name)
        try:
            cty.encode(wanted, self.block.implied_type)
        except cty.CtyError as error:
            raise DiagnosticError(f"{address}: {error}", error.path) from None
        return wanted

    def _prior(self, prior: Stored | None) -> Any:
        if prior is None:
            return None
        _mask(self.block, prior.attributes)
        if prior.schema_version is not None and prior.schema_version != self.definition.version:
            raw = json.dumps(cty.to_json_value(self.block.complete(dict(prior.attributes)), self.block.implied_type))
            return self.client.upgrade(self.type_name, self.block, prior.schema_version, raw.encode(),
                                       f"{self.type_name} {prior.id}")
        return cty.decode(self.block.complete(dict(prior.attributes)), self.block.implied_type)

    @staticmethod
    def _private(prior: Stored | None) -> bytes:
        return base64.b64decode(prior.private) if prior is not None and prior.private else b""

    def _stored(self, state: Any, private: bytes) -> Stored:
        _mask(self.block, state)
        attributes = _storable(state)
        return Stored(id=str(attributes.get("id") or ""), attributes=attributes,
                      private=base64.b64encode(private).decode() if private else "",
                      schema_version=self.definition.version)


class PartialCreate(ProviderError):
    """A create that failed after the object came to exist: `stored` is what to keep in state."""

    def __init__(self, message: str, stored: Stored) -> None:
        super().__init__(message)
        self.stored = stored


def sensitive_values(block: Block, value: Any) -> list[Any]:
    """The values of attributes the schema marks sensitive, nested blocks included: registered
    for masking by value, so a nested secret is hidden wherever it travels (plans mask the
    top-level ones by name)."""
    if not isinstance(value, dict):
        return []
    found = _sensitive_attributes(block.attributes, value)
    for name, nested in block.blocks.items():
        for child in _children(nested.nesting, value.get(name)):
            found += sensitive_values(nested.block, child)
    return found


def _sensitive_attributes(attributes: Mapping[str, Attribute], value: Mapping[str, Any]) -> list[Any]:
    found = []
    for name, a in attributes.items():
        item = value.get(name)
        if item is None or isinstance(item, Unknown):
            continue
        if a.sensitive:
            found.append(item)
        elif a.nested is not None:
            for child in _children(a.nested.nesting, item):
                if isinstance(child, dict):
                    found += _sensitive_attributes(a.nested.attributes, child)
    return found


def _children(nesting: int, items: Any) -> list[Any]:
    if isinstance(items, dict) and nesting == MAP:
        return list(items.values())
    return items if isinstance(items, list) else [items]


def _mask(block: Block, *values: Any) -> None:
    from opsgit.secrets import register

    for value in values:
        for secret in sensitive_values(block, value):
            register(secret)


def proposed_new(block: Block, prior: Any, config: Any) -> Any:
    """Terraform's ProposedNew: the configuration, with each computed attribute it leaves null
    taking its prior value; nested blocks and nested attributes merged with their prior
    counterparts."""
    if config is None:
        return None
    before = prior if isinstance(prior, dict) else {}
    result = _proposed_attributes(block.attributes, before, config)
    for name, nested in block.blocks.items():
        result[name] = _proposed_nested(nested.nesting, lambda old, new, inner=nested.block: proposed_new(
            inner, old, new), before.get(name), config.get(name))
    return result


def _proposed_attributes(attributes: Mapping[str, Attribute], before: Mapping[str, Any],
                         config: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, attribute in attributes.items():
        value = config.get(name)
        if attribute.computed and value is None:
            result[name] = before.get(name)
        elif attribute.nested is not None and value is not None:
            inner = attribute.nested.attributes
            result[name] = _proposed_nested(attribute.nested.nesting, lambda old, new, inner=inner: None if new is None
                                            else _proposed_attributes(inner, old if isinstance(old, dict) else {}, new),
                                            before.get(name), value)
        else:
            result[name] = value
    return result


def _proposed_nested(nesting: int, merge: Any, old: Any, value: Any) -> Any:
    """One nested block or nested attribute's proposed value: each object merged with the prior
    one at the same place (by index for lists, by key for maps; set elements have no place)."""
    if nesting in (SINGLE, GROUP):
        return merge(old, value)
    if nesting == LIST:
        olds = old if isinstance(old, list) else []
        return [merge(olds[i] if i < len(olds) else None, item) for i, item in enumerate(value or [])]
    if nesting == MAP:
        labelled = old if isinstance(old, dict) else {}
        return {k: merge(labelled.get(k), v) for k, v in (value or {}).items()}
    return [merge(None, item) for item in value or []]


def _unknown_shapes(block: Block, value: Any) -> dict[str, str]:
    """Which top-level attributes left unknown are collections, and of which shape."""
    if not isinstance(value, dict):
        return {}
    members = block.implied_type[1]
    shapes = {}
    for name, item in value.items():
        kind = members.get(name)
        if isinstance(item, Unknown) and isinstance(kind, tuple):
            shapes[name] = "list" if kind[0] in ("list", "set", "tuple") else "map"
    return shapes


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return None
    return value


def _path_text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _equal(a: Any, b: Any) -> bool:
    """Values equal as cty compares them: sets in any order (lists of objects compared as
    multisets by their JSON text), an unknown equal to nothing."""
    if isinstance(a, Unknown) or isinstance(b, Unknown):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        if all(_equal(x, y) for x, y in zip(a, b, strict=True)):
            return True
        return sorted(map(_key, a)) == sorted(map(_key, b))
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return Decimal(str(a)) == Decimal(str(b))
    return bool(a == b)


def _key(value: Any) -> str:
    return json.dumps(_storable(value), sort_keys=True, default=str)


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _storable(value: Any) -> Any:
    """A decoded value as state and plans keep it (JSON's numbers; unknowns stay UNKNOWN)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return UNKNOWN if isinstance(value, Unknown) else value
