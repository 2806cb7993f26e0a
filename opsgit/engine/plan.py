"""Plan: refresh what the state knows, resolve references, and diff desired against actual.

The result is a `Plan` value: the actions per resource address (Terraform's vocabulary and JSON
shape, `terraform show -json`), the drift found while refreshing, the output changes, and what
it was made from (graph, state lineage and serial, input hash), so that `apply` can refuse it
once the state has moved on.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from opsgit.engine.plan_json import unknown_as_bool
from opsgit.engine.resolve import (
    UNKNOWN,
    ResolveError,
    contains_unknown,
    known,
    replace_unknown,
    resolve,
    unknown_paths,
)
from opsgit.engine.state import ResourceState, State
from opsgit.engine.upstream import Upstream, lookup_entries, reads_sensitive
from opsgit.errors import UserError
from opsgit.graph import Graph, Resource, refs
from opsgit.output import plural
from opsgit.providers.base import PlanningType, Provider, ProviderError, ResourceType, Stored, describe_error

PLAN_FILE_FORMAT = 2  # a saved plan's own format (the JSON plan is Terraform's: `plan_json`)
READ_BATCH = 100

CREATE, UPDATE, DELETE, NOOP, READ = ("create",), ("update",), ("delete",), ("no-op",), ("read",)
REPLACE, REPLACE_CBD = ("delete", "create"), ("create", "delete")


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    provider: str
    actions: tuple[str, ...]
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    replace_paths: tuple[str, ...] = ()
    action_reason: str | None = None
    sensitive: frozenset[str] = frozenset()
    dependencies: tuple[str, ...] = ()
    schema_version: int = 0  # the version of its type's schema (a provider plugin's; 0 for native types)
    unknown_shapes: Mapping[str, str] = field(default_factory=dict)  # see PlannedChange

    @property
    def name(self) -> str:
        return self.address.rsplit(".", 1)[-1].split("[", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The change as a saved plan file keeps it (`plan_json` writes Terraform's shape)."""
        data: dict[str, Any] = {
            "address": self.address, "mode": "managed", "type": self.type, "name": self.name,
            "provider_name": self.provider,
            "change": {"actions": list(self.actions), "before": _masked(self.before, self.sensitive),
                       "after": _masked(known(self.after), self.sensitive),
                       "after_unknown": unknown_paths(self.after) if self.after is not None else {},
                       "before_sensitive": {k: True for k in self.sensitive if self.before and k in self.before},
                       "after_sensitive": {k: True for k in self.sensitive if self.after and k in self.after}},
            "dependencies": list(self.dependencies),
        }
        if self.replace_paths:
            data["change"]["replace_paths"] = [[p] for p in self.replace_paths]
        if self.action_reason:
            data["action_reason"] = self.action_reason
        if self.schema_version:
            data["schema_version"] = self.schema_version
        if self.unknown_shapes:
            data["unknown_shapes"] = dict(self.unknown_shapes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceChange:
        change = data["change"]
        return cls(address=data["address"], type=data["type"], provider=data["provider_name"],
                   actions=tuple(change["actions"]), before=change["before"], after=change["after"],
                   replace_paths=tuple(p[0] for p in change.get("replace_paths", [])),
                   action_reason=data.get("action_reason"),
                   sensitive=frozenset(change.get("after_sensitive", {}))
                   | frozenset(change.get("before_sensitive", {})),
                   dependencies=tuple(data.get("dependencies", ())), schema_version=int(data.get("schema_version", 0)),
                   unknown_shapes=data.get("unknown_shapes", {}))


def _masked(value: Mapping[str, Any] | None, sensitive: frozenset[str]) -> Mapping[str, Any] | None:
    if value is None or not sensitive:
        return value
    return {k: ("(sensitive value)" if k in sensitive else v) for k, v in value.items()}


@dataclass(frozen=True)
class Plan:
    env: str
    mode: str
    lineage: str
    serial: int
    input_hash: str
    resource_changes: tuple[ResourceChange, ...]
    resource_drift: tuple[ResourceChange, ...] = ()
    output_changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    refreshed: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    graph: Graph | None = None
    base_commit: str | None = None
    head_commit: str | None = None
    targets: tuple[str, ...] = ()
    prior: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The state the plan was made from, refreshed: address -> type, provider, values,
    schema_version, dependencies, sensitive (Terraform's `prior_state`)."""
    prior_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)  # the environment's, sensitive ones masked
    timestamp: str = ""  # when it was made, UTC, RFC 3339
    policy: Mapping[str, Any] | None = None  # the policy checks' result (`opsgit.policy.PolicyResult`), if run
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    """The other environments' outputs the plan read, as their states had them (engine/upstream.py)."""

    @property
    def pending_upstreams(self) -> tuple[str, ...]:
        """Upstreams whose values this plan could not know: not applied, or without an output yet."""
        return tuple(name for name, u in sorted(self.upstreams.items()) if not u.applied or u.missing)

    @property
    def summary(self) -> tuple[int, int, int]:
        add = sum(1 for c in self.resource_changes if "create" in c.actions)
        change = sum(1 for c in self.resource_changes if c.actions == UPDATE)
        destroy = sum(1 for c in self.resource_changes if "delete" in c.actions)
        return add, change, destroy

    @property
    def has_changes(self) -> bool:
        return (any(c.actions not in (NOOP, READ) for c in self.resource_changes)
                or (bool(self.resource_drift) and self.mode == "refresh-only")
                or any(o["actions"] != ["no-op"] for o in self.output_changes.values()))

    def summary_line(self) -> str:
        if self.mode == "refresh-only":
            return (f"Drift: {plural(len(self.resource_drift), 'resource')} changed outside opsgit."
                    if self.resource_drift else "No changes. Your infrastructure still matches the state.")
        if not any(c.actions not in (NOOP, READ) for c in self.resource_changes):
            return "No changes. Your infrastructure matches the configuration."
        add, change, destroy = self.summary
        return f"Plan: {add} to add, {change} to change, {destroy} to destroy."

    def to_json(self) -> dict[str, Any]:
        """Terraform's JSON plan representation (`terraform show -json`), as `plan_json` writes it."""
        from opsgit.engine.plan_json import render

        return render(self)

    def to_file(self) -> dict[str, Any]:
        """The saved plan: everything apply needs (no-ops, refreshed values, the graph, the
        planned values with their unknowns) and what `opsgit show --json` renders."""
        return {
            "format": PLAN_FILE_FORMAT, "opsgit_version": _version(), "env": self.env, "mode": self.mode,
            "base_commit": self.base_commit, "head_commit": self.head_commit, "input_hash": self.input_hash,
            "state": {"lineage": self.lineage, "serial": self.serial},
            "resource_changes": [c.to_json() for c in self.resource_changes],
            "resource_drift": [c.to_json() for c in self.resource_drift],
            "output_changes": self.output_changes, "targets": list(self.targets),
            "refreshed": self.refreshed,
            "graph": self.graph.to_json() if self.graph else None,
            "internal_after": {c.address: replace_unknown(c.after, _UNKNOWN_MARK) for c in self.resource_changes},
            "prior": self.prior, "prior_outputs": self.prior_outputs, "variables": self.variables,
            "timestamp": self.timestamp, "policy": self.policy,
            "upstreams": {name: u.to_json() for name, u in sorted(self.upstreams.items())},
        }

    @classmethod
    def from_file(cls, data: Mapping[str, Any]) -> Plan:
        afters = data.get("internal_after", {})
        changes = []
        for item in data["resource_changes"]:
            change = ResourceChange.from_json(item)
            changes.append(ResourceChange(change.address, change.type, change.provider, change.actions,
                                          change.before, _decode_unknown(afters.get(change.address)),
                                          change.replace_paths, change.action_reason, change.sensitive,
                                          change.dependencies, change.schema_version, change.unknown_shapes))
        return cls(env=data["env"], mode=data["mode"], lineage=data["state"]["lineage"],
                   serial=int(data["state"]["serial"]), input_hash=data["input_hash"],
                   resource_changes=tuple(changes),
                   resource_drift=tuple(ResourceChange.from_json(c) for c in data.get("resource_drift", [])),
                   output_changes=data.get("output_changes", {}), refreshed=data.get("refreshed", {}),
                   graph=Graph.from_json(data["graph"]) if data.get("graph") else None,
                   base_commit=data.get("base_commit"), head_commit=data.get("head_commit"),
                   targets=tuple(data.get("targets", ())), prior=data.get("prior", {}),
                   prior_outputs=data.get("prior_outputs", {}), variables=data.get("variables", {}),
                   timestamp=str(data.get("timestamp", "")), policy=data.get("policy"),
                   upstreams={name: Upstream.from_json(u) for name, u in (data.get("upstreams") or {}).items()})


_UNKNOWN_MARK = {"__opsgit_unknown__": True}


def _decode_unknown(value: Any) -> Any:
    if value == _UNKNOWN_MARK:
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _decode_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_unknown(v) for v in value]
    return value


