"""One environment opened: its settings, state backend, run lock, history and providers from its
env.yaml alone; its graph rendered only when a command asks for it.

So `opsgit unlock`, `locks`, `state`, `history` and `images` work while a module or template of
the environment is broken: the moment a user most needs them. The workspace sits above the
renderer and the engine; neither of them imports the other.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opsgit.config import Settings, find_root, load_settings
from opsgit.engine.backends import StateBackend, open_backend
from opsgit.engine.plan import Plan, Planner
from opsgit.engine.state import State
from opsgit.engine.upstream import Upstream
from opsgit.errors import ConfigError
from opsgit.gitops.history import HistoryStore, history_store
from opsgit.gitops.runs import RunStore, run_store
from opsgit.graph import Graph
from opsgit.locks import RunLock, open_lock
from opsgit.providers.base import Provider, load_provider
from opsgit.repo import Environment, load_environment


@dataclass
class Workspace:
    root: Path
    settings: Settings
    environment: Environment
    rendered: Graph | None = None
    """The graph, once rendered (or given, as for an environment a change deletes)."""
    _providers: dict[str, Provider] = field(default_factory=dict)
    _provider_settings: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def env(self) -> str:
        return self.environment.name

    @functools.cached_property
    def backend(self) -> StateBackend:
        with self._settings_of("state"):
            return open_backend(self.environment.state, self.env, self.root)

    @functools.cached_property
    def lock(self) -> RunLock:
        with self._settings_of("lock"):
            return open_lock(self.environment.lock, self.env, self.root)

    @contextlib.contextmanager
    def _settings_of(self, section: str) -> Iterator[None]:
        """A backend's own refusal of its settings (`ttl: soon`) located at env.yaml's section."""
        try:
            yield
        except ConfigError as error:
            if error.file is not None:
                raise
            origin = self.environment.origin.child(section)
            raise ConfigError(error.message, file=origin.file, line=origin.line, hint=error.hint) from None

    @functools.cached_property
    def history(self) -> HistoryStore:
        return history_store(self.environment.state, self.root)

    @functools.cached_property
    def runs(self) -> RunStore:
        return run_store(self.environment.state, self.root)

    @property
    def backend_settings(self) -> dict[str, Any]:
        """Where state lives and how runs lock: part of a saved plan's input hash."""
        return {"state": dict(self.environment.state), "lock": dict(self.environment.lock)}

    @property
    def state_directory(self) -> Path:
        return self.root / ".opsgit" / "state"

    @property
    def plan_path(self) -> Path:
        return self.settings.build_path / "plans" / f"{self.env}.plan.json"

    @property
    def graph(self) -> Graph:
        """The environment rendered (modules, templates and all), once."""
        if self.rendered is None:
            from opsgit.render.graph import GraphRenderer
            from opsgit.render.jinja import make_environment
            from opsgit.repo import load_repo

            repo = load_repo(self.root, self.settings, only={self.env})  # other environments' mistakes do not count
            graph, _ = GraphRenderer(repo, make_environment(self.root)).render(repo.environments[self.env])
            self.rendered = _provider_shapes(graph)
        return self.rendered

    def provider_settings(self) -> Mapping[str, Mapping[str, Any]]:
        """The providers' settings: the graph's when it is rendered, else env.yaml's alone (the
        same values: provider settings see only the environment's own data)."""
        if self.rendered is not None:
            return self.rendered.providers
        if self._provider_settings is None:
            from opsgit.render.env_values import environment_providers
            from opsgit.render.jinja import make_environment

            self._provider_settings = environment_providers(self.environment, make_environment(self.root))
        return self._provider_settings

    def provider(self, name: str) -> Provider:
        """One provider, configured as the environment says (loaded once)."""
        if name not in self._providers:
            with self._settings_of("providers"):
                self._providers[name] = load_provider(name, self.provider_settings().get(name, {}), self.root)
        return self._providers[name]

    def providers(self, state: State) -> Mapping[str, Provider]:
        """The providers that the graph and the state use."""
        needed = {r.provider for r in state.resources.values()} | {r.provider for r in self.graph.resources.values()}
        return {name: self.provider(name) for name in sorted(needed)}

    def recover_creates(self, *, record: bool) -> State:
        """The state, with the objects that a run killed mid-create made and did not record (their
        providers kept the answers: `RecordsCreates`). With `record` (under the run lock) they
        are written to the state for good; otherwise they are only planned from."""
        from opsgit import output
        from opsgit.engine.state import ResourceState
        from opsgit.providers.base import RecordsCreates

        state = self.backend.load()
        found: dict[str, ResourceState] = {}
        settled: list[tuple[RecordsCreates, str]] = []
        for name, provider in self.providers(state).items():
            if not isinstance(provider, RecordsCreates):
                continue
            for pending in provider.pending_creates(state.lineage):
                settled.append((provider, pending.name))
                known = state.resources.get(pending.address)
                if not pending.answered:
                    output.warn(f"{pending.address}: a run was stopped while creating it and its provider's answer "
                                "was not kept; if the object exists, adopt it with `opsgit import`")
                elif pending.stored is not None and (known is None or known.id != pending.stored.id):
                    stored = pending.stored
                    found[pending.address] = ResourceState(pending.address, pending.type, name, stored.id,
                                                           stored.attributes, pending.dependencies, stored.private,
                                                           stored.schema_version)
                    output.warn(f"{pending.address}: created by a run that was stopped before recording it "
                                f"[id={stored.id}]; " + ("recorded now" if record else "the next apply records it"))
        if not found and not settled:
            return state
        recovered = replace(state, serial=state.serial + 1 if found else state.serial,
                            resources={**state.resources, **found})
        if record:
            if found:
                self.backend.compact(recovered)
            for owner, receipt in settled:
                owner.settle(receipt)
        return recovered

    def plan(self, *, mode: str = "normal", targets: Sequence[str] = (), parallelism: int = 10,
             refresh: bool = True) -> Plan:
        state = self.recover_creates(record=False)
        planner = Planner(self.graph, state, self.providers(state), parallelism=parallelism,
                          settings=self.backend_settings, upstreams=self.upstreams())
        plan = planner.plan(mode=mode, targets=targets, refresh=refresh)
        return replace(plan, variables=self.variables())

    def upstreams(self) -> dict[str, Upstream]:
        """The outputs this environment reads of others, from their states as they are now."""
        from opsgit.engine.upstream import read_upstreams
        from opsgit.gitops.environments import environment_graph

        if not self.graph.upstreams:
            return {}
        environment_graph(self.root)  # a cycle is refused, printed, before any state is read
        return read_upstreams(self.graph.upstreams, self._upstream_state)

    def _upstream_state(self, env: str) -> State:
        upstream = open_workspace(env, self.root)
        try:
            return upstream.backend.load()
        finally:
            upstream.backend.close()

    def variables(self) -> dict[str, Any]:
        """The environment's variables as a plan shows them: sensitive ones masked."""
        from opsgit.engine.plan_json import MASK

        hidden = set(self.environment.sensitive_variables)
        return {name: MASK if name in hidden else value for name, value in self.environment.variables.items()}


