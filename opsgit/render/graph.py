"""Render one environment into its resource graph.

Stage one is Jinja, here: env.yaml values and module bodies are rendered with repository data
only. Stage two is the `${...}` references, which stay in the graph for apply time; this module
only makes them absolute, inlines module outputs, and turns them into dependency edges.

While rendering, an absolute reference is marked with a leading `/` (`${/module.redis.aws_instance
.redis.private_ip}`) so that a reference that arrived through a module input is never prefixed a
second time with the module's own path; the marks are removed once the graph is complete.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from opsgit.errors import ConfigError, RenderError, UserError
from opsgit.graph import Graph, Resource, refs, topological_order
from opsgit.render.artefacts import Artefact, stable_json
from opsgit.render.env_values import EnvValues, value_context
from opsgit.render.jinja import (
    compile_template,
    render,
    transitive_reads,
)
from opsgit.render.memo import InstanceMemo, InstanceRecord, freeze
from opsgit.repo import yamlio
from opsgit.repo.schema import check_keys, expect, expect_mapping, suggest
from opsgit.repo.values import Environment, Module, ModuleInstance, Origin, Repo, Variable
from opsgit.secrets import register as register_secret

BODY_KEYS = ("resources", "modules", "outputs")
META_KEYS = ("count", "for_each", "depends_on", "lifecycle", "provider")
LIFECYCLE_KEYS = ("create_before_destroy", "prevent_destroy", "ignore_changes")
BUILTIN_PROVIDERS = ("local", "null", "time")
RESOURCE_KEY = re.compile(r"^([a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][\w-]*)$")
WHOLE_EXPRESSION = re.compile(r"^\{\{(.*)\}\}$", re.DOTALL)
MAX_MODULE_DEPTH = 16
MAX_COUNT = 100_000


@dataclass
class _Block:
    """Resources as written in a module: one block may expand to many instances."""
    instances: list[str] = field(default_factory=list)
    counted: bool = False


@dataclass
class _Build:
    env: Environment
    resources: dict[str, Resource] = field(default_factory=dict)
    blocks: dict[str, _Block] = field(default_factory=dict)
    module_resources: dict[str, list[str]] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    stack: list[str] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)
    memo: InstanceMemo | None = None
    # (module name, content fingerprint) of the modules instantiated so far, for the memo
    modules_used: set[tuple[str, str]] = field(default_factory=set)
    environment_key: Any = None  # what module bodies see of the environment
    values_key: Any = None  # what env.yaml's own Jinja sees


class GraphRenderer:
    """Renders environments; compiled templates are shared across all of them."""

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.repo = repo
        self.jinja = environment
        self._modules: dict[str, jinja2.Template] = {}
        self._module_reads: dict[str, set[str]] = {}
        self.values = EnvValues(environment)
        self._fingerprints: dict[str, str] = {}
        self._templates: str | None = None

    # -- public ------------------------------------------------------------------------------

    def render(self, env: Environment) -> tuple[Graph, set[str]]:
        """The environment's graph and the repository files it read."""
        draft = self.draft(env)
        return finish(draft), draft.build.reads

    def draft(self, env: Environment, memo: InstanceMemo | None = None) -> Draft:
        """The environment rendered up to its references (see `Draft`). With a `memo`, module
        instances recorded by an earlier render of the same environment are replayed."""
        build = _Build(env, memo=memo)
        if memo is not None:
            build.environment_key = freeze([env.name, env.description, dict(env.images), sorted(env.providers)])
            build.values_key = freeze([dict(env.variables), dict(env.images), env.name, env.description,
                                       self._templates_fingerprint()])
        for name in env.sensitive_variables:
            register_secret(env.variables.get(name))
        build.reads.add(env.file)
        if env.images_file:
            build.reads.add(env.images_file)
        context = value_context(env)
        outputs = self._instantiate_children(build, env.modules, (), context, env.origin)
        env_outputs = {
            name: self._absolute(build, self.values.render(value, env.origin.child("outputs", name), context),
                                 (), outputs, env.origin.child("outputs", name))
            for name, value in env.outputs.items()
        }
        return Draft(
            build=build, outputs=_unmark(env_outputs),
            sensitive_outputs=frozenset(name for name, value in env.outputs.items()
                                        if _mentions_sensitive(value, env.sensitive_variables)),
            providers=self.values.render(dict(env.providers), env.origin.child("providers"), context),
        )

    # -- modules -----------------------------------------------------------------------------

    def _instantiate_children(self, build: _Build, instances: tuple[ModuleInstance, ...],
                              path: tuple[str, ...], context: dict[str, Any],
                              origin: Origin) -> dict[str, dict[str, Any]]:
        """Instantiate sibling module instances, each after the siblings whose outputs it reads."""
        if len(path) >= MAX_MODULE_DEPTH:
            raise origin.error(f"modules nest deeper than {MAX_MODULE_DEPTH} levels",
                               "a module probably instantiates itself")
        by_name = {i.name: i for i in instances}
        reads_siblings = {i.name: tuple(sorted(_sibling_mentions(i.inputs, by_name, i.name)))
                          for i in instances}
        order = topological_order(reads_siblings, lambda name: f"{by_name[name].origin.file}:"
                                                               f"{by_name[name].origin.line}")
        outputs: dict[str, dict[str, Any]] = {}
        for name in order:
            instance = by_name[name]
            module = self.repo.modules[instance.source]
            inputs = self._render_inputs(build, instance, path, context)
            inputs = self._absolute(build, inputs, path, outputs, instance.origin.child("inputs"))
            outputs[name] = self._instantiate(build, instance, module, inputs, (*path, name))
        return outputs

    def _render_inputs(self, build: _Build, instance: ModuleInstance, path: tuple[str, ...],
                       context: dict[str, Any]) -> Any:
        """An instance's inputs with their Jinja rendered; an environment's own instances' inputs
        are taken from the memo when the other commit rendered the same ones from the same values."""
        origin = instance.origin.child("inputs")
        if build.memo is None or path:
            return self.values.render(dict(instance.inputs), origin, context)
        key = (freeze(instance.inputs), build.values_key)
        rendered = build.memo.values.get(key)
        if rendered is None:
            rendered = build.memo.values[key] = self.values.render(dict(instance.inputs), origin, context)
        return rendered

    def _templates_fingerprint(self) -> str:
        """The content of templates/ on this commit: env.yaml values may include its files."""
        if self._templates is None:
            digest = hashlib.sha256()
            for file in self.repo.shared_templates:
                digest.update(file.encode() + b"\0" + hashlib.sha256((self.repo.root / file).read_bytes()).digest())
            self._templates = digest.hexdigest()
        return self._templates

    def _instantiate(self, build: _Build, instance: ModuleInstance, module: Module, inputs: dict[str, Any],
                     path: tuple[str, ...]) -> dict[str, Any]:
        if module.name in build.stack:
            chain = " -> ".join([*build.stack, module.name])
            raise instance.origin.error(f"module {module.name!r} instantiates itself: {chain}",
                                        "a module may not contain itself, directly or through others")
        if build.memo is None:
            return self._instantiate_fresh(build, instance, module, inputs, path)
        return self._replay_or_record(build, build.memo, instance, module, inputs, path)

    def _replay_or_record(self, build: _Build, memo: InstanceMemo, instance: ModuleInstance, module: Module,
                          inputs: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """Replay the other commit's record of this very instance, or render it and record it."""
        key = (module.name, self._fingerprint(module), path, tuple(build.stack), freeze(inputs),
               build.environment_key)
        record = memo.instances.get(key)
        if record is not None and all(name in self.repo.modules and self._fingerprint(self.repo.modules[name]) == used
                                      for name, used in record.modules):
            _replay(build, record)
            return dict(record.outputs)
        counts = len(build.resources), len(build.blocks), len(build.module_resources), len(build.origins)
        # the instance's own reads and modules, collected apart and then added to the build's
        reads, used = build.reads, build.modules_used
        build.reads, build.modules_used = set(), set()
        try:
            outputs = self._instantiate_fresh(build, instance, module, inputs, path)
            own_reads, own_modules = build.reads, build.modules_used
        finally:
            reads.update(build.reads)
            used.update(build.modules_used)
            build.reads, build.modules_used = reads, used
        memo.instances[key] = InstanceRecord(
            resources=_added(build.resources, counts[0]), blocks=_added(build.blocks, counts[1]),
            module_resources=_added(build.module_resources, counts[2]), origins=_added(build.origins, counts[3]),
            reads=frozenset(own_reads), modules=tuple(sorted(own_modules)), outputs=outputs)
        return outputs

    def _instantiate_fresh(self, build: _Build, instance: ModuleInstance, module: Module,
                           inputs: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        if build.memo is not None:
            build.modules_used.add((module.name, self._fingerprint(module)))
        build.stack.append(module.name)
        try:
            return self._instantiate_body(build, module, inputs, path, instance.origin)
        finally:
            build.stack.pop()

    def _fingerprint(self, module: Module) -> str:
        """The content a module renders from on this commit: its file, its variables and every
        template it reads. Equal on two commits, the same inputs render the same body."""
        fingerprint = self._fingerprints.get(module.name)
        if fingerprint is None:
            self._module_template(module)
            digest = hashlib.sha256(repr((module.file, module.body, freeze(
                [[v.name, v.type, v.default, v.required, v.sensitive] for v in module.variables.values()]))).encode())
            for file in sorted(self._module_reads[module.name]):
                path = self.repo.root / file
                digest.update(file.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"\1missing"))
            fingerprint = self._fingerprints[module.name] = digest.hexdigest()
        return fingerprint

    def _instantiate_body(self, build: _Build, module: Module, inputs: dict[str, Any], path: tuple[str, ...],
                          origin: Origin) -> dict[str, Any]:
        variables = _bind_variables(module, inputs, origin)
        template = self._module_template(module)
        build.reads.add(module.file)
        build.reads.update(self._module_reads[module.name])
        context = {
            "var": variables, "images": dict(build.env.images),
            "environment": {"name": build.env.name, "description": build.env.description},
            "module": {"name": path[-1], "path": _module_address(path), "source": module.name},
        }
        text = render(template, module.file, context, module.body)
        try:
            parsed = yamlio.parse(text, module.file)
        except ConfigError as error:
            raise ConfigError(error.message, file=module.file, line=_source_line(module.body, text, error.line),
                              hint=error.hint) from None
        body = expect_mapping(parsed, module.origin, "the rendered module body")
        check_keys(body, module.origin, BODY_KEYS)
        children = tuple(
            ModuleInstance(name=name, source=self._child_source(spec, module, name), inputs=spec.get("inputs") or {},
                           origin=module.origin.child("modules", name))
            for name, spec in expect_mapping(body.get("modules"), module.origin, "modules").items()
        )
        child_outputs = self._instantiate_children(build, children, path, context, module.origin)
        build.module_resources.setdefault(_module_address(path), [])
        for key, spec in expect_mapping(body.get("resources"), module.origin, "resources").items():
            self._add_resources(build, module, path, key, spec, child_outputs)
        return {
            name: self._absolute(build, value, path, child_outputs, module.origin.child("outputs", name))
            for name, value in expect_mapping(body.get("outputs"), module.origin, "outputs").items()
        }

    def _child_source(self, spec: Any, module: Module, name: str) -> str:
        origin = module.origin
        spec = expect_mapping(spec, origin, f"module instance {name!r}")
        check_keys(spec, origin, ("source", "inputs"), required=("source",))
        source = spec["source"]
        if source not in self.repo.modules:
            raise RenderError(f"unknown module {source!r} in instance {name!r}", file=module.file,
                              line=origin.line_of(f"{name}:"),
                              hint=suggest(str(source), self.repo.modules) or "add it under modules/")
        return str(source)

    def _module_template(self, module: Module) -> jinja2.Template:
        template = self._modules.get(module.name)
        if template is None:
            template = compile_template(self.jinja, module.body, module.file)
            self._modules[module.name] = template
            self._module_reads[module.name] = transitive_reads(self.jinja, self.repo.root, module.body)
        return template

    # -- resources ---------------------------------------------------------------------------

    def _add_resources(self, build: _Build, module: Module, path: tuple[str, ...], key: str, spec: Any,
                       child_outputs: dict[str, dict[str, Any]]) -> None:
        line = module.origin.line_of(f"{key}:")
        where = f"{module.file}:{line}" if line else module.file
        match = RESOURCE_KEY.match(key)
        if not match:
            raise RenderError(f"resource key {key!r} must be TYPE.NAME, such as aws_instance.web",
                              file=module.file, line=line)
        rtype, name = match.groups()
        if not isinstance(spec, dict):
            raise RenderError(f"resource {key} must be a mapping of attributes", file=module.file, line=line)
        attributes = {k: v for k, v in spec.items() if k not in META_KEYS}
        provider = spec.get("provider", rtype.split("_", 1)[0])
        if provider not in build.env.providers and provider not in BUILTIN_PROVIDERS:
            raise RenderError(f"resource {key} needs provider {provider!r}, which {build.env.file} does not "
                              "configure", file=module.file, line=line,
                              hint=f"add providers: {{{provider}: {{...}}}} to {build.env.file}")
        lifecycle = _lifecycle(spec.get("lifecycle"), key, module.file, line)
        prefix = _module_address(path)
        block_address = f"{prefix}.{key}" if prefix else key
        if block_address in build.blocks:
            raise RenderError(f"duplicate resource {block_address}", file=module.file, line=line,
                              hint="each TYPE.NAME may appear once per module")
        block = _Block(counted="count" in spec or "for_each" in spec)
        build.blocks[block_address] = block
        count_line = module.origin.line_of("count:", start=line) or module.origin.line_of("for_each:", start=line)
        for index, each in _expansions(spec, key, module.file, count_line or line):
            address = block_address + refs.format_index(index)
            expanded = _expand(attributes, index, each, "count" in spec, "for_each" in spec, key,
                               module.file, line)
            expanded = self._absolute(build, expanded, path, child_outputs, module.origin.child(key),
                                      line=line)
            depends_on = [self._depends_on(build, d, path, key, module.file, line)
                          for d in expect(spec.get("depends_on", []), list, module.origin.child(key),
                                          "depends_on")]
            build.resources[address] = Resource(
                address=address, module=prefix, type=rtype, name=name, index=index, provider=provider,
                attributes=expanded, dependencies=tuple(depends_on), lifecycle=lifecycle, source=where)
            block.instances.append(address)
            build.origins[address] = module.origin
            build.module_resources[prefix].append(address)

    def _depends_on(self, build: _Build, target: Any, path: tuple[str, ...], key: str, file: str,
                    line: int | None) -> str:
        if not isinstance(target, str):
            raise RenderError(f"depends_on of {key} must list addresses", file=file, line=line)
        parts = target.split(".")
        if len(parts) == 2 and parts[0] == "module":
            return "/module:" + _module_address((*path, parts[1]))
        prefix = _module_address(path)
        return "/" + (f"{prefix}.{target}" if prefix else target)

    # -- references --------------------------------------------------------------------------

    def _absolute(self, build: _Build, value: Any, path: tuple[str, ...],
                  child_outputs: Mapping[str, Mapping[str, Any]], origin: Origin,
                  line: int | None = None) -> Any:
        """Make every reference in `value` absolute and inline module outputs it reads."""
        prefix = "".join(f"module.{m}." for m in path)

        def resolve(expression: str) -> tuple[bool, Any]:
            if expression.startswith("/"):
                return False, expression
            try:
                parts = refs.tokens(expression)
            except refs.ReferenceSyntaxError as error:
                raise self._ref_error(str(error), origin, expression, line) from None
            head = parts[0]
            if head in ("var", "local"):
                raise self._ref_error(f"${{{expression}}} is not an apply-time value", origin, expression,
                                      line, hint=f"use {{{{ {expression} }}}} (Jinja) for {head}iables"
                                      if head == "var" else None)
            if head in ("count", "each"):
                raise self._ref_error(f"${{{expression}}} used outside a resource with "
                                      f"{'count' if head == 'count' else 'for_each'}", origin, expression, line)
            if head == "module":
                if len(parts) < 3 or not isinstance(parts[1], str) or not isinstance(parts[2], str):
                    raise self._ref_error(f"${{{expression}}} must name a module output", origin,
                                          expression, line)
                child, output = parts[1], parts[2]
                if child not in child_outputs:
                    raise self._ref_error(f"${{{expression}}} refers to unknown module instance {child!r}",
                                          origin, expression, line, hint=suggest(child, child_outputs))
                if output not in child_outputs[child]:
                    raise self._ref_error(
                        f"module {child!r} has no output {output!r}", origin, expression, line,
                        hint=suggest(output, child_outputs[child])
                        or f"its outputs: {', '.join(sorted(child_outputs[child])) or 'none'}")
                value = child_outputs[child][output]
                for segment in parts[3:]:
                    value = _index_output(value, segment, expression, origin, line, self)
                return True, value
            return False, "/" + prefix + expression

        def change(text: str) -> Any:
            single = refs.whole(text)
            if single is not None:
                inlined, result = resolve(single)
                return result if inlined else "${" + result + "}"

            def one(expression: str) -> str:
                inlined, result = resolve(expression)
                if not inlined:
                    return "${" + str(result) + "}"
                if isinstance(result, (dict, list)):
                    raise self._ref_error(f"${{{expression}}} is a {type(result).__name__} and cannot be "
                                          "part of a string", origin, expression, line)
                return str(result).lower() if isinstance(result, bool) else str(result)
            return refs.substitute(text, one)

        return refs.walk_strings(value, change)

    def _ref_error(self, message: str, origin: Origin, expression: str, line: int | None,
                   hint: str | None = None) -> RenderError:
        found = origin.line_of("${" + expression, default=line or origin.line)
        return RenderError(message, file=origin.file, line=found, hint=hint)


# -- finishing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Draft:
    """An environment rendered up to its references: every resource with its attributes as
    rendered (references absolute, still marked), the blocks and modules they belong to, and the
    environment's outputs. `finish` checks the references and derives the dependency edges, the
    same function on any commit: affected detection compares drafts, finishing only what differs."""

    build: _Build
    outputs: Mapping[str, Any]
    sensitive_outputs: frozenset[str]
    providers: Mapping[str, Any]


def finish(draft: Draft) -> Graph:
    build = draft.build
    graph = _graph(draft, {address: _finish_one(build, address, resource)
                           for address, resource in build.resources.items()})
    graph.order()
    return graph


def _graph(draft: Draft, resources: Mapping[str, Resource]) -> Graph:
    env = draft.build.env
    return Graph(env=env.name, resources=resources, outputs=draft.outputs, sensitive_outputs=draft.sensitive_outputs,
                 providers=draft.providers)


def graph_document(graph: Graph, env: Environment) -> dict[str, Any]:
    """`graph.json`: the graph, and where its environment keeps state and takes its run lock (a
    change of either changes what a plan sees, so affected detection compares them too)."""
    return {**graph.to_json(sources=False), "state": dict(env.state), "lock": dict(env.lock)}


def _finish_one(build: _Build, address: str, resource: Resource) -> Resource:
    """Remove the absolute marks, check every reference, and derive the dependency edges."""
    found: list[str] = []
    attributes = _unmark_collecting(resource.attributes, found)
    dependencies: set[str] = set()
    for expression in found:
        dependencies.update(_targets(build, resource, expression))
    for explicit in resource.dependencies:
        if explicit.startswith("/module:"):
            module = explicit[len("/module:"):]
            if module not in build.module_resources:
                raise _at(build, resource, f"depends_on names unknown module {module!r}")
            dependencies.update(build.module_resources[module])
        else:
            # As in Terraform, depends_on on a counted block means every one of its instances.
            target = explicit.lstrip("/")
            block = build.blocks.get(target)
            whole = block is not None and block.counted
            dependencies.update(_targets(build, resource, target + ("[*].id" if whole else ".id")))
    dependencies.discard(address)
    return Resource(
        address=address, module=resource.module, type=resource.type, name=resource.name,
        index=resource.index, provider=resource.provider, attributes=attributes,
        dependencies=tuple(sorted(dependencies)), lifecycle=resource.lifecycle, source=resource.source)


def _targets(build: _Build, resource: Resource, expression: str) -> list[str]:
    try:
        ref = refs.parse_resource(expression)
    except refs.ReferenceSyntaxError as error:
        raise _at(build, resource, str(error)) from None
    block = build.blocks.get(ref.block)
    if block is None:
        relative = _relative(ref.block, resource.module)
        siblings = [_relative(b, resource.module) for b in build.blocks
                    if b.startswith(resource.module)]
        raise _at(build, resource, f"{resource.address} refers to missing resource {relative}",
                  suggest(relative, siblings) or "declare it, or fix the reference", needle=relative)
    if ref.splat:
        return list(block.instances)
    if block.counted and ref.index is None:
        raise _at(build, resource, f"{_relative(ref.block, resource.module)} has count or for_each; "
                  "pick an instance", f"use {_relative(ref.block, resource.module)}[0] or [*]")
    if ref.address not in build.resources:
        raise _at(build, resource, f"{resource.address} refers to missing instance "
                  f"{_relative(ref.address, resource.module)}", "check the index against count")
    return [ref.address]


def _at(build: _Build, resource: Resource, message: str, hint: str | None = None,
        needle: str | None = None) -> RenderError:
    error = RenderError.at(resource.source, message, hint)
    origin = build.origins.get(resource.address)
    if needle and origin is not None:
        error.line = origin.line_of(needle, default=error.line, start=error.line)
    return error


def _source_line(source: str, rendered: str, line: int | None) -> int | None:
    """Map a line of rendered output back to the template: the same line when the template
    rendered line for line, else the one template line with the same text."""
    if line is None:
        return None
    rendered_lines = rendered.splitlines()
    source_lines = source.splitlines()
    if len(rendered_lines) == len(source_lines):
        return line
    text = rendered_lines[line - 1].strip() if line <= len(rendered_lines) else ""
    matches = [n for n, s in enumerate(source_lines, start=1) if text and s.strip() == text]
    return matches[0] if matches else None


def _added(table: Mapping[str, Any], before: int) -> tuple[tuple[str, Any], ...]:
    return tuple(itertools.islice(table.items(), before, None))


def _replay(build: _Build, record: InstanceRecord) -> None:
    build.resources.update(record.resources)
    build.blocks.update(record.blocks)
    build.module_resources.update(record.module_resources)
    build.origins.update(record.origins)
    build.reads.update(record.reads)
    build.modules_used.update(record.modules)


def _relative(address: str, module: str) -> str:
    return address[len(module) + 1:] if module and address.startswith(module + ".") else address


def _module_address(path: tuple[str, ...]) -> str:
    return ".".join(f"module.{name}" for name in path)


def _unmark_collecting(value: Any, found: list[str]) -> Any:
    """`_unmark`, also appending every reference's expression to `found`."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        found.extend(expression.lstrip("/") for expression in refs.find(value))
        return value.replace("${/", "${")
    if isinstance(value, dict):
        return {key: _unmark_collecting(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_unmark_collecting(item, found) for item in value]
    return value


def _unmark(value: Any) -> Any:
    return refs.walk_strings(value, lambda text: text.replace("${/", "${"))


def _sibling_mentions(inputs: Mapping[str, Any], siblings: Mapping[str, ModuleInstance], own: str) -> set[str]:
    found: list[str] = []
    refs.collect(dict(inputs), found)
    names = set()
    for expression in found:
        parts = expression.split(".")
        if len(parts) >= 2 and parts[0] == "module" and parts[1] in siblings and parts[1] != own:
            names.add(parts[1])
    return names


def _index_output(value: Any, segment: Any, expression: str, origin: Origin, line: int | None,
                  renderer: GraphRenderer) -> Any:
    try:
        return value[segment]
    except (KeyError, IndexError, TypeError):
        raise renderer._ref_error(f"${{{expression}}}: output has no element {segment!r}", origin,
                                  expression, line) from None


def _mentions_sensitive(value: Any, sensitive: frozenset[str]) -> bool:
    text = str(value)
    return any(f"var.{name}" in text for name in sensitive)


def _bind_variables(module: Module, inputs: dict[str, Any], origin: Origin) -> dict[str, Any]:
    for name in inputs:
        if name not in module.variables:
            raise origin.child("inputs", name).error(
                f"module {module.name!r} has no variable {name!r}",
                suggest(name, module.variables) or f"declare it under variables: in {module.file}")
    bound: dict[str, Any] = {}
    for name, variable in module.variables.items():
        if name in inputs:
            bound[name] = _check_type(variable, inputs[name], origin.child("inputs", name), module)
            if variable.sensitive and "${" not in str(bound[name]):
                register_secret(bound[name])
        elif variable.required:
            raise origin.error(f"module {module.name!r} needs input {name!r}",
                               f"add inputs: {{{name}: ...}}")
        else:
            bound[name] = variable.default
    return bound


TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "bool": (bool,), "list": (list,), "map": (dict,),
}


def _check_type(variable: Variable, value: Any, origin: Origin, module: Module) -> Any:
    kinds = TYPE_CHECKS.get(variable.type)
    if kinds is None or (isinstance(value, str) and refs.whole(value) is not None):
        return value  # `any`, or known only at apply time
    if variable.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool) and variable.type != "bool":
        kinds = ()
    if not isinstance(value, kinds):
        shown = f"{value!r}" if len(repr(value)) < 40 else type(value).__name__
        raise origin.error(f"input {variable.name!r} of module {module.name!r} must be a {variable.type}, "
                           f"not {shown}", f"pass a {variable.type}, or change the variable's type in {module.file}")
    return value


def _lifecycle(value: Any, key: str, file: str, line: int | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"lifecycle of {key} must be a mapping", file=file, line=line)
    for name, setting in value.items():
        if name not in LIFECYCLE_KEYS:
            raise RenderError(f"unknown lifecycle setting {name!r} in {key}", file=file, line=line,
                              hint=suggest(str(name), LIFECYCLE_KEYS))
        if name == "ignore_changes":
            if setting != "all" and not (isinstance(setting, list) and all(isinstance(s, str) for s in setting)):
                raise RenderError(f"lifecycle.ignore_changes of {key} must be a list of attribute names or "
                                  "'all'", file=file, line=line)
        elif not isinstance(setting, bool):
            raise RenderError(f"lifecycle.{name} of {key} must be true or false", file=file, line=line)
    return dict(value)


def _expansions(spec: dict[str, Any], key: str, file: str, line: int | None) -> list[tuple[Any, Any]]:
    if "count" in spec and "for_each" in spec:
        raise RenderError(f"{key} sets both count and for_each", file=file, line=line, hint="use one")
    if "count" in spec:
        count = spec["count"]
        if isinstance(count, str) and "${" in count:
            raise RenderError(f"count of {key} must be known at render time, not {count!r}", file=file,
                              line=line, hint="compute it from variables with Jinja: count: {{ var.nodes }}")
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or count > MAX_COUNT:
            raise RenderError(f"count of {key} must be a whole number from 0 to {MAX_COUNT}, not {count!r}",
                              file=file, line=line, hint="such as count: 2, or count: {{ var.nodes }}")
        return [(index, None) for index in range(count)]
    if "for_each" in spec:
        items = spec["for_each"]
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            if len(set(items)) != len(items):
                raise RenderError(f"for_each of {key} lists a key twice", file=file, line=line)
            return [(item, item) for item in items]
        if isinstance(items, dict):
            return [(str(k), v) for k, v in items.items()]
        raise RenderError(f"for_each of {key} must be a mapping or a list of strings", file=file, line=line)
    return [(None, None)]


_NOT_SPECIAL = object()


def _expand(attributes: dict[str, Any], index: Any, each: Any, counted: bool, for_each: bool, key: str,
            file: str, line: int | None) -> dict[str, Any]:
    """Substitute `count.index`, `each.key` and `each.value` for one instance."""
    if not counted and not for_each:
        return attributes

    def special(name: str) -> Any:
        if counted and name == "count.index":
            return index
        if for_each and name == "each.key":
            return index
        if for_each and name == "each.value":
            return each
        return _NOT_SPECIAL

    def one(expression: str) -> str:
        result = special(expression)
        if result is _NOT_SPECIAL:
            if counted:
                expression = expression.replace("[count.index]", f"[{index}]")
            if for_each:
                expression = expression.replace("[each.key]", refs.format_index(index))
            return "${" + expression + "}"
        if isinstance(result, (dict, list)):
            raise RenderError(f"each.value of {key} is structured and cannot be part of a string",
                              file=file, line=line)
        return str(result)

    def change(text: str) -> Any:
        single = refs.whole(text)
        if single is not None:
            result = special(single)
            if result is not _NOT_SPECIAL:
                return result
        return refs.substitute(text, one)

    expanded: dict[str, Any] = refs.walk_strings(attributes, change)
    return expanded


class EnvironmentRenderer:
    """The graph artefact of each environment: `envs/<env>/graph.json`."""

    kind = "graph"

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.graphs = GraphRenderer(repo, environment)
        self.repo = repo

    def names(self, repo: Repo) -> list[str]:
        return sorted(repo.environments)

    def draft(self, name: str, memo: InstanceMemo | None = None) -> Draft:
        """The environment's draft, for comparing two commits (see `same_rendering`)."""
        return self.graphs.draft(self.repo.environments[name], memo)

    def render(self, name: str) -> Artefact:
        graph, reads = self.graphs.render(self.repo.environments[name])
        sources = {address: resource.source for address, resource in graph.resources.items()}
        return Artefact(kind=self.kind, name=name, directory=f"envs/{name}",
                        files={f"envs/{name}/graph.json":
                               stable_json(graph_document(graph, self.repo.environments[name]))},
                        reads=frozenset(reads), annotations={f"envs/{name}/sources.json": stable_json(sources)})


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
            return same_graph(finish(first), finish(second)) and _graph_fields(first) == _graph_fields(second)
        for address, resource in mine.resources.items():
            other = theirs.resources[address]
            if resource is not other and _finished_json(mine, address, resource) != \
                    _finished_json(theirs, address, other):
                return False
    except UserError:
        return False
    return _graph_fields(first) == _graph_fields(second)


def same_graph(first: Graph, second: Graph) -> bool:
    """Whether two graphs are the same graph.json bytes."""
    return stable_json(first.to_json(sources=False)) == stable_json(second.to_json(sources=False))


def _finished_json(build: _Build, address: str, resource: Resource) -> bytes:
    return stable_json(_finish_one(build, address, resource).to_json(sources=False))


def _graph_fields(draft: Draft) -> bytes:
    """Everything of the graph.json but the resources."""
    return stable_json(graph_document(_graph(draft, {}), draft.build.env))
