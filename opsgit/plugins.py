"""Plugin registries: a name in env.yaml mapped to `"module:Class"`, imported only when used (as
testinfra's backends are), with a did-you-mean for a name that is not there."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from opsgit.errors import ConfigError


def plugin_class(registry: Mapping[str, str], name: str, what: str) -> Any:
    """The class registered as `name`; `what` names the registry in the error ("lock backend")."""
    target = registry.get(name)
    if target is None:
        from opsgit.repo.schema import suggest

        raise ConfigError(f"unknown {what} {name!r}",
                          hint=suggest(name, registry) or f"use one of {', '.join(registry)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
