"""Finishing a draft into a graph: references checked and their marks removed, dependency edges
derived, and the comparison of two drafts that affected detection makes without finishing all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsgit.errors import RenderError, UserError
from opsgit.graph import Graph, Resource, refs
from opsgit.render.artefacts import stable_json
from opsgit.render.build import Build, Draft, relative_address
from opsgit.repo.schema import suggest
from opsgit.repo.values import Environment


def finish(draft: Draft) -> Graph:
    build = draft.build
    resources = {address: finish_one(build, address, resource) for address, resource in build.resources.items()}
    graph = graph_of(draft, resources)
    graph.order()
    return graph


def graph_of(draft: Draft, resources: Mapping[str, Resource]) -> Graph:
    env = draft.build.env
    return Graph(env=env.name, resources=resources, outputs=draft.outputs, sensitive_outputs=draft.sensitive_outputs,
                 providers=draft.providers,
                 # only env.yaml reads other environments: with no read there, nothing to look for
                 upstreams=upstreams_read(resources, draft.outputs) if draft.build.upstream_reads else {})


def upstreams_read(resources: Mapping[str, Resource], outputs: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Which outputs of which other environments the finished resources and outputs read."""
    found: list[str] = []
    for resource in resources.values():
        refs.collect(dict(resource.attributes), found)
    refs.collect(dict(outputs), found)
    reads: dict[str, set[str]] = {}
    for expression in found:
        read = refs.upstream_output(expression)
        if read is not None:
            reads.setdefault(read[0], set()).add(read[1])
    return {env: tuple(sorted(names)) for env, names in sorted(reads.items())}


def graph_document(graph: Graph, env: Environment) -> dict[str, Any]:
    """`graph.json`: the graph, and where its environment keeps state and takes its run lock (a
    change of either changes what a plan sees, so affected detection compares them too)."""
    return {**graph.to_json(sources=False), "state": dict(env.state), "lock": dict(env.lock)}


def finish_one(build: Build, address: str, resource: Resource) -> Resource:
    """Remove the absolute marks, check every reference, and derive the dependency edges."""
    found: list[str] = []
    attributes = unmark_collecting(resource.attributes, found)
    dependencies: set[str] = set()
    for expression in found:
        if expression.startswith(refs.UPSTREAM + "."):
            continue  # another environment's output: an edge between environments, not resources
        dependencies.update(targets(build, resource, expression))
    for explicit in resource.dependencies:
        if explicit.startswith("/module:"):
            module = explicit[len("/module:"):]
            if module not in build.module_resources:
                raise error_at(build, resource, f"depends_on names unknown module {module!r}")
            dependencies.update(build.module_resources[module])
        else:
            # As in Terraform, depends_on on a counted block means every one of its instances.
            target = explicit.lstrip("/")
            block = build.blocks.get(target)
            whole = block is not None and block.counted
            dependencies.update(targets(build, resource, target + ("[*].id" if whole else ".id")))
    dependencies.discard(address)
    return Resource(
        address=address, module=resource.module, type=resource.type, name=resource.name,
        index=resource.index, provider=resource.provider, attributes=attributes,
        dependencies=tuple(sorted(dependencies)), lifecycle=resource.lifecycle, source=resource.source,
        mode=resource.mode)


def targets(build: Build, resource: Resource, expression: str) -> list[str]:
    try:
        ref = refs.parse_resource(expression)
    except refs.ReferenceSyntaxError as error:
        raise error_at(build, resource, str(error)) from None
    block = build.blocks.get(ref.block)
    if block is None:
        relative = relative_address(ref.block, resource.module)
        siblings = [relative_address(b, resource.module) for b in build.blocks
                    if b.startswith(resource.module)]
        raise error_at(build, resource, f"{resource.address} refers to missing resource {relative}",
                  suggest(relative, siblings) or "declare it, or fix the reference", needle=relative)
    if ref.splat:
        return list(block.instances)
    if block.counted and ref.index is None:
        raise error_at(build, resource, f"{relative_address(ref.block, resource.module)} has count or for_each; "
                  "pick an instance", f"use {relative_address(ref.block, resource.module)}[0] or [*]")
    if ref.address not in build.resources:
        raise error_at(build, resource, f"{resource.address} refers to missing instance "
                  f"{relative_address(ref.address, resource.module)}", "check the index against count")
    return [ref.address]


def error_at(build: Build, resource: Resource, message: str, hint: str | None = None,
        needle: str | None = None) -> RenderError:
    error = RenderError.at(resource.source, message, hint)
    origin = build.origins.get(resource.address)
    if needle and origin is not None:
        error.line = origin.line_of(needle, default=error.line, start=error.line)
    return error


def unmark_collecting(value: Any, found: list[str]) -> Any:
    """`unmark`, also appending every reference's expression to `found`."""
    def one(text: str) -> str:
        found.extend(expression.lstrip("/") for expression in refs.find(text))
        return text.replace("${/", "${")

    return refs.walk_strings(value, one)


def unmark(value: Any) -> Any:
    return refs.walk_strings(value, lambda text: text.replace("${/", "${"))


def same_rendering(first: Draft, second: Draft) -> bool:
    """Whether two drafts of one environment finish into the same graph.json bytes (what their
    artefact hashes compare), finishing only the resources that differ: a resource the two
    drafts share (the memo replayed it) finishes alike when the blocks and modules its edges
    come from have the same instances on both sides. A draft that does not finish differs."""
    mine, theirs = first.build, second.build
    if list(mine.resources) != list(theirs.resources):
        return False
    try:
        if mine.blocks != theirs.blocks or mine.module_resources != theirs.module_resources:
            return same_graph(finish(first), finish(second)) and graph_fields(first) == graph_fields(second)
        for address, resource in mine.resources.items():
            other = theirs.resources[address]
            if resource is not other and finished_json(mine, address, resource) != \
                    finished_json(theirs, address, other):
                return False
    except UserError:
        return False
    return graph_fields(first) == graph_fields(second)


def same_graph(first: Graph, second: Graph) -> bool:
    """Whether two graphs are the same graph.json bytes."""
    return stable_json(first.to_json(sources=False)) == stable_json(second.to_json(sources=False))


def finished_json(build: Build, address: str, resource: Resource) -> bytes:
    return stable_json(finish_one(build, address, resource).to_json(sources=False))


def graph_fields(draft: Draft) -> bytes:
    """Everything of the graph.json but the resources."""
    return stable_json(graph_document(graph_of(draft, {}), draft.build.env))