def _provider_shapes(graph: Graph) -> Graph:
    """The graph with each native aws attribute in the hashicorp/aws provider's shape: an old
    form is accepted for one release, with a warning naming its file, line and the new form."""
    from opsgit import output
    from opsgit.providers.aws.shapes import RESHAPES, deprecation, reshape_config

    changed = {}
    for address, resource in graph.resources.items():
        if resource.type not in RESHAPES or resource.mode != "managed":
            continue
        settings = graph.providers.get(resource.provider) or {}
        if resource.provider != "aws" or ("source" in settings and resource.type not in (settings.get("native") or ())):
            continue  # a provider plugin's own type already has the provider's shape
        attributes, old = reshape_config(resource.type, resource.attributes)
        for reshape in old:
            output.warn(f"{resource.source}: {deprecation(resource.type, reshape)}")
        if old:
            changed[address] = replace(resource, attributes=attributes)
    return replace(graph, resources={**graph.resources, **changed}) if changed else graph


def open_workspace(env: str, root: Path | None = None) -> Workspace:
    """The environment `env` opened from its env.yaml; nothing is rendered yet."""
    from opsgit.secrets import register

    root = root or find_root()
    environment = load_environment(root, env)
    for name in environment.sensitive_variables:  # masked in everything this run prints or sends
        register(environment.variables.get(name))
    return Workspace(root=root, settings=load_settings(root), environment=environment)
