"""Environments that feed each other: which environment reads which one's outputs, the order they
apply in, and which dependents an upstream's changed outputs reach.

The edges come from env.yaml as loaded — `${environment.global.outputs.zone_id}` written in a
module's inputs, a variable or the environment's outputs — never from rendering and never from
state, so `opsgit envs`, the order of `apply --affected` and the refusal of a cycle need neither.
The renderer checks that every reference it meets was written this way (see render/graph.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from opsgit.errors import ConfigError, CycleError, UserError
from opsgit.graph.dot import quote
from opsgit.repo.reads import MARK, Read, reads_in
from opsgit.repo.schema import suggest


def graph_of_texts(texts: Mapping[str, str], names: Iterable[str] | None = None) -> EnvironmentGraph:
    """The graph from env.yaml texts (name -> text) of some commit, parsed but not loaded: what
    affected detection has of the commits it compares. A text that does not parse reads nothing
    here (loading it says what is wrong). `names`: every environment, when `texts` holds only
    those that may read another (the others need not be read at all)."""
    from opsgit.repo import yamlio

    reads: list[Read] = []
    for name, text in sorted(texts.items()):
        if MARK not in text:
            continue
        file = f"environments/{name}/env.yaml"
        try:
            data = yamlio.parse(text, file)
        except UserError:
            continue
        if not isinstance(data, dict):
            continue
        modules = data.get("modules")
        values = [spec.get("inputs") for spec in (modules.values() if isinstance(modules, dict) else ())
                  if isinstance(spec, dict)]
        values += [data.get("outputs"), data.get("variables")]
        reads.extend(reads_in(name, file, text, [v for v in values if v]))
    graph = EnvironmentGraph(tuple(sorted(set(texts) | set(names or ()))), tuple(reads))
    graph.check()
    return graph


@dataclass(frozen=True)
class EnvironmentGraph:
    """The environments and what each reads of the others: a plain value."""

    names: tuple[str, ...]
    reads: tuple[Read, ...]

    def upstreams(self, env: str) -> list[str]:
        return sorted({r.upstream for r in self.reads if r.env == env})

    def dependents(self, env: str) -> list[str]:
        return sorted({r.env for r in self.reads if r.upstream == env})

    def outputs_read(self, env: str, upstream: str) -> list[str]:
        return sorted({r.output for r in self.reads if r.env == env and r.upstream == upstream})

    def readers_of(self, upstream: str, outputs: Collection[str]) -> list[str]:
        """The direct dependents of `upstream` that read at least one of `outputs`."""
        return sorted({r.env for r in self.reads if r.upstream == upstream and r.output in outputs})

    def all_dependents(self, envs: Iterable[str]) -> list[str]:
        """Every environment downstream of `envs`, directly or through others, not `envs` themselves."""
        start = set(envs)
        seen: set[str] = set()
        pending = [d for e in start for d in self.dependents(e)]
        while pending:
            env = pending.pop()
            if env not in seen:
                seen.add(env)
                pending.extend(self.dependents(env))
        return sorted(seen - start)

    def check(self) -> None:
        """Refuse a read of an unknown environment, of itself, or a cycle (printed)."""
        for read in self.reads:
            if read.upstream == read.env:
                raise ConfigError(f"environment {read.env!r} reads its own output {read.output!r}", file=read.file,
                                  line=read.line, hint=f"use ${{module.NAME.OUTPUT}} inside {read.env}")
            if read.upstream not in self.names:
                raise ConfigError(f"unknown environment {read.upstream!r}", file=read.file, line=read.line,
                                  hint=suggest(read.upstream, self.names) or "add it under environments/")
        self.order()

    def order(self, subset: Collection[str] | None = None) -> list[str]:
        """Upstreams before their dependents, ties by name; only `subset`'s members when given
        (ordered as in the whole graph, so a chain through an environment outside the subset
        still counts)."""
        edges = {name: set(self.upstreams(name)) & set(self.names) for name in self.names}
        order: list[str] = []
        done: set[str] = set()
        while len(order) < len(edges):
            ready = sorted(n for n, ups in edges.items() if n not in done and ups <= done)
            if not ready:
                self._raise_cycle({n: ups for n, ups in edges.items() if n not in done})
            order.extend(ready)
            done.update(ready)
        return [n for n in order if subset is None or n in subset]

    def _raise_cycle(self, edges: Mapping[str, set[str]]) -> None:
        from opsgit.graph.order import find_cycle

        # the cycle's nodes only: each one that is left waits on another one that is left
        remaining = {n: tuple(sorted(u for u in ups if u in edges)) for n, ups in edges.items()}
        while True:
            dead = [n for n, ups in remaining.items() if not ups]
            if not dead:
                break
            for node in dead:
                del remaining[node]
            remaining = {n: tuple(u for u in ups if u in remaining) for n, ups in remaining.items()}
        cycle = list(reversed(find_cycle(remaining)))  # upstream -> dependent, as data flows
        first = next(r for r in self.reads if r.env == cycle[1] and r.upstream == cycle[0])
        raise CycleError("environments read each other's outputs in a cycle: " + " -> ".join(cycle),
                         file=first.file, line=first.line,
                         hint="an environment may read only environments that do not read it back")

    def to_dot(self) -> str:
        lines = ["digraph environments {", "  rankdir = \"LR\";", "  node [shape = box];"]
        lines += [f"  {quote(name)};" for name in self.names]
        for upstream in self.names:
            for env in self.dependents(upstream):
                label = ", ".join(self.outputs_read(env, upstream))
                lines.append(f"  {quote(upstream)} -> {quote(env)} [label = {quote(label)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def tree(self) -> list[str]:
        """The graph as indented text: each environment that reads no other, then its dependents."""
        lines: list[str] = []

        def walk(env: str, depth: int, via: str | None) -> None:
            reads = f"  (reads {', '.join(self.outputs_read(env, via))})" if via else ""
            lines.append("  " * depth + ("└─ " if depth else "") + env + reads)
            for dependent in self.dependents(env):
                walk(dependent, depth + 1, env)

        for root in (n for n in self.order() if not self.upstreams(n)):
            walk(root, 0, None)
        return lines


def environment_graph(root: Path) -> EnvironmentGraph:
    """The graph of every environment of the working tree, checked. Read from the env.yaml files
    parsed, not loaded: one environment's unrelated mistake (an unknown module) does not stop the
    others from being ordered; loading that one says what is wrong."""
    from opsgit.repo.load import environment_names

    names = environment_names(root)
    texts = {name: (root / "environments" / name / "env.yaml").read_text(encoding="utf-8") for name in names}
    return graph_of_texts({name: text for name, text in texts.items() if MARK in text}, names)


@dataclass(frozen=True)
class Outcome:
    env: str
    status: str  # done, failed, skipped
    detail: str = ""


def walk_in_order(graph: EnvironmentGraph, envs: Collection[str], run: Callable[[str], bool], *,
                  parallelism: int = 4) -> list[Outcome]:
    """Run `run(env)` for each of `envs`, each after the upstreams among them succeeded,
    independent ones side by side (at most `parallelism`); the dependents of one that failed are
    skipped, and so are theirs. Outcomes in the order the environments finished."""
    order = graph.order(envs)
    # an upstream outside `envs` is not waited for; one inside is, also through envs outside
    waits = {env: {u for u in order if u != env and env in graph.all_dependents([u])} for env in order}
    outcomes: list[Outcome] = []
    finished: dict[str, str] = {}  # written by this thread only: the pool's threads just run

    def one(env: str) -> Outcome:
        try:
            return Outcome(env, "done" if run(env) else "failed")
        except UserError as error:  # one environment's mistake is its outcome, not the walk's end
            return Outcome(env, "failed", str(error))

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        running: dict[Future[Outcome], str] = {}
        pending = list(order)
        while pending or running:
            for env in list(pending):
                if len(running) >= max(1, parallelism):
                    break
                blocked = sorted(u for u in waits[env] if finished.get(u) in ("failed", "skipped"))
                if blocked:
                    pending.remove(env)
                    finished[env] = "skipped"
                    outcomes.append(Outcome(env, "skipped", f"upstream {blocked[0]} did not apply"))
                    continue
                if all(finished.get(u) == "done" for u in waits[env]):
                    pending.remove(env)
                    running[pool.submit(one, env)] = env
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                del running[future]
                finished[outcome.env] = outcome.status
                outcomes.append(outcome)
    return outcomes
