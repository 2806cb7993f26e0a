"""What the dashboard shows, read from the stores the CLI writes: each environment's runs and
history (local or S3, beside its state), its run lock (any backend), its image builds and the
images it has promoted (`images.yaml`). Nothing here is cached across requests: a page shows
what the stores hold when it is asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit.errors import OpsgitError
from opsgit.gitops import history
from opsgit.gitops.runs import Run, RunStore, run_store
from opsgit.locks import describe, open_lock
from opsgit.repo import environment_names, load_environment
from opsgit.repo.values import Environment
from opsgit.secrets import register


@dataclass(frozen=True)
class LockView:
    backend: str
    holder: Mapping[str, Any] | None
    sentence: str
    error: str | None = None


@dataclass(frozen=True)
class EnvironmentView:
    name: str
    description: str
    latest: Run | None
    running: Run | None
    lock: LockView
    drift: int | None  # resources changed outside opsgit, by the newest run that looked
    error: str | None = None
    runs: tuple[Run, ...] = ()  # the newest, newest first


def readable(error: BaseException) -> str:
    """One line for a page: an AWS or Consul failure as the CLI would say it."""
    from opsgit import awsclients
    from opsgit.providers.base import describe_error

    if isinstance(error, OpsgitError):
        return str(error)
    return str(awsclients.as_user_error(error) or describe_error(error))


def _location(sources: Sources, env: str) -> str:
    try:
        return sources.runs_of(env).location
    except Exception:
        return ""


class Sources:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return environment_names(self.root)

    def environment(self, env: str) -> Environment:
        environment = load_environment(self.root, env)
        for name in environment.sensitive_variables:  # masked on every page, as in all output
            register(environment.variables.get(name))
        return environment

    def runs_of(self, env: str) -> RunStore:
        return run_store(self.environment(env).state, self.root)

    def runs(self, env: str, limit: int = 50, kinds: tuple[str, ...] = ("plan", "apply", "drift")) -> list[Run]:
        return [run for run in self.runs_of(env).list(env, limit * 2) if run.record.get("kind") in kinds][:limit]

    def run(self, env: str, number: int) -> Run | None:
        return self.runs_of(env).get(env, number)

    def log(self, env: str, number: int, offset: int = 0) -> str:
        return self.runs_of(env).log(env, number, offset)

    def lock(self, env: str) -> LockView:
        try:
            settings = self.environment(env).lock
        except OpsgitError as error:
            return LockView("?", None, "unknown", str(error))
        backend = str(settings.get("backend", "local"))
        try:
            holder = open_lock(settings, env, self.root).holder()
        except Exception as error:
            return LockView(backend, None, "unknown", readable(error))
        sentence = describe(env, holder, local=backend == "local") if holder is not None else "free"
        return LockView(backend, holder, sentence)

    def overview(self, env: str, limit: int = 20) -> EnvironmentView:
        try:
            environment = self.environment(env)
            runs = self.runs(env, limit)
        except Exception as error:  # one unreadable store must not hide the other environments
            where = _location(self, env)
            try:
                description = self.environment(env).description
            except Exception:
                description = ""
            return EnvironmentView(env, description, None, None, self.lock(env), None,
                                   f"{where}: {readable(error)}" if where else readable(error))
        drift = next((int(r.record["drift"]) for r in runs if r.record.get("drift") is not None), None)
        running = next((r for r in runs if r.live), None)
        return EnvironmentView(env, environment.description, runs[0] if runs else None, running, self.lock(env),
                               drift, runs=tuple(runs))

    def unlock(self, env: str, who: str) -> Mapping[str, Any] | None:
        """Free the environment's run lock for `who` (signed in on the dashboard) and record it in
        the run history; the holder it had, or None when it was free."""
        environment = self.environment(env)
        lock = open_lock(environment.lock, env, self.root)
        holder = lock.holder()
        if holder is None:
            return None
        lock.force_unlock()
        was = describe(env, holder, local=environment.lock.get("backend", "local") == "local")
        history.record_unlock(history.history_store(environment.state, self.root), self.root, env, who=who,
                              holder=holder, was=was, via="dashboard")
        return holder

    def history(self, env: str) -> list[dict[str, Any]]:
        environment = self.environment(env)
        return history.history_store(environment.state, self.root).read(history.RUNS, env)

    def image_builds(self, env: str, limit: int = 50) -> list[Run]:
        return self.runs(env, limit, kinds=("image",))

    def promoted(self, env: str) -> Mapping[str, str]:
        return dict(self.environment(env).images)
