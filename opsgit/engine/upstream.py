"""Other environments' outputs, as a plan reads them: `${environment.global.outputs.zone_id}`.

Read at plan time from the upstream's state (its own backend, local or S3), never by rendering its
files. An upstream that was never applied, or whose state lacks an output its env.yaml declares,
gives unknown values — "known after apply of global" — and a plan with them cannot be applied.
The values a plan was made from travel in the plan (with a hash per output), so apply uses
exactly them and refuses once the upstream's outputs have moved on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsgit.engine.resolve import UNKNOWN
from opsgit.engine.state import State
from opsgit.errors import UserError
from opsgit.graph import refs


def value_hash(value: Any) -> str:
    """The hash of an output's value, as apply records it (sensitive values are hashed, not kept)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def output_hashes(outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """A state's outputs (`{name: {value, sensitive}}`) as name -> hash of the value."""
    return {name: value_hash(entry.get("value")) for name, entry in sorted(outputs.items())}


@dataclass(frozen=True)
class Upstream:
    """What one upstream environment's state said about the outputs a plan reads."""

    env: str
    lineage: str
    serial: int
    applied: bool
    values: Mapping[str, Any]  # only the outputs read, and only those the state has
    sensitive: frozenset[str]
    read: tuple[str, ...]  # the outputs read

    @property
    def missing(self) -> tuple[str, ...]:
        """Outputs read that the state does not have yet (known after apply of the upstream)."""
        return tuple(name for name in self.read if name not in self.values)

    @property
    def hashes(self) -> dict[str, str]:
        return {name: value_hash(self.values[name]) for name in self.read if name in self.values}

    def lookup(self) -> dict[str, Any]:
        """`{"outputs": {...}}`, for the reference `environment.<env>.outputs.<name>` to resolve."""
        return {"outputs": {name: self.values.get(name, UNKNOWN) for name in self.read}}

    def to_json(self) -> dict[str, Any]:
        """As a saved plan keeps it (mode 0600: values included, as every planned value is)."""
        return {"env": self.env, "lineage": self.lineage, "serial": self.serial, "applied": self.applied,
                "values": dict(self.values), "sensitive": sorted(self.sensitive), "read": list(self.read),
                "hashes": self.hashes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Upstream:
        return cls(env=str(data["env"]), lineage=str(data.get("lineage", "")), serial=int(data.get("serial", 0)),
                   applied=bool(data.get("applied")), values=dict(data.get("values") or {}),
                   sensitive=frozenset(data.get("sensitive") or ()), read=tuple(data.get("read") or ()))


def read_upstreams(reads: Mapping[str, tuple[str, ...]], load_state: Callable[[str], State]) -> dict[str, Upstream]:
    """Each upstream's state, loaded once, reduced to the outputs read. A sensitive output's
    value is registered for masking, so it stays masked in everything this run shows."""
    from opsgit.secrets import register

    found = {}
    for env, names in sorted(reads.items()):
        state = load_state(env)
        applied = state.serial > 0 or bool(state.resources) or bool(state.outputs)
        values = {name: state.outputs[name].get("value") for name in names if name in state.outputs}
        sensitive = frozenset(name for name in names if (state.outputs.get(name) or {}).get("sensitive"))
        for name in sensitive:
            register(values.get(name))
        found[env] = Upstream(env, state.lineage, state.serial, applied, values, sensitive, tuple(names))
    return found


def lookup_entries(upstreams: Mapping[str, Upstream]) -> dict[str, Any]:
    """The upstreams as a reference lookup sees them: `environment.global` -> {"outputs": ...}."""
    return {f"{refs.UPSTREAM}.{env}": upstream.lookup() for env, upstream in upstreams.items()}


def reads_sensitive(value: Any, upstreams: Mapping[str, Upstream]) -> bool:
    """Whether a configuration value reads a sensitive output of an upstream."""
    found: list[str] = []
    refs.collect(value, found)
    for expression in found:
        read = refs.upstream_output(expression)
        if read is not None and read[0] in upstreams and read[1] in upstreams[read[0]].sensitive:
            return True
    return False


def refuse_unapplied(env: str, upstreams: Mapping[str, Upstream],
                     where: Mapping[str, tuple[str, int | None]] | None = None) -> None:
    """Apply needs every value it reads: refuse while an upstream has not produced them. `where`:
    upstream -> the file and line of the first read of it, for the message."""
    for upstream in upstreams.values():
        file, line = (where or {}).get(upstream.env, (None, None))
        if not upstream.applied:
            raise UserError(f"{env} reads outputs of environment {upstream.env!r}, which has not been applied",
                            file=file, line=line,
                            hint=f"apply {upstream.env} first with `opsgit apply --env {upstream.env}`, or both "
                                 "in order with `opsgit apply --affected`")
        if upstream.missing:
            raise UserError(f"{env} reads output {upstream.missing[0]!r} of environment {upstream.env!r}, which "
                            "its state does not have yet", file=file, line=line,
                            hint=f"apply {upstream.env} (its env.yaml declares it), then plan {env} again")


def refuse_moved(env: str, planned: Mapping[str, Upstream], now: Mapping[str, Upstream]) -> None:
    """A saved plan made from upstream outputs that have changed since is refused, like one
    made from an older state of its own."""
    from opsgit.engine.apply import StalePlan

    for name, before in planned.items():
        after = now.get(name)
        changed = sorted(k for k in set(before.hashes) | set(after.hashes if after else {})
                         if before.hashes.get(k) != (after.hashes.get(k) if after else None))
        if changed:
            raise StalePlan(f"the outputs of environment {name!r} changed since this plan was made "
                            f"({', '.join(changed)})", hint=f"run `opsgit plan --env {env}` again")
