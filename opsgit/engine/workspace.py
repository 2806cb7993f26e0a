"""One environment, ready to plan or apply: its rendered graph, state backend and providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opsgit.config import Settings, find_root, load_settings
from opsgit.engine.backends import StateBackend, open_backend
from opsgit.engine.graph import Graph
from opsgit.engine.state import State
from opsgit.providers.base import Provider, load_provider
from opsgit.render.graph import GraphRenderer
from opsgit.render.jinja import make_environment
from opsgit.repo import load_repo, require_environment


@dataclass
class Workspace:
    root: Path
    settings: Settings
    env: str
    graph: Graph
    backend: StateBackend
    _providers: dict[str, Provider] = field(default_factory=dict)

    @property
    def state_directory(self) -> Path:
        return self.root / ".opsgit" / "state"

    @property
    def plan_path(self) -> Path:
        return self.settings.build_path / "plans" / f"{self.env}.plan.json"

    def providers(self, state: State) -> Mapping[str, Provider]:
        needed = {r.provider for r in self.graph.resources.values()} | {r.provider for r in state.resources.values()}
        for name in sorted(needed - set(self._providers)):
            self._providers[name] = load_provider(name, self.graph.providers.get(name, {}))
        return self._providers


def open_workspace(env: str, root: Path | None = None) -> Workspace:
    root = root or find_root()
    settings = load_settings(root)
    require_environment(root, env)
    repo = load_repo(root, settings, only={env})  # one environment's mistakes do not block another's plan
    graph, _ = GraphRenderer(repo, make_environment(root)).render(repo.environments[env])
    return Workspace(root=root, settings=settings, env=env, graph=graph,
                     backend=open_backend(graph.state, env, root))