def _version() -> str:
    from opsgit import __version__
    return __version__


def input_hash(graph: Graph, settings: Mapping[str, Any] | None = None) -> str:
    """What a saved plan was made from: the graph, and the environment's state and lock settings
    (`{"state": ..., "lock": ...}`), so a plan made against another state is refused."""
    document = {**graph.to_json(sources=False), **(settings or {})}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


# -- planning ------------------------------------------------------------------------------------

@dataclass
class Planner:
    graph: Graph
    state: State
    providers: Mapping[str, Provider]
    parallelism: int = 10
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The environment's state and lock settings, for the plan's input hash."""
    refreshed_objects: dict[str, Stored | None] = field(default_factory=dict)
    """Plugin-managed objects as refresh read them, private data included."""
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    """Other environments' outputs the graph reads (`${environment.global.outputs.zone_id}`)."""

    def _lookup(self, values: Mapping[str, Any]) -> Any:
        """Reference lookup in `values` (planned or current), then in the upstreams' outputs."""
        entries = self._upstream_entries
        return lambda address: values[address] if address in values else entries.get(address)

    @functools.cached_property
    def _upstream_entries(self) -> dict[str, Any]:
        return lookup_entries(self.upstreams)

    def resource_type(self, provider: str, type_name: str, source: str = "") -> ResourceType | PlanningType:
        found = self.providers.get(provider)
        types = found.resource_types if found else {}
        if type_name not in types:
            import difflib
            close = difflib.get_close_matches(type_name, list(types), n=1)
            raise UserError.at(source, f"unknown resource type {type_name!r} for provider {provider!r}",
                               hint=f"did you mean {close[0]!r}?" if close else
                               f"{provider} supports {', '.join(sorted(types)) or 'no resource types'}")
        return types[type_name]

    def check_config(self) -> None:
        for resource in self.graph.resources.values():
            if resource.mode == "data":
                sources = getattr(self.providers.get(resource.provider), "data_sources", None) or {}
                if resource.type not in sources:
                    continue  # said with its hint when the plan reaches it
                problem = sources[resource.type].schema.check(resource.type, resource.attributes)
                if problem:
                    raise UserError.at(resource.source, f"{resource.address}: {problem}")
                continue
            kind = self.resource_type(resource.provider, resource.type, resource.source)
            problem = kind.schema.check(resource.type, resource.attributes)
            if problem:
                raise UserError.at(resource.source, f"{resource.address}: {problem}")

    def check_implementations(self) -> None:
        """Each object in state is planned by the implementation that wrote it (opsgit's native
        code keeps no schema version; a provider plugin always does): one that the configuration
        now serves by the other (`native:` changed) is moved by `opsgit state migrate` first."""
        moved = []
        for resource in self.state.resources.values():
            if refs.is_data(resource.address):
                continue
            by_plugin = isinstance(self.resource_type(resource.provider, resource.type), PlanningType)
            if by_plugin != (resource.schema_version is not None):
                moved.append((resource.address, by_plugin))
        if moved:
            address, by_plugin = sorted(moved)[0]
            more = f" (and {len(moved) - 1} more)" if len(moved) > 1 else ""
            now, was = ("the provider plugin", "opsgit's native code") if by_plugin else \
                ("opsgit's native code", "the provider plugin")
            raise UserError(f"{address}{more} is in the state as written by {was}, but the configuration now has "
                            f"{now} manage it", hint="move it with `opsgit state migrate --env ENV "
                            f"{' '.join(sorted(a for a, _ in moved))}` (it re-reads each object), or put "
                            "`native:` back as it was")

    def refresh(self) -> dict[str, dict[str, Any] | None]:
        """Read every resource in state: per type, in batches, in parallel (bounded)."""
        groups: dict[tuple[str, str], list[ResourceState]] = {}
        for resource in self.state.resources.values():
            if refs.is_data(resource.address):
                continue  # read again by the plan itself
            groups.setdefault((resource.provider, resource.type), []).append(resource)
        jobs = []
        for (provider, type_name), members in sorted(groups.items()):
            kind = self.resource_type(provider, type_name)
            # At least `parallelism` chunks, so a provider that reads one at a time uses every slot;
            # at most READ_BATCH per chunk, the most one Describe call takes.
            chunks = max(-(-len(members) // READ_BATCH), min(len(members), self.parallelism))
            size = -(-len(members) // chunks)
            for start in range(0, len(members), size):
                jobs.append((kind, members[start:start + size]))
        refreshed: dict[str, dict[str, Any] | None] = {}

        def read(job: tuple[ResourceType | PlanningType, list[ResourceState]]
                 ) -> list[tuple[str, dict[str, Any] | None]]:
            kind, members = job
            if isinstance(kind, PlanningType):
                return [self._refresh_object(kind, member) for member in members]
            try:
                found = kind.read_many([(m.id, m.attributes) for m in members])
            except ProviderError:
                raise
            except Exception as error:  # provider SDK errors: name the resources
                raise ProviderError(f"refreshing {members[0].address}"
                                    + (f" and {len(members) - 1} more" if len(members) > 1 else "")
                                    + f" failed: {describe_error(error)}") from None
            return [(m.address, attributes) for m, attributes in zip(members, found, strict=True)]

        if len(jobs) <= 1 or self.parallelism <= 1:
            results = [read(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
                results = list(pool.map(read, jobs))
        for batch in results:
            refreshed.update(batch)
        return refreshed

    def _refresh_object(self, kind: PlanningType, member: ResourceState) -> tuple[str, dict[str, Any] | None]:
        try:
            now = kind.refresh(member.address, member.stored)
        except ProviderError as error:
            raise ProviderError(f"refreshing {member.address} failed: {error}") from None
        self.refreshed_objects[member.address] = now
        return member.address, None if now is None else dict(now.attributes)

    def _prior(self, address: str) -> Stored | None:
        """What a planning type planned from: the refreshed object, else the state's."""
        if address in self.refreshed_objects:
            return self.refreshed_objects[address]
        found = self.state.resources.get(address)
        return found.stored if found is not None else None

    def plan(self, *, mode: str = "normal", refresh: bool = True, targets: Sequence[str] = (),
             base_commit: str | None = None, head_commit: str | None = None) -> Plan:
        self.check_config()
        self.check_implementations()
        refreshed = self.refresh() if refresh else {a: dict(r.attributes) for a, r in self.state.resources.items()}
        drift = self._drift(refreshed)
        current = {a: v for a, v in refreshed.items() if v is not None}
        wanted = self._targets(targets)
        changes: list[ResourceChange] = []
        planned: dict[str, Any] = {}
        if mode != "refresh-only":
            if mode != "destroy":
                changes.extend(self._plan_in_order(current, wanted, planned))
            changes.extend(self._deletions(current, wanted, destroying=mode == "destroy"))
        outputs = self._outputs(planned if mode == "normal" else current, mode)
        return Plan(env=self.graph.env, mode=mode, lineage=self.state.lineage, serial=self.state.serial,
                    input_hash=input_hash(self.graph, self.settings), resource_changes=tuple(changes),
                    resource_drift=drift,
                    output_changes=outputs,
                    refreshed={a: refreshed.get(a) for a in (c.address for c in drift)},
                    graph=self.graph, base_commit=base_commit, head_commit=head_commit, targets=tuple(targets),
                    prior=self._prior_values(current), prior_outputs=dict(self.state.outputs),
                    timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), upstreams=self.upstreams)

    def _prior_values(self, current: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The refreshed state, for the plan's `prior_state`."""
        prior = {}
        for address, values in current.items():
            known = self.state.resources.get(address)
            if known is None:
                continue
            sensitive: frozenset[str] = frozenset()
            if not refs.is_data(address):
                with contextlib.suppress(UserError):
                    sensitive = self.resource_type(known.provider, known.type).schema.sensitive
            prior[address] = {"type": known.type, "provider": known.provider, "values": values,
                              "schema_version": known.schema_version or 0,
                              "dependencies": list(known.dependencies), "sensitive": sorted(sensitive)}
        return prior

    def _plan_in_order(self, current: Mapping[str, Any], wanted: set[str] | None,
                       planned: dict[str, Any]) -> list[ResourceChange]:
        """Each resource after what it depends on. A provider plugin plans each resource in a
        call of its own, so plugin resources whose dependencies are all planned are planned
        together, `parallelism` at a time; the rest are quick and planned in turn."""
        order = self.graph.order()
        depth: dict[str, int] = {}
        for address in order:
            depth[address] = 1 + max((depth[d] for d in self.graph.resources[address].dependencies if d in depth),
                                     default=-1)
        levels: dict[int, list[str]] = {}
        for address in order:
            levels.setdefault(depth[address], []).append(address)
        results: dict[str, ResourceChange] = {}
        pool = ThreadPoolExecutor(max_workers=self.parallelism) if self.parallelism > 1 else None
        try:
            for _, members in sorted(levels.items()):
                together = []
                for address in members:
                    resource = self.graph.resources[address]
                    if wanted is not None and address not in wanted:
                        if address in current:
                            planned[address] = current[address]
                    elif resource.mode == "data":
                        pending = {a for a, c in results.items() if c.actions not in (NOOP, READ)}
                        results[address] = self._read_data(resource, planned, pending)
                    elif pool is not None and isinstance(
                            self.resource_type(resource.provider, resource.type, resource.source), PlanningType):
                        together.append(resource)
                    else:
                        results[address] = self._diff(resource, current.get(address), planned)
                if together and pool is not None:
                    made = pool.map(lambda r: self._diff(r, current.get(r.address), planned), together)
                    results.update((r.address, change) for r, change in zip(together, made, strict=True))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return [results[address] for address in order if address in results]

    def _diff(self, resource: Resource, current: Mapping[str, Any] | None, planned: dict[str, Any]) -> ResourceChange:
        kind = self.resource_type(resource.provider, resource.type, resource.source)
        try:
            config = resolve(dict(resource.attributes), self._lookup(planned), self.graph.instances)
        except ResolveError as error:
            raise UserError.at(resource.source, f"{resource.address}: {error}") from None
        if isinstance(kind, PlanningType):
            return self._planned_by_provider(resource, kind, config, current, planned)
        computed = {name: UNKNOWN for name, spec in kind.schema.fields.items() if spec.computed and name not in config}
        sensitive = kind.schema.sensitive | frozenset(
            key for key, value in resource.attributes.items() if reads_sensitive(value, self.upstreams))
        if current is None:
            planned[resource.address] = {**computed, **config}
            return ResourceChange(resource.address, resource.type, resource.provider, CREATE, None,
                                  planned[resource.address], sensitive=sensitive, dependencies=resource.dependencies)
        ignored = resource.lifecycle.get("ignore_changes", [])
        changed = sorted(key for key, value in config.items()
                         if ignored != "all" and key not in ignored and value != current.get(key))
        if not changed:
            planned[resource.address] = dict(current)
            return ResourceChange(resource.address, resource.type, resource.provider, NOOP, current, current,
                                  sensitive=sensitive, dependencies=resource.dependencies)
        forcing = tuple(key for key in changed if key in kind.schema.force_new)
        if forcing:
            if resource.lifecycle.get("prevent_destroy"):
                raise UserError.at(resource.source, f"{resource.address} has lifecycle.prevent_destroy, but this "
                                   f"plan would replace it ({', '.join(forcing)} changed)")
            planned[resource.address] = {**computed, **{k: UNKNOWN for k in current if
                                                       kind.schema.fields.get(k, _NO_FIELD).computed}, **config}
            actions = REPLACE_CBD if resource.lifecycle.get("create_before_destroy") else REPLACE
            return ResourceChange(resource.address, resource.type, resource.provider, actions, current,
                                  planned[resource.address], forcing, "replace_because_cannot_update", sensitive,
                                  resource.dependencies)
        planned[resource.address] = {**current, **config}
        return ResourceChange(resource.address, resource.type, resource.provider, UPDATE, current,
                              planned[resource.address], sensitive=sensitive, dependencies=resource.dependencies)

    def _read_data(self, resource: Resource, planned: dict[str, Any], pending: set[str]) -> ResourceChange:
        """A data source, read now when its configuration is known (its values then plan the
        resources that use it), else during apply, its computed attributes unknown until then;
        also during apply when something it depends on changes first (as Terraform does)."""
        provider = self.providers.get(resource.provider)
        sources = getattr(provider, "data_sources", None) or {}
        if resource.type not in sources:
            raise UserError.at(resource.source, f"{resource.address}: provider {resource.provider!r} has no data "
                               f"source {resource.type!r}",
                               hint="data sources come from provider plugins: give the provider a source, "
                                    "such as hashicorp/aws")
        kind = sources[resource.type]
        try:
            config = resolve(dict(resource.attributes), self._lookup(planned), self.graph.instances)
        except ResolveError as error:
            raise UserError.at(resource.source, f"{resource.address}: {error}") from None
        waits_for = pending.intersection(resource.dependencies)
        if contains_unknown(config) or waits_for:
            after = {**{name: UNKNOWN for name, spec in kind.schema.fields.items() if spec.computed}, **config}
            reason = "read_because_dependency_pending" if waits_for else "read_because_config_unknown"
        else:
            try:
                after = kind.read_data(resource.address, config)
            except ProviderError as error:
                raise UserError.at(resource.source, str(error)) from None
            reason = None
        planned[resource.address] = after
        return ResourceChange(resource.address, resource.type, resource.provider, READ, None, after,
                              action_reason=reason, sensitive=kind.schema.sensitive, dependencies=resource.dependencies)

    def _planned_by_provider(self, resource: Resource, kind: PlanningType, config: dict[str, Any],
                             current: Mapping[str, Any] | None, planned: dict[str, Any]) -> ResourceChange:
        """A plugin type's change, as its provider plans it; lifecycle rules applied here."""
        prior = self._prior(resource.address) if current is not None else None
        try:
            change = kind.plan_change(resource.address, prior, config, resource.lifecycle.get("ignore_changes", []))
        except ProviderError as error:
            raise UserError.at(resource.source, str(error)) from None
        actions = change.actions
        if actions == REPLACE:
            if resource.lifecycle.get("prevent_destroy"):
                raise UserError.at(resource.source, f"{resource.address} has lifecycle.prevent_destroy, but this plan "
                                   f"would replace it ({', '.join(change.replace_paths)} changed)")
            if resource.lifecycle.get("create_before_destroy"):
                actions = REPLACE_CBD
        planned[resource.address] = dict(change.after) if change.after is not None else dict(current or {})
        definition = getattr(kind, "definition", None)  # a plugin type's schema, with its version
        return ResourceChange(resource.address, resource.type, resource.provider, actions,
                              current, planned[resource.address] if actions != NOOP else current,
                              change.replace_paths, change.reason, kind.schema.sensitive, resource.dependencies,
                              int(getattr(definition, "version", 0) or 0), change.unknown_shapes)

    def _deletions(self, current: Mapping[str, Any], wanted: set[str] | None, *, destroying: bool
                   ) -> list[ResourceChange]:
        deletions = []
        for address, attributes in sorted(current.items()):
            if refs.is_data(address) or (address in self.graph.resources and not destroying):
                continue
            if wanted is not None and address not in wanted:
                continue
            known_resource = self.state.resources[address]
            config = self.graph.resources.get(address)
            if config is not None and config.lifecycle.get("prevent_destroy"):
                raise UserError.at(config.source, f"{address} has lifecycle.prevent_destroy and cannot be destroyed")
            block = address.split("[", 1)[0]
            reason = ("delete_because_count_index" if any(a.startswith(block + "[") for a in self.graph.resources)
                      else None if destroying else "delete_because_no_resource_config")
            kind = self.resource_type(known_resource.provider, known_resource.type)
            deletions.append(ResourceChange(address, known_resource.type, known_resource.provider, DELETE,
                                            attributes, None, action_reason=reason, sensitive=kind.schema.sensitive,
                                            dependencies=known_resource.dependencies))
        return deletions

    def _drift(self, refreshed: Mapping[str, dict[str, Any] | None]) -> tuple[ResourceChange, ...]:
        drift = []
        for address, resource in sorted(self.state.resources.items()):
            now = refreshed.get(address)
            if refs.is_data(address):
                continue
            kind = self.resource_type(resource.provider, resource.type)
            if now is not None and isinstance(kind, PlanningType):
                # What the provider alone sets (a load balancer's list of listeners) moves as a
                # consequence of other changes: as Terraform, only what configuration sets counts.
                settable = [k for k in set(now) | set(resource.attributes)
                            if not kind.schema.fields.get(k, _NO_FIELD).computed]
                if same({k: now.get(k) for k in settable}, {k: resource.attributes.get(k) for k in settable}):
                    continue
            elif now is not None and same(now, resource.attributes):
                continue
            actions = DELETE if now is None else UPDATE
            drift.append(ResourceChange(address, resource.type, resource.provider, actions,
                                        resource.attributes, now, sensitive=kind.schema.sensitive))
        return tuple(drift)

    def _targets(self, targets: Iterable[str]) -> set[str] | None:
        targets = list(targets)
        if not targets:
            return None
        wanted: set[str] = set()
        pending = []
        for target in targets:
            matched = [a for a in (*self.graph.resources, *self.state.resources)
                       if a == target or a.startswith(target + "[") or a.startswith(target + ".")]
            if not matched:
                raise UserError(f"--target {target!r} matches no resource",
                                hint="give an address such as module.web-east.aws_instance.web[0]")
            pending.extend(matched)
        while pending:
            address = pending.pop()
            if address in wanted:
                continue
            wanted.add(address)
            resource = self.graph.resources.get(address)
            if resource is not None:
                pending.extend(resource.dependencies)
        return wanted

    def _outputs(self, values: Mapping[str, Any], mode: str) -> dict[str, dict[str, Any]]:
        changes: dict[str, dict[str, Any]] = {}
        for name, expression in self.graph.outputs.items():
            try:
                value = None if mode == "destroy" else resolve(expression, self._lookup(values), self.graph.instances)
            except ResolveError:
                value = UNKNOWN
            before = (self.state.outputs.get(name) or {}).get("value")
            sensitive = name in self.graph.sensitive_outputs or reads_sensitive(expression, self.upstreams)
            action = "no-op" if before == value else "create" if name not in self.state.outputs else "update"
            if mode == "destroy":
                action = "delete"
            changes[name] = {"actions": [action], "before": None if sensitive else before,
                             "after": None if sensitive else known(value), "after_unknown": unknown_as_bool(value),
                             "sensitive": sensitive}
        for name in self.state.outputs:
            if name not in self.graph.outputs:
                changes[name] = {"actions": ["delete"], "before": self.state.outputs[name].get("value"),
                                 "after": None, "after_unknown": False, "sensitive": False}
        return changes


def same(a: Any, b: Any) -> bool:
    """Equal once an empty list or map counts as null (providers return `{}` for tags never
    set; Terraform does not report that as a change outside it)."""
    def empty(value: Any) -> bool:
        return value is None or value == [] or value == {}
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(same(a.get(k), b.get(k)) for k in set(a) | set(b))
    if empty(a) and empty(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _NoField:
    computed = False


_NO_FIELD = _NoField()
