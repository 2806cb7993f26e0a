"""A provider's schema as opsgit uses it: blocks with typed attributes and nested blocks, their
implied cty types, and what each attribute is (required, computed, sensitive, write-only).

The aws provider's schema is a 4.7 MiB message with 1,526 resource types: it is kept as the
message and each type is converted when first used; the message itself is cached on disk by the
binary's hash, so a run does not ask the provider for it again (when the provider says it does
not need to be asked: `get_provider_schema_optional`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsgit.plugin import cty

SINGLE, LIST, SET, MAP, GROUP = 1, 2, 3, 4, 5
NESTING_NAMES = {SINGLE: "single", LIST: "list", SET: "set", MAP: "map", GROUP: "group"}


@dataclass(frozen=True)
class Attribute:
    name: str
    type: cty.Type
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    write_only: bool = False
    nested: NestedObject | None = None  # protocol 6's nested attributes: the object each value is


@dataclass(frozen=True)
class NestedObject:
    """A protocol 6 attribute whose value is objects of its own attributes, nested as a block is
    (single, list, set or map) but written as an attribute."""

    nesting: int
    attributes: dict[str, Attribute]

    @property
    def object_type(self) -> cty.Type:
        return ("object", {name: a.type for name, a in self.attributes.items()})

    @property
    def implied_type(self) -> cty.Type:
        inner = self.object_type
        return inner if self.nesting == SINGLE else ({LIST: "list", SET: "set", MAP: "map"}[self.nesting], inner)


@dataclass(frozen=True)
class NestedBlock:
    name: str
    nesting: int
    block: Block
    min_items: int = 0
    max_items: int = 0


@dataclass(frozen=True)
class Block:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: dict[str, NestedBlock] = field(default_factory=dict)

    @functools.cached_property
    def implied_type(self) -> cty.Type:
        """The object type every value of this block has on the wire."""
        members: dict[str, cty.Type] = {name: a.type for name, a in self.attributes.items()}
        for name, nested in self.blocks.items():
            inner = nested.block.implied_type
            members[name] = inner if nested.nesting in (SINGLE, GROUP) else (
                {LIST: "list", SET: "set", MAP: "map"}[nested.nesting], inner)
        return ("object", members)

    def complete(self, value: dict[str, Any] | None) -> dict[str, Any]:
        """`value` (config as a module wrote it) with every attribute and block the wire needs:
        null where unset, no blocks as an empty list or map (a GROUP block as its empty object)."""
        given = value or {}
        done: dict[str, Any] = {name: given.get(name) for name in self.attributes}
        for name, nested in self.blocks.items():
            item = given.get(name)
            if nested.nesting == SINGLE:
                done[name] = None if item is None else nested.block.complete(_one(item))
            elif nested.nesting == GROUP:
                done[name] = nested.block.complete(_one(item) if item is not None else None)
            elif nested.nesting == MAP:
                done[name] = {k: nested.block.complete(v) for k, v in (item or {}).items()}
            else:
                items = item if isinstance(item, list) else ([] if item is None else [item])
                done[name] = [nested.block.complete(v) for v in items]
        return done

    def sensitive_paths(self) -> frozenset[str]:
        """Top-level attributes marked sensitive (what plans mask by name)."""
        return frozenset(name for name, a in self.attributes.items() if a.sensitive)


def _one(item: Any) -> dict[str, Any] | None:
    """A SINGLE block written as a map, or as a list of one map (as Terraform's JSON has it)."""
    if isinstance(item, list):
        return item[0] if item else None
    return item if isinstance(item, dict) else None


@dataclass(frozen=True)
class TypeSchema:
    version: int
    block: Block


def attribute_from(message: Any) -> Attribute:
    nested = None
    # protocol 5's Attribute has no nested_type field; protocol 6's has it on nested attributes
    if "nested_type" in message.DESCRIPTOR.fields_by_name and message.HasField("nested_type"):
        nested = NestedObject(nesting=message.nested_type.nesting,
                              attributes={a.name: attribute_from(a) for a in message.nested_type.attributes})
    return Attribute(name=message.name, type=nested.implied_type if nested else cty.parse_type(message.type),
                     required=message.required, optional=message.optional, computed=message.computed,
                     sensitive=message.sensitive, write_only=message.write_only, nested=nested)


def block_from(message: Any) -> Block:
    attributes = {a.name: attribute_from(a) for a in message.attributes}
    blocks = {b.type_name: NestedBlock(name=b.type_name, nesting=b.nesting, block=block_from(b.block),
                                       min_items=b.min_items, max_items=b.max_items)
              for b in message.block_types}
    return Block(attributes=attributes, blocks=blocks)


class ProviderSchema:
    """The schema answer, converted type by type as each is asked for."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.provider = TypeSchema(response.provider.version, block_from(response.provider.block))
        self.plan_destroy = bool(response.server_capabilities.plan_destroy)
        self.cacheable = bool(response.server_capabilities.get_provider_schema_optional)
        self._resources: dict[str, TypeSchema] = {}
        self._data_sources: dict[str, TypeSchema] = {}

    @property
    def resource_types(self) -> list[str]:
        return sorted(self.response.resource_schemas)

    @property
    def data_source_types(self) -> list[str]:
        return sorted(self.response.data_source_schemas)

    def resource(self, type_name: str) -> TypeSchema:
        found = self._resources.get(type_name)
        if found is None:
            message = self.response.resource_schemas[type_name]
            found = self._resources[type_name] = TypeSchema(message.version, block_from(message.block))
        return found

    def data_source(self, type_name: str) -> TypeSchema:
        found = self._data_sources.get(type_name)
        if found is None:
            message = self.response.data_source_schemas[type_name]
            found = self._data_sources[type_name] = TypeSchema(message.version, block_from(message.block))
        return found


def cache_path(cache: Path, binary_hash: str, protocol: int = 5) -> Path:
    """Where the schema answer of one binary is kept; the protocol is part of the name (the two
    versions' messages number their fields differently)."""
    return cache / "schemas" / f"{binary_hash.replace(':', '-').replace('/', '_')}.p{protocol}.pb"
