"""The loaded monorepo as plain frozen values.

Nothing here talks to the disk or renders anything: a Repo can be built in a test, compared,
and handed to the renderers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsgit.config import Settings
from opsgit.errors import ConfigError
from opsgit.repo.yamlio import locate

VARIABLE_TYPES = ("string", "number", "bool", "list", "map", "any")


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a repository file and the key path inside it."""

    file: str
    text: str = field(repr=False, compare=False)
    keys: tuple[str | int, ...] = ()

    def child(self, *keys: str | int) -> Origin:
        return Origin(self.file, self.text, self.keys + keys)

    @property
    def line(self) -> int | None:
        return locate(self.text, self.keys) if self.keys else None

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line, hint=hint)

    def line_of(self, needle: str, default: int | None = None, start: int | None = None) -> int | None:
        """The first line of this file, from line `start` on, containing `needle` (for rendered
        text, whose key paths do not map back to the template)."""
        found = line_containing(self.text, needle, start or 1)
        return default if found is None else found


@functools.lru_cache(maxsize=65536)
def line_containing(text: str, needle: str, start: int = 1) -> int | None:
    """The first line number, from `start` on, of `text` that contains `needle`."""
    # Every instance of a module asks the same questions of the same text: answer each once.
    for number, content in enumerate(text.splitlines()[start - 1:], start=start):
        if needle in content:
            return number
    return None


@dataclass(frozen=True)
class Variable:
    name: str
    type: str = "any"
    default: Any = None
    required: bool = True
    description: str = ""
    sensitive: bool = False


@dataclass(frozen=True)
class ModuleInstance:
    name: str
    source: str
    inputs: Mapping[str, Any]
    origin: Origin


@dataclass(frozen=True)
class Environment:
    name: str
    file: str
    description: str
    providers: Mapping[str, Mapping[str, Any]]
    state: Mapping[str, Any]
    lock: Mapping[str, Any]
    variables: Mapping[str, Any]
    sensitive_variables: frozenset[str]
    modules: tuple[ModuleInstance, ...]
    roles: tuple[str, ...]
    outputs: Mapping[str, Any]
    images: Mapping[str, str]
    images_file: str | None
    image_settings: Mapping[str, Any]
    origin: Origin
    policy_skips: Mapping[str, str] = field(default_factory=dict)  # check id -> why this environment skips it
    auto_apply: bool = False
    """Apply the plan made because an upstream's read outputs changed (`apply --plan-dependents`)."""


@dataclass(frozen=True)
class Module:
    name: str
    file: str
    description: str
    variables: Mapping[str, Variable]
    body: str
    """The Jinja-over-YAML body, padded with blank lines so that template line numbers are
    the file's own line numbers."""
    origin: Origin


@dataclass(frozen=True)
class RoleTemplate:
    source: str
    destination: str
    command: str | None
    perms: str | None
    origin: Origin


@dataclass(frozen=True)
class Role:
    name: str
    file: str
    description: str
    image: Mapping[str, Any]
    service: Mapping[str, Any] | None
    templates: tuple[RoleTemplate, ...]
    env_prefix: str | None
    template_files: tuple[str, ...]
    test_files: tuple[str, ...]
    origin: Origin
    run: tuple[str, ...] = ()
    """The service's command line on the host; launched by `opsgit exec` over `env_prefix`."""


@dataclass(frozen=True)
class Repo:
    settings: Settings
    environments: Mapping[str, Environment]
    modules: Mapping[str, Module]
    roles: Mapping[str, Role]
    shared_templates: tuple[str, ...]
    role_names: tuple[str, ...] = ()
    """Every role of the repository, also when only some were loaded."""

    @property
    def root(self) -> Path:
        return self.settings.root
