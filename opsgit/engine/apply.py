"""Apply: walk a Plan's changes as a DAG with bounded parallelism, recording each change durably.

Creates and updates run after the changes of what they depend on; deletes run after the changes
of what depended on them (reverse order). Every finished change is recorded through the state
backend before anything that depends on it starts, so an interrupted apply loses nothing and the
next one continues from there. On the first error no new work is scheduled, the work already
started finishes, the state is saved, and the result says what was and was not done. The same
happens the moment `stop` is set (the run lock was lost): nothing more starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from opsgit.engine.backends import StateBackend
from opsgit.engine.plan import NOOP, REPLACE_CBD, Plan, ResourceChange
from opsgit.engine.resolve import ResolveError, contains_unknown, resolve
from opsgit.engine.state import ResourceState, State
from opsgit.engine.upstream import lookup_entries, reads_sensitive
from opsgit.errors import UserError
from opsgit.graph import Graph
from opsgit.providers.base import (
    PlanningType,
    Provider,
    ProviderError,
    RecordsCreates,
    ResourceType,
    Stored,
    describe_error,
)

DEPOSED = ":deposed"
STOP_POLL = 0.1  # how often a walk waiting on running changes looks at `stop`


PROGRESS_INTERVAL = 10.0  # seconds between `Still creating...` lines, as Terraform prints them


class StalePlan(UserError):
    """The state changed since the plan was made."""


@dataclass
class ApplyResult:
    state: State
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    errors: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)
    stopped: bool = False
    """Stopped from outside (the run lock was lost), not by an error of its own."""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.stopped

    def summary_line(self) -> str:
        return (f"Apply complete! Resources: {self.added} added, {self.changed} changed, "
                f"{self.destroyed} destroyed.")


@dataclass
class _Operation:
    key: str
    kind: str  # apply, delete, delete-deposed
    change: ResourceChange
    needs: set[str] = field(default_factory=set)
    needed_by: list[str] = field(default_factory=list)


def check_fresh(plan: Plan, state: State) -> None:
    if plan.lineage != state.lineage and (state.serial > 0 or state.resources):
        raise StalePlan("saved plan does not match the state (a different lineage)",
                        hint="the state was replaced since the plan was made; run `opsgit plan` again")
    if plan.serial != state.serial:
        raise StalePlan(f"saved plan is stale: the state changed since the plan was made (serial {plan.serial}, "
                        f"now {state.serial})", hint="it was applied already, or another run changed the state; "
                        "run `opsgit plan` again")


class Applier:
    def __init__(self, plan: Plan, backend: StateBackend, providers: Mapping[str, Provider], *,
                 parallelism: int = 10, progress: Callable[[str], None] = print,
                 stop: threading.Event | None = None, on_step: Callable[[int, int], None] | None = None) -> None:
        if plan.graph is None:
            raise UserError("the plan carries no graph", hint="make it with `opsgit plan --out FILE`")
        self.plan = plan
        self.graph: Graph = plan.graph
        self.backend = backend
        self.providers = providers
        self.parallelism = max(1, parallelism)
        self.progress = progress
        self.on_step = on_step  # (changes done, changes in all) after each one, for a live run
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self.resources: dict[str, ResourceState] = {}
        self.serial = 0
        self.lineage = ""
        self._upstreams = lookup_entries(plan.upstreams)

    # -- state -------------------------------------------------------------------------------

    def _record(self, address: str, resource: ResourceState | None) -> None:
        with self._lock:
            self.serial += 1
            self.backend.record(self.lineage, self.serial, address, resource)
            if resource is None:
                self.resources.pop(address, None)
            else:
                self.resources[address] = resource

    def _kind(self, provider: str, type_name: str) -> ResourceType | PlanningType:
        return self.providers[provider].resource_types[type_name]

    # -- run ---------------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        state = self.backend.load()
        check_fresh(self.plan, state)
        if state.serial == 0 and not state.resources and self.plan.mode != "refresh-only":
            state = self._persist_lineage(state)
        self.lineage, self.serial = state.lineage, state.serial
        self.resources = dict(state.resources)
        for address, refreshed in self.plan.refreshed.items():
            known = self.resources.get(address)
            if known is None:
                continue
            self._record(address, None if refreshed is None else replace(known, attributes=refreshed))
        result = ApplyResult(state=state)
        try:
            if self.plan.mode != "refresh-only":
                self._walk(self._operations(), result)
        except BaseException:
            self.backend.close()  # everything recorded so far is in the journal
            raise
        if result.stopped:
            # The lock is someone else's now: what finished is in the journal; compacting would
            # rewrite the state under the new holder's feet.
            self.backend.close()
            result.state = State(lineage=self.lineage, serial=self.serial, resources=dict(self.resources))
            return result
        outputs = self._outputs()
        final = State(lineage=self.lineage, serial=self.serial + 1, resources=dict(self.resources), outputs=outputs)
        self.backend.compact(final)
        result.state = final
        return result

    def _persist_lineage(self, state: State) -> State:
        """A state that was never written: write it, with the plan's lineage, before the first
        create. Idempotency tokens derive from the lineage, so a crash between a create and its
        journal line must find the same lineage on disk, or the next apply creates the object twice."""
        born = State(lineage=self.plan.lineage or state.lineage, serial=1)
        self.backend.compact(born)
        return born

    def _operations(self) -> dict[str, _Operation]:
        operations: dict[str, _Operation] = {}
        for change in self.plan.resource_changes:
            if change.actions == NOOP:
                continue
            if change.actions == ("delete",):
                operations["delete:" + change.address] = _Operation("delete:" + change.address, "delete", change)
            else:
                operations[change.address] = _Operation(change.address, "apply", change)
                if change.actions == REPLACE_CBD:
                    key = "deposed:" + change.address
                    operations[key] = _Operation(key, "delete-deposed", change, {change.address})
        dependants: dict[str, set[str]] = {}
        for address, resource in self.resources.items():
            for dependency in resource.dependencies:
                dependants.setdefault(dependency, set()).add(address)
        for address, config in self.graph.resources.items():
            for dependency in config.dependencies:
                dependants.setdefault(dependency, set()).add(address)
        for key, operation in operations.items():
            address = operation.change.address
            if operation.kind == "apply":
                operation.needs |= {d for d in operation.change.dependencies if d in operations}
            else:
                # a delete waits for everything that used the object to let go of it first
                users = dependants.get(address, set())
                operation.needs |= {u for u in users if u in operations} | {
                    "delete:" + u for u in users if "delete:" + u in operations}
                operation.needs.discard(key)
        for key, operation in operations.items():
            for need in operation.needs:
                operations[need].needed_by.append(key)
        return operations

    def _walk(self, operations: dict[str, _Operation], result: ApplyResult) -> None:
        waiting = {key: len(op.needs) for key, op in operations.items()}
        ready = [key for key, count in waiting.items() if count == 0]
        running: dict[Future[str], str] = {}
        completed: set[str] = set()
        stopped = False
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            while ready or running:
                if self.stop.is_set() and not stopped:
                    stopped = result.stopped = True
                while ready and not stopped and len(running) < self.parallelism:
                    key = ready.pop()
                    running[pool.submit(self._execute, operations[key])] = key
                if not running:
                    break
                done, _ = wait(running, timeout=STOP_POLL, return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    operation = operations[key]
                    if self.on_step is not None:
                        self.on_step(len(completed) + len(result.errors) + 1, len(operations))
                    try:
                        counted = future.result()
                    except Exception as error:  # one resource failed: report it, stop scheduling
                        message = str(error) if isinstance(error, ProviderError) else \
                            f"{operation.change.address}: {describe_error(error)}"
                        result.errors.append(message)
                        stopped = True
                        continue
                    completed.add(key)
                    if counted == "added":
                        result.added += 1
                    elif counted == "changed":
                        result.changed += 1
                    elif counted == "destroyed":
                        result.destroyed += 1
                    elif counted == "replaced":
                        result.added += 1
                        result.destroyed += 1
                    for follower in operation.needed_by:
                        waiting[follower] -= 1
                        if waiting[follower] == 0:
                            ready.append(follower)
        if result.errors or result.stopped:
            result.not_done = sorted({operations[k].change.address for k in operations if k not in completed})

    # -- one operation ---------------------------------------------------------------------

    def _execute(self, operation: _Operation) -> str:
        verbs: dict[tuple[str, ...], str] = {("update",): "modifying", ("read",): "reading"}
        doing = "destroying" if operation.kind != "apply" else verbs.get(operation.change.actions, "creating")
        with self._still(operation.change.address, doing):
            return self._execute_one(operation)

    @contextlib.contextmanager
    def _still(self, address: str, doing: str) -> Iterator[None]:
        """Terraform's `Still creating... [10s elapsed]`, every 10 s of a long operation."""
        done = threading.Event()
        started = time.monotonic()
        interval = float(os.environ.get("OPSGIT_PROGRESS_INTERVAL") or PROGRESS_INTERVAL)

        def tick() -> None:
            while not done.wait(interval):
                self.progress(f"{address}: Still {doing}... [{int(time.monotonic() - started)}s elapsed]")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()

    def _execute_one(self, operation: _Operation) -> str:
        change = operation.change
        address = change.address
        started = time.monotonic()
        try:
            if change.actions == ("read",):
                return self._read_data(change, started)
            kind = self._kind(change.provider, change.type)
            if operation.kind == "delete":
                current = self.resources.get(address)
                self.progress(f"{address}: Destroying... [id={current.id if current else '?'}]")
                if current is not None:
                    self._delete(kind, current)
                self._record(address, None)
                self.progress(f"{address}: Destruction complete after {_took(started)}")
                return "destroyed"
            if operation.kind == "delete-deposed":
                deposed = self.resources.get(address + DEPOSED)
                if deposed is not None:
                    self.progress(f"{address} (deposed object): Destroying... [id={deposed.id}]")
                    self._delete(kind, deposed)
                    self._record(address + DEPOSED, None)
                return "none"
            return self._apply_one(change, kind, started)
        except ProviderError:
            raise
        except Exception as error:
            raise ProviderError(f"{address}: {describe_error(error)}") from None

    def _read_data(self, change: ResourceChange, started: float) -> str:
        """A data source: the values the plan read, or read now when the plan could not (its
        configuration was unknown then), kept in state for the references that use them."""
        address = change.address
        resource = self.graph.resources[address]
        values = change.after
        if values is None or contains_unknown(values):
            try:
                config = resolve(dict(resource.attributes), self._attributes, self.graph.instances)
            except ResolveError as error:
                raise ProviderError(f"{address}: {error}") from None
            self.progress(f"{address}: Reading...")
            source = self.providers[resource.provider].data_sources[resource.type]  # type: ignore[attr-defined]
            values = source.read_data(address, config)
            self.progress(f"{address}: Read complete after {_took(started)}")
        self._record(address, ResourceState(address, resource.type, resource.provider, str(values.get("id") or ""),
                                            dict(values), resource.dependencies))
        return "none"

    @staticmethod
    def _delete(kind: ResourceType | PlanningType, current: ResourceState) -> None:
        if isinstance(kind, PlanningType):
            kind.apply_change(current.address, current.stored, None)
        else:
            kind.delete(current.id, current.attributes)

    def _apply_planned(self, change: ResourceChange, kind: PlanningType, config: dict[str, Any],
                       current: ResourceState | None, started: float) -> str:
        """A plugin type's change: the provider plans it again with the final configuration and
        applies that; a replacement deletes first, or creates first with create_before_destroy."""
        from opsgit.plugin.provider import PartialCreate

        address = change.address
        resource = self.graph.resources[address]
        ignored = resource.lifecycle.get("ignore_changes", [])

        def record(stored: Stored) -> None:
            self._record(address, ResourceState(address, resource.type, resource.provider, stored.id,
                                                stored.attributes, resource.dependencies, stored.private,
                                                stored.schema_version))

        if change.actions == ("update",) and current is not None:
            self.progress(f"{address}: Modifying... [id={current.id}]")
            updated = kind.apply_change(address, current.stored, config, ignored)
            if updated is not None:
                record(updated)
            self.progress(f"{address}: Modifications complete after {_took(started)} [id={current.id}]")
            return "changed"
        replacing = current is not None
        if current is not None and change.actions != REPLACE_CBD:
            self.progress(f"{address}: Destroying... [id={current.id}]")
            kind.apply_change(address, current.stored, None)
            self._record(address, None)
        elif current is not None:
            self._record(address + DEPOSED, replace(current, address=address + DEPOSED))
        self.progress(f"{address}: Creating...")
        # The provider's answer is kept (by its witness process) until the object is journaled:
        # a run killed in between leaves it for the next one to record, not to create again.
        receipt = {"name": self._token(address, current), "lineage": self.lineage, "address": address,
                   "provider": resource.provider, "dependencies": list(resource.dependencies)}
        provider = self.providers[resource.provider]
        try:
            created = kind.apply_change(address, None, config, ignored, receipt=receipt)
        except PartialCreate as failed:
            record(failed.stored)  # the object exists: the next plan sees it, never a second one
            self._settle(provider, receipt)
            raise
        if created is None:
            raise ProviderError(f"{address}: the provider returned no object")
        record(created)
        self._settle(provider, receipt)
        self.progress(f"{address}: Creation complete after {_took(started)} [id={created.id}]")
        return "replaced" if replacing else "added"

    def _apply_one(self, change: ResourceChange, kind: ResourceType | PlanningType, started: float) -> str:
        address = change.address
        resource = self.graph.resources[address]
        try:
            config = resolve(dict(resource.attributes), self._attributes, self.graph.instances)
        except ResolveError as error:
            raise ProviderError(f"{address}: {error}") from None
        if contains_unknown(config):
            raise ProviderError(f"{address}: a value is still unknown at apply time")
        current = self.resources.get(address)
        if isinstance(kind, PlanningType):
            return self._apply_planned(change, kind, config, current, started)
        if change.actions == ("update",) and current is not None:
            self.progress(f"{address}: Modifying... [id={current.id}]")
            attributes = kind.update(current.id, current.attributes, config)
            self._record(address, ResourceState(address, resource.type, resource.provider, current.id, attributes,
                                                resource.dependencies))
            self.progress(f"{address}: Modifications complete after {_took(started)} [id={current.id}]")
            return "changed"
        replacing = current is not None
        if replacing and change.actions != REPLACE_CBD and current is not None:
            self.progress(f"{address}: Destroying... [id={current.id}]")
            kind.delete(current.id, current.attributes)
            self._record(address, None)
        elif replacing and current is not None:
            self._record(address + DEPOSED, replace(current, address=address + DEPOSED))
        self.progress(f"{address}: Creating...")
        resource_id, attributes = kind.create(config, self._token(address, current))
        self._record(address, ResourceState(address, resource.type, resource.provider, resource_id, attributes,
                                            resource.dependencies))
        self.progress(f"{address}: Creation complete after {_took(started)} [id={resource_id}]")
        return "replaced" if replacing else "added"

    def _token(self, address: str, current: ResourceState | None) -> str:
        """The create's idempotency token: the same for a retry after a crash (the lineage is on
        disk before the first create), new for each replacement (the prior object's id)."""
        return hashlib.sha256(f"{self.lineage}:{address}:{current.id if current else ''}".encode()).hexdigest()[:32]

    @staticmethod
    def _settle(provider: Provider, receipt: Mapping[str, Any]) -> None:
        if isinstance(provider, RecordsCreates):
            provider.settle(str(receipt["name"]))

    def _attributes(self, address: str) -> Mapping[str, Any] | None:
        found = self.resources.get(address)
        if found is None:
            upstream: Mapping[str, Any] | None = self._upstreams.get(address)  # the plan's values of them
            return upstream
        return found.attributes

    def _outputs(self) -> dict[str, dict[str, Any]]:
        outputs = {}
        for name, expression in self.graph.outputs.items():
            try:
                value = resolve(expression, self._attributes, self.graph.instances)
            except ResolveError:
                continue
            if contains_unknown(value):
                continue
            sensitive = name in self.graph.sensitive_outputs or reads_sensitive(expression, self.plan.upstreams)
            outputs[name] = {"value": value, "sensitive": sensitive}
        return outputs


def _took(started: float) -> str:
    seconds = time.monotonic() - started
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"
