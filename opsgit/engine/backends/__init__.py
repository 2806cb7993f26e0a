"""State backends behind one protocol, chosen by `state: {backend: ...}` in env.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from opsgit.engine.state import ResourceState, State
from opsgit.plugins import plugin_class


class StateBackend(Protocol):
    """Where one environment's state lives."""

    # where, for messages ("file .opsgit/state/dev.json", "s3://bucket/key")
    location: str

    # the current state (journal replayed); a new empty state if there is none
    def load(self) -> State: ...

    # make one resource change durable before the next starts; cost independent of state size
    def record(self, lineage: str, serial: int, address: str, resource: ResourceState | None) -> None: ...

    # write the whole state (and its outputs) and clear the journal
    def compact(self, state: State) -> None: ...

    # release open files without compacting
    def close(self) -> None: ...


BACKENDS = {"local": "opsgit.engine.backends.local:LocalBackend", "s3": "opsgit.engine.backends.s3:S3Backend"}


def open_backend(settings: Mapping[str, Any], env: str, root: Path) -> StateBackend:
    kind = plugin_class(BACKENDS, str(settings.get("backend", "local")), "state backend")
    backend: StateBackend = kind(settings, env, root)
    return backend
