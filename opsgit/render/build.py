"""What a render builds up for one environment: its resources, blocks and modules as they are
added, and the Draft it ends as (references absolute, not yet checked)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsgit.graph import Resource
from opsgit.render.memo import InstanceMemo, InstanceRecord
from opsgit.repo.values import Environment, Origin


@dataclass
class Block:
    """Resources as written in a module: one block may expand to many instances."""
    instances: list[str] = field(default_factory=list)
    counted: bool = False


@dataclass
class Build:
    env: Environment
    resources: dict[str, Resource] = field(default_factory=dict)
    blocks: dict[str, Block] = field(default_factory=dict)
    module_resources: dict[str, list[str]] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    stack: list[str] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)
    memo: InstanceMemo | None = None
    # (module name, content fingerprint) of the modules instantiated so far, for the memo
    modules_used: set[tuple[str, str]] = field(default_factory=set)
    environment_key: Any = None  # what module bodies see of the environment
    values_key: Any = None  # what env.yaml's own Jinja sees
    upstream_reads: frozenset[tuple[str, str]] = frozenset()
    """(environment, output) of every other environment's output env.yaml reads (repo/reads.py)."""


@dataclass(frozen=True)
class Draft:
    """An environment rendered up to its references: every resource with its attributes as
    rendered (references absolute, still marked), the blocks and modules they belong to, and the
    environment's outputs. `finish` checks the references and derives the dependency edges, the
    same function on any commit: affected detection compares drafts, finishing only what differs."""

    build: Build
    outputs: Mapping[str, Any]
    sensitive_outputs: frozenset[str]
    providers: Mapping[str, Any]


def replay(build: Build, record: InstanceRecord) -> None:
    build.resources.update(record.resources)
    build.blocks.update(record.blocks)
    build.module_resources.update(record.module_resources)
    build.origins.update(record.origins)
    build.reads.update(record.reads)
    build.modules_used.update(record.modules)


def added(table: Mapping[str, Any], before: int) -> tuple[tuple[str, Any], ...]:
    return tuple(itertools.islice(table.items(), before, None))


def relative_address(address: str, module: str) -> str:
    return address[len(module) + 1:] if module and address.startswith(module + ".") else address


def module_address(path: tuple[str, ...]) -> str:
    return ".".join(f"module.{name}" for name in path)
